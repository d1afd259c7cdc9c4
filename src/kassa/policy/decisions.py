"""Decisions: may this refund or withdrawal happen, why, and for how much.

Design
------
* Pure functions of (policy, facts, now): no I/O, no clock reads, no randomness, so the same
  inputs always give the same `Decision` and tests build the facts by hand.
* Every rule of the section is evaluated and listed, in a fixed order, even after a refusal; the
  decision is allowed only when all pass. An operator override (``operator_override=True``, only
  for ``requested_by="operator"``) lets a failed rule pass *if the policy lists it* in
  ``operator_may_waive``; the outcome is then marked ``waived`` so the record shows it.
* The breakdown is always computed, even for a refusal, so support can show "after fees this
  would pay nothing"; a refusal's breakdown is what the payout *would* be, never a promise.
* Refund valuation (``usd_at_payment``): the gross is the USD the top-up credited at payment
  time. When spent funds are not refundable it is capped by what is unspent, measured as
  ``min(credited − already refunded, available balance)``: the balance is fungible, so spending
  is taken from the rest of the balance first; a customer can never get back more than this
  top-up, nor more than they still hold. The USD is converted to coins at the refund-date rate.
* The strict reading (``refund.after_usage = "refuse"``, policy A) refuses the refund outright
  once any usage was charged at or after the top-up's payment time: "the balance has already
  been used" then means *any* of it, not the part used. It is the same rule
  (``refundable_amount``), so the same clause and waiver apply. Usage at the very instant of
  payment counts as following it: the order of two equal instants is unknowable, and the
  strict reading resolves doubt against the refund.
* Money is integer minor units throughout; `kassa.policy._support` documents every rounding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from kassa.assets import on_chain
from kassa.money import USD, Asset, Money
from kassa.policy._support import (
    ZERO_USD,
    Checks,
    FeeCharge,
    account_state_verdict,
    balance_breakdown,
    check_now,
    check_positive_usd,
    check_requester,
    duration,
    is_are,
    net_positive,
    payout,
    plural,
    review_due,
    usd,
    when,
)
from kassa.policy.facts import (
    AccountFacts,
    NetworkFee,
    RateFacts,
    TopUpFacts,
)
from kassa.policy.model import (
    AfterUsage,
    Destination,
    FeePayer,
    Policy,
    RefundNetworkFee,
    RefundRule,
    WithdrawalNetworkFee,
    WithdrawalRule,
)
from kassa.policy.outcome import Breakdown, Decision, DecisionKind, Requester

__all__ = ["network_fee_charge", "quote_refund", "quote_withdrawal", "wallet_breakdown"]

# Where a rule's setting lives, cited when the policy gives no clause for it.
_REFUND_PARAMETERS = {
    RefundRule.REFUNDS_ENABLED: "refund.enabled",
    RefundRule.REFUND_WINDOW: "refund.window_days",
    RefundRule.ONE_REFUND_PER_TOPUP: "refund.one_per_topup",
    RefundRule.NO_PENDING_REFUND: "refund.block_while_refund_pending",
    RefundRule.NO_OPEN_DISPUTE: "refund.block_while_dispute_open",
    RefundRule.USAGE_QUIET_PERIOD: "refund.usage_quiet_minutes",
    RefundRule.ACCOUNT_STATE: "account_states",
    RefundRule.REFUNDABLE_AMOUNT: "refund.spent_funds_refundable",
    RefundRule.MINIMUM_AMOUNT: "refund.minimum",
    RefundRule.ORIGIN_ADDRESS: "refund.destination",
    RefundRule.NET_POSITIVE: "refund.network_fee",
}
_WITHDRAWAL_PARAMETERS = {
    WithdrawalRule.WITHDRAWALS_ENABLED: "withdrawal.enabled",
    WithdrawalRule.WITHDRAWAL_ASSET: "withdrawal.assets",
    WithdrawalRule.ACCOUNT_STATE: "account_states",
    WithdrawalRule.MINIMUM_AMOUNT: "withdrawal.minimum",
    WithdrawalRule.SUFFICIENT_BALANCE: "the available balance",
    WithdrawalRule.NET_POSITIVE: "withdrawal.flat_fee and withdrawal.network_fee",
}
_WITHDRAWAL_FEE_CHARGE = {
    WithdrawalNetworkFee.DEDUCT: FeeCharge.ALL,
    WithdrawalNetworkFee.BEYOND_FLAT_FEE: FeeCharge.BEYOND_FLAT_FEE,
    WithdrawalNetworkFee.HOUSE: FeeCharge.NONE,
}


def network_fee_charge(policy: Policy, kind: DecisionKind) -> FeeCharge:
    """How much of a payout's network fee the customer bears under ``policy``."""
    if kind is DecisionKind.REFUND:
        deduct = policy.refund.network_fee is RefundNetworkFee.DEDUCT
        return FeeCharge.ALL if deduct else FeeCharge.NONE
    if kind is DecisionKind.WITHDRAWAL:
        return _WITHDRAWAL_FEE_CHARGE[policy.withdrawal.network_fee]
    raise ValueError(f"{kind.value} decisions pay nothing on chain")


def wallet_breakdown(
    *,
    gross: Money,
    handling: Money,
    flat_fee: Money,
    provider: Money,
    rate: RateFacts,
    network_fee: NetworkFee,
    charge: FeeCharge,
    destination: Destination,
) -> Breakdown:
    """The money of a payout on chain: the USD owed after the USD fees (``gross − handling −
    flat fee − provider fee``) paid in coins at ``rate``, less the network fee ``charge`` says
    the customer bears (`kassa.policy._support.payout`, which documents every rounding).

    One computation for a refund's and a withdrawal's decision and for re-pricing a committed
    one at approval (`kassa.policy.repricing`), so their figures follow the same rule."""
    paid = payout(gross - handling - flat_fee - provider, rate, network_fee, charge, flat_fee)
    return Breakdown(
        gross_usd=gross,
        handling_fee_usd=handling,
        flat_fee_usd=flat_fee,
        provider_fee_usd=provider,
        network_fee_native=network_fee.amount,
        network_fee_usd=paid.network_fee_usd,
        network_fee_charged_usd=paid.network_fee_charged_usd,
        net_usd=paid.net_usd,
        rate=rate.usd_per_unit,
        rate_source=rate.source,
        rate_lock_id=rate.lock_id,
        net_native=paid.net_native,
        destination=destination,
        network_fee_source=network_fee.source.value,
    )


# --------------------------------------------------------------------------- refunds


def quote_refund(
    policy: Policy,
    topup: TopUpFacts,
    account: AccountFacts,
    rate: RateFacts | None,
    network_fee: NetworkFee | None,
    now: datetime,
    *,
    requested_by: Requester = "customer",
    operator_override: bool = False,
    amount_usd: Money | None = None,
    provider_fee_usd: Money | None = None,
) -> Decision:
    """Decide a refund of (part of) one top-up.

    ``rate`` (of the top-up's asset) and ``network_fee`` are needed when the policy refunds to the
    original wallet and ignored when it refunds to the balance. ``amount_usd`` asks for part of
    the top-up (micro-USD); None asks for all that is refundable. ``provider_fee_usd`` is a fee a
    payment provider charges for the refund, borne as ``refund.provider_fee`` says.
    """
    check_now(now)
    check_requester(requested_by, operator_override)
    rules = policy.refund
    to_wallet = rules.destination is Destination.ORIGINAL_WALLET
    wallet: tuple[RateFacts, NetworkFee] | None = None
    if to_wallet:
        if rate is None or network_fee is None:
            raise ValueError("a refund to the original wallet needs the rate and the network fee")
        if rate.asset != topup.asset:
            raise ValueError(f"the rate prices {rate.asset}, the top-up is {topup.asset}")
        wallet = (rate, network_fee)
    if amount_usd is not None:
        check_positive_usd("amount_usd", amount_usd)
    if provider_fee_usd is not None and (
        provider_fee_usd.asset != USD or provider_fee_usd.is_negative
    ):
        raise ValueError(f"provider_fee_usd must be non-negative USD, got {provider_fee_usd}")

    R = RefundRule
    checks = Checks(
        rules.clauses, _REFUND_PARAMETERS, rules.operator_may_waive, override=operator_override
    )

    if rules.enabled:
        checks.record(R.REFUNDS_ENABLED, True, "Top-ups can be refunded under this policy.")
    else:
        instead = " or withdrawn" if policy.withdrawal.enabled else ""
        checks.record(
            R.REFUNDS_ENABLED,
            False,
            f"This policy does not refund top-ups; the balance can be spent{instead} instead.",
        )

    _refund_window(checks, rules.window_days, topup.paid_at, now)

    if not rules.one_per_topup:
        checks.record(R.ONE_REFUND_PER_TOPUP, True, "A top-up may be refunded more than once.")
    elif topup.refund_count == 0:
        checks.record(
            R.ONE_REFUND_PER_TOPUP,
            True,
            "This top-up has not been refunded before (one refund each).",
        )
    else:
        checks.record(
            R.ONE_REFUND_PER_TOPUP,
            False,
            "This top-up was already refunded, and each top-up can be refunded only once.",
        )

    pending = account.pending_refund_count
    if not rules.block_while_refund_pending:
        checks.record(R.NO_PENDING_REFUND, True, "Other pending refunds do not block this one.")
    else:
        checks.record(
            R.NO_PENDING_REFUND,
            pending == 0,
            "No other refund of this account is pending."
            if pending == 0
            else f"{plural(pending, 'other refund')} of this account {is_are(pending)} still "
            "pending; a new refund can be requested once settled.",
        )

    if not rules.block_while_dispute_open:
        checks.record(R.NO_OPEN_DISPUTE, True, "Open disputes do not block a refund.")
    else:
        checks.record(
            R.NO_OPEN_DISPUTE,
            not account.open_dispute,
            "A dispute or chargeback on this account is open; no refund until it is resolved."
            if account.open_dispute
            else "No dispute or chargeback is open on this account.",
        )

    _quiet_period(checks, rules.usage_quiet_minutes, account.last_usage_at, now)

    state = account_state_verdict(policy, account, now, refund=True)
    checks.record(R.ACCOUNT_STATE, state.passed, state.reason, clause=state.clause)
    effect = state.effect

    gross = _refundable_amount(checks, policy, topup, account, amount_usd)

    if not rules.minimum.is_positive:
        checks.record(R.MINIMUM_AMOUNT, True, "There is no minimum refund amount.")
    else:
        enough = gross >= rules.minimum
        checks.record(
            R.MINIMUM_AMOUNT,
            enough,
            f"The refund of {usd(gross)} is {'at least' if enough else 'below'} "
            f"the {usd(rules.minimum)} minimum.",
        )

    if not to_wallet:
        checks.record(
            R.ORIGIN_ADDRESS, True, "The refund goes to the account balance; no wallet is needed."
        )
    elif topup.sender_address is not None:
        checks.record(
            R.ORIGIN_ADDRESS,
            True,
            f"The refund goes back to the sending address {topup.sender_address}.",
        )
    else:
        checks.record(
            R.ORIGIN_ADDRESS,
            False,
            "The payment came from several addresses, so there is no single wallet to send the "
            "refund back to."
            if topup.sender_ambiguous
            else "The address this payment came from is not known, so the refund cannot go "
            "back to it.",
        )

    handling = effect.handling_cost if effect is not None else ZERO_USD
    provider = (
        provider_fee_usd
        if to_wallet and provider_fee_usd is not None and rules.provider_fee is FeePayer.CUSTOMER
        else ZERO_USD
    )
    if wallet is not None:
        rate, network_fee = wallet
        breakdown = wallet_breakdown(
            gross=gross,
            handling=handling,
            flat_fee=ZERO_USD,
            provider=provider,
            rate=rate,
            network_fee=network_fee,
            charge=network_fee_charge(policy, DecisionKind.REFUND),
            destination=Destination.ORIGINAL_WALLET,
        )
    else:
        breakdown = balance_breakdown(gross, handling, gross - handling - provider)
    net_positive(checks, R.NET_POSITIVE, breakdown)

    needs_review = checks.allowed and (rules.review_required or bool(effect and effect.review))
    decision = Decision(
        kind=DecisionKind.REFUND,
        policy=policy.name,
        subject=topup.id,
        requested_by=requested_by,
        decided_at=now,
        allowed=checks.allowed,
        rules=tuple(checks.outcomes),
        breakdown=breakdown,
        needs_review=needs_review,
        review_due_at=review_due(policy, now, needs_review, rules.review_sla_business_days),
        overridable=False,
    )
    if decision.allowed or operator_override or not rules.operator_may_waive:
        return decision
    # Decisions are pure, so "could an operator turn this around?" is simply asked.
    overridden = quote_refund(
        policy,
        topup,
        account,
        rate,
        network_fee,
        now,
        requested_by="operator",
        operator_override=True,
        amount_usd=amount_usd,
        provider_fee_usd=provider_fee_usd,
    )
    return replace(decision, overridable=overridden.allowed)


def _refund_window(checks: Checks, days: int | None, paid_at: datetime, now: datetime) -> None:
    rule = RefundRule.REFUND_WINDOW
    if days is None:
        checks.record(rule, True, "Refunds have no time limit.")
        return
    deadline = paid_at + timedelta(days=days)
    paid = f"Paid {when(paid_at)}, {duration(now - paid_at)} ago"
    # Inclusive: "within 14 days" still holds at exactly 14 × 24 hours.
    if now <= deadline:
        checks.record(
            rule, True, f"{paid}; refunds are possible within {days} days, until {when(deadline)}."
        )
    else:
        checks.record(rule, False, f"{paid}; the {days}-day refund window closed {when(deadline)}.")


def _quiet_period(
    checks: Checks, minutes: int, last_usage_at: datetime | None, now: datetime
) -> None:
    rule = RefundRule.USAGE_QUIET_PERIOD
    if minutes == 0:
        checks.record(rule, True, "No quiet period without usage is required.")
        return
    if last_usage_at is None:
        checks.record(rule, True, "The account has no usage on record.")
        return
    quiet = now - last_usage_at
    needed = timedelta(minutes=minutes)
    if quiet >= needed:
        checks.record(
            rule,
            True,
            f"The last usage was {duration(quiet)} ago; {minutes} minutes without usage are "
            "required.",
        )
    else:
        checks.record(
            rule,
            False,
            f"The last usage was only {duration(quiet)} ago; a refund needs {minutes} minutes "
            f"without usage (possible from {when(last_usage_at + needed)}).",
        )


def _refundable_amount(
    checks: Checks,
    policy: Policy,
    topup: TopUpFacts,
    account: AccountFacts,
    amount_usd: Money | None,
) -> Money:
    """Record the refundable-amount rule and return the gross USD of the refund."""
    rule = RefundRule.REFUNDABLE_AMOUNT
    remaining = max(topup.credited_usd - topup.refunded_usd, ZERO_USD)
    unspent = max(min(remaining, account.available_usd), ZERO_USD)
    spent_ok = policy.refund.spent_funds_refundable
    cap = remaining if spent_ok else unspent

    said = f"This top-up credited {usd(topup.credited_usd)} at payment time"
    if topup.refunded_usd.is_positive:
        said += f", {usd(topup.refunded_usd)} of it already refunded"
    if spent_ok:
        said += f"; spent funds are refundable too, so up to {usd(cap)} can be refunded."
    else:
        said += (
            f"; the unused balance is {usd(account.available_usd)} and spent funds are not "
            f"refundable, so up to {usd(cap)} can be refunded."
        )

    gross = amount_usd if amount_usd is not None else cap
    used = _used_after_topup(policy, topup, account, cap)
    if used is None and cap.is_positive and gross <= cap:
        checks.record(rule, True, said + _no_usage_since(policy, topup, account))
        return gross
    if used is not None:
        said, problem = used, ""
    else:
        problem = (
            " Nothing is left to refund."
            if not cap.is_positive
            else (f" {usd(gross)} was asked for, more than that.")
        )
    # An operator may refund spent funds (policy C's "our fault" exception) but never more than
    # what is left of the top-up itself.
    if not spent_ok and checks.can_waive(rule):
        waived_gross = amount_usd if amount_usd is not None else remaining
        if remaining.is_positive and waived_gross <= remaining:
            checks.record_waived(
                rule, f"{said}{problem} The operator refunds spent funds, up to {usd(remaining)}."
            )
            return waived_gross
    # Not waivable here: the only waiver of this rule (refunding spent funds) was tried above.
    checks.record(rule, False, said + problem, waivable=False)
    return gross


def _used_after_topup(
    policy: Policy, topup: TopUpFacts, account: AccountFacts, unspent: Money
) -> str | None:
    """Under the strict reading, why usage since the payment refuses the refund; else None."""
    last = account.last_usage_at
    if policy.refund.after_usage is not AfterUsage.REFUSE or last is None:
        return None
    if last < topup.paid_at:
        return None
    return (
        f"This top-up credited {usd(topup.credited_usd)} at payment time, "
        f"{when(topup.paid_at)}, and usage was charged to the balance at or after that, last "
        f"{when(last)}; once the balance has been used, this policy refunds nothing of the "
        "top-up"
        + (
            f", not even the unused rest of {usd(unspent)}."
            if unspent.is_positive
            else ". Nothing is left to refund."
        )
    )


def _no_usage_since(policy: Policy, topup: TopUpFacts, account: AccountFacts) -> str:
    """What the strict reading checked when it passes (empty under the lenient reading)."""
    if policy.refund.after_usage is not AfterUsage.REFUSE:
        return ""
    last = account.last_usage_at
    if last is None:
        return " The account has no usage on record."
    return (
        f" The last usage, {when(last)}, was before this top-up was paid "
        f"{when(topup.paid_at)}; the balance has not been used since."
    )


# --------------------------------------------------------------------------- withdrawals


def quote_withdrawal(
    policy: Policy,
    account: AccountFacts,
    amount_usd: Money,
    asset: Asset,
    rate: RateFacts,
    network_fee: NetworkFee,
    now: datetime,
) -> Decision:
    """Decide a withdrawal of ``amount_usd`` (micro-USD, gross) from the balance, paid in ``asset``.

    The address is not needed to decide (its syntax is the chain adapters' business); the
    breakdown says ``withdrawal_address``.
    """
    check_now(now)
    check_positive_usd("amount_usd", amount_usd)
    if not on_chain(asset):
        raise ValueError(f"a withdrawal is paid in a chain asset, not {asset}")
    if rate.asset != asset:
        raise ValueError(f"the rate prices {rate.asset}, the withdrawal is paid in {asset}")

    rules = policy.withdrawal
    W = WithdrawalRule
    checks = Checks(rules.clauses, _WITHDRAWAL_PARAMETERS, (), override=False)

    checks.record(
        W.WITHDRAWALS_ENABLED,
        rules.enabled,
        "The balance can be withdrawn to a wallet."
        if rules.enabled
        else "This policy offers no withdrawals of the balance.",
    )
    allowed_assets = ", ".join(code.value for code in rules.assets) or "no asset"
    checks.record(
        W.WITHDRAWAL_ASSET,
        asset.code in rules.assets,
        f"Withdrawals can be paid in {asset}."
        if asset.code in rules.assets
        else f"Withdrawals are paid only in {allowed_assets}, not in {asset}.",
    )
    state = account_state_verdict(policy, account, now, refund=False)
    checks.record(W.ACCOUNT_STATE, state.passed, state.reason, clause=state.clause)
    effect = state.effect

    enough = amount_usd >= rules.minimum
    checks.record(
        W.MINIMUM_AMOUNT,
        enough,
        f"The withdrawal of {usd(amount_usd)} {'meets' if enough else 'is below'} "
        f"the {usd(rules.minimum)} minimum.",
    )
    covered = amount_usd <= account.available_usd
    checks.record(
        W.SUFFICIENT_BALANCE,
        covered,
        f"The available balance of {usd(account.available_usd)} covers the withdrawal."
        if covered
        else f"The withdrawal of {usd(amount_usd)} exceeds the available balance of "
        f"{usd(account.available_usd)}.",
    )

    handling = effect.handling_cost if effect is not None else ZERO_USD
    breakdown = wallet_breakdown(
        gross=amount_usd,
        handling=handling,
        flat_fee=rules.flat_fee,
        provider=ZERO_USD,
        rate=rate,
        network_fee=network_fee,
        charge=network_fee_charge(policy, DecisionKind.WITHDRAWAL),
        destination=Destination.WITHDRAWAL_ADDRESS,
    )
    net_positive(checks, W.NET_POSITIVE, breakdown)

    needs_review = checks.allowed and (rules.review_required or bool(effect and effect.review))
    return Decision(
        kind=DecisionKind.WITHDRAWAL,
        policy=policy.name,
        subject=f"{asset} withdrawal",
        requested_by="customer",
        decided_at=now,
        allowed=checks.allowed,
        rules=tuple(checks.outcomes),
        breakdown=breakdown,
        needs_review=needs_review,
        review_due_at=review_due(policy, now, needs_review, rules.review_sla_business_days),
        overridable=False,
    )
