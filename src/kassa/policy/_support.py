"""Shared machinery of the decision functions: the rule recorder, payout arithmetic, wording.

Rounding (docs/domain.md §2: always in the house's favour, and written down; docs/payouts.md
"Figures and rounding" has the worked example):

* A network fee is converted to USD with `convert_up` (a fee never rounds down).
* The coins sent (``net_native``) are USD converted with `convert_down` (the house never sends
  a fraction of a minor unit extra). When the whole network fee is deducted and it is paid in
  the payout asset itself (BTC from a BTC refund, ETH from an ETH withdrawal) it is deducted in
  coins: ``net_native = convert_down(usd_after_fees) − fee_native``, so the coins leaving the
  house (payout plus fee) are exactly the USD owed converted down and the worked example of
  docs/domain.md §7 reads literally (0.00120000 − 0.00002000 = 0.00118000 BTC). Otherwise (a
  USDT payout whose fee is ETH or TRX, or only the part beyond a flat fee) the charged fee is
  deducted in USD and the rest converted down once.
* Reconciliation (issue 14 item 4): the displayed ``net_usd`` is **the value of the coins sent
  at the stated rate**, rounded down to the micro-dollar, USD's smallest unit (`value_of`).
  The network fee charged is then the rest, ``usd_after_fees − net_usd``: the fee's USD value
  plus the worth of the fraction of a minor unit the coins could not carry. So ``gross = fees +
  network fee charged + net`` holds exactly and every figure reconciles to the smallest unit
  of both the coin and the dollar. (A refusal's figures, where nothing would be sent, keep the
  charged fee and say by how much the payout falls short.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kassa.assets import fee_asset_of
from kassa.money import USD, Money, convert_down, convert_up
from kassa.policy.calendar import add_business_days, add_months
from kassa.policy.facts import AccountFacts, NetworkFee, RateFacts
from kassa.policy.model import AccountState, Destination, Policy, StateEffect
from kassa.policy.outcome import Breakdown, RuleOutcome

ZERO_USD = Money(0, USD)
NET_CLAUSE = "Kassa: a payout must be worth more than its fees."


class FeeCharge(StrEnum):
    ALL = "all"
    BEYOND_FLAT_FEE = "beyond_flat_fee"
    NONE = "none"


# --------------------------------------------------------------------------- rules


class Checks:
    """Records rule outcomes in order, applying operator waivers the policy allows."""

    def __init__(
        self,
        clauses: Mapping[Any, str],
        parameters: Mapping[Any, str],
        waivable: Collection[str],
        *,
        override: bool,
    ) -> None:
        self._clauses = clauses
        self._parameters = parameters
        self._waivable = frozenset(waivable)
        self._override = override
        self.outcomes: list[RuleOutcome] = []

    def can_waive(self, rule: str) -> bool:
        return self._override and rule in self._waivable

    def clause(self, rule: str, fallback: str | None = None) -> str:
        """The policy's citation for ``rule``; else ``fallback``; else the parameter section."""
        found = self._clauses.get(rule)
        if found is not None:
            return found
        if fallback is not None:
            return fallback
        return f"Policy parameter {self._parameters.get(rule, rule)} (no clause cited)."

    def record(
        self,
        rule: str,
        passed: bool,
        reason: str,
        *,
        clause: str | None = None,
        waivable: bool = True,
    ) -> bool:
        """Record one outcome; a failure the policy lets an operator waive passes, marked waived.

        ``waivable=False`` marks a failure no override can lift even when the rule id is listed
        (e.g. an activation that is still running).
        """
        waived = not passed and waivable and self.can_waive(rule)
        if waived:
            reason = f"{reason} Waived by an operator override."
        self.outcomes.append(
            RuleOutcome(
                rule_id=str(rule),
                clause=self.clause(rule) if clause is None else clause,
                passed=passed or waived,
                reason=reason,
                waived=waived,
            )
        )
        return passed or waived

    def record_waived(self, rule: str, reason: str, *, clause: str | None = None) -> None:
        """A rule that failed strictly but passes under a waiver computed by the caller."""
        self.outcomes.append(
            RuleOutcome(
                rule_id=str(rule),
                clause=self.clause(rule) if clause is None else clause,
                passed=True,
                reason=f"{reason} Waived by an operator override.",
                waived=True,
            )
        )

    @property
    def allowed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)


@dataclass(frozen=True, slots=True)
class StateVerdict:
    passed: bool
    reason: str
    clause: str | None
    effect: StateEffect | None


def account_state_verdict(
    policy: Policy, account: AccountFacts, now: datetime, *, refund: bool
) -> StateVerdict:
    """Apply the policy's account-state effects to a refund (``refund``) or a withdrawal."""
    what = "refunds" if refund else "withdrawals"
    if account.state is AccountState.ACTIVE:
        return StateVerdict(True, "The account is active.", None, None)
    described = _state_words(account)
    effect = policy.state_effect(account.state, account.state_reason)
    if effect is None:
        return StateVerdict(
            False,
            f"The account is {described}, and the policy has no rule for that state; "
            "an operator must decide.",
            None,
            None,
        )
    if not (effect.refund if refund else effect.withdrawal):
        return StateVerdict(
            False, f"The account is {described}: the policy gives no {what}.", effect.clause, effect
        )
    notes: list[str] = []
    if effect.within_months is not None:
        changed_at = account.state_changed_at
        if changed_at is None:  # AccountFacts already refuses this; keeps the type exact
            raise ValueError(f"a {account.state.value} account needs state_changed_at")
        deadline = add_months(changed_at, effect.within_months)
        if now > deadline:
            return StateVerdict(
                False,
                f"The account is {described} since {when(changed_at)}; {what} were possible "
                f"for {effect.within_months} months, until {when(deadline)}.",
                effect.clause,
                effect,
            )
        notes.append(f"{what} are possible until {when(deadline)}")
    if effect.handling_cost.is_positive:
        notes.append(f"a handling cost of {usd(effect.handling_cost)} is deducted")
    if effect.review:
        notes.append("an operator reviews the request")
    detail = f"; {', '.join(notes)}" if notes else ""
    return StateVerdict(
        True, f"The account is {described}: {what} are allowed{detail}.", effect.clause, effect
    )


def _state_words(account: AccountFacts) -> str:
    if account.state_reason is None:
        return account.state.value
    return f"{account.state.value} ({account.state_reason.value.replace('_', ' ')})"


# --------------------------------------------------------------------------- money


@dataclass(frozen=True, slots=True)
class Payout:
    network_fee_usd: Money
    network_fee_charged_usd: Money
    net_usd: Money
    net_native: Money


def payout(
    usd_owed: Money,
    rate: RateFacts,
    fee: NetworkFee,
    charge: FeeCharge,
    flat_fee: Money = ZERO_USD,
) -> Payout:
    """Coins paid for ``usd_owed`` (after USD fees) at ``rate``, minus the network fee share.

    See the module docstring for every rounding. ``flat_fee`` only matters for
    ``BEYOND_FLAT_FEE``: the part of the fee's USD value above it is charged.
    """
    payout_asset = rate.asset
    expected_fee_asset = fee_asset_of(payout_asset)
    if fee.amount.asset != expected_fee_asset:
        raise ValueError(
            f"a {payout_asset} payout pays its network fee in {expected_fee_asset}, "
            f"not {fee.amount.asset}"
        )
    fee_in_payout_asset = fee.amount.asset == payout_asset
    # A fee with its own rate is valued at it (the payout worker prices the fee it measured at
    # the payout-time rate); otherwise the payout rate prices a fee paid in the payout asset.
    fee_rate = fee.rate if fee.rate is not None else (rate if fee_in_payout_asset else None)
    if fee_rate is None:
        raise ValueError(f"the {fee.amount.asset} network fee needs its own USD rate")
    fee_num, fee_den = fee_rate.ratio()
    fee_usd = convert_up(fee.amount, fee_num, fee_den, USD)
    num, den = rate.ratio()
    if charge is FeeCharge.ALL and fee_in_payout_asset:
        # Deduct in coins: payout + fee = exactly the USD owed converted down.
        charged = fee_usd
        net_native = convert_down(usd_owed, den, num, payout_asset) - fee.amount
    else:
        if charge is FeeCharge.ALL:
            charged = fee_usd
        elif charge is FeeCharge.BEYOND_FLAT_FEE:
            charged = max(fee_usd - flat_fee, ZERO_USD)
        else:
            charged = ZERO_USD
        net_native = convert_down(usd_owed - charged, den, num, payout_asset)
    if not net_native.is_positive:
        # Nothing would be sent (a refusal): the figures say by how much it falls short.
        return Payout(fee_usd, charged, usd_owed - charged, net_native)
    net_usd = value_of(net_native, rate)
    return Payout(fee_usd, usd_owed - net_usd, net_usd, net_native)


def value_of(coins: Money, rate: RateFacts) -> Money:
    """What ``coins`` are worth at ``rate`` in USD, rounded down (toward minus infinity) to the
    micro-dollar: the one rule every displayed USD figure of a payout follows. Down, so a
    displayed figure never overstates what the coins are worth."""
    num, den = rate.ratio()
    numerator = coins.amount * num * 10**USD.decimals
    return Money(numerator // (den * 10**coins.asset.decimals), USD)


def review_due(
    policy: Policy, now: datetime, needs_review: bool, sla_days: int | None
) -> datetime | None:
    if not needs_review or sla_days is None:
        return None
    return add_business_days(now, sla_days, policy.holidays)


# --------------------------------------------------------------------------- shared pieces


def balance_breakdown(gross: Money, handling: Money, net: Money) -> Breakdown:
    return Breakdown(
        gross_usd=gross,
        handling_fee_usd=handling,
        flat_fee_usd=ZERO_USD,
        provider_fee_usd=ZERO_USD,
        network_fee_native=None,
        network_fee_usd=ZERO_USD,
        network_fee_charged_usd=ZERO_USD,
        net_usd=net,
        rate=None,
        rate_source=None,
        rate_lock_id=None,
        net_native=None,
        destination=Destination.BALANCE,
    )


def net_positive(checks: Checks, rule: str, b: Breakdown) -> None:
    net = b.net_native if b.net_native is not None else b.net_usd
    fees = b.handling_fee_usd + b.flat_fee_usd + b.provider_fee_usd + b.network_fee_charged_usd
    fee_words = f" after {usd(fees)} of fees" if fees.is_positive else ""
    clause = checks.clause(rule, NET_CLAUSE)
    if net.is_positive:
        checks.record(rule, True, f"The customer receives {net}{fee_words}.", clause=clause)
    else:
        checks.record(
            rule,
            False,
            f"Nothing would be paid out: {usd(b.gross_usd)}{fee_words} leaves {net}.",
            clause=clause,
        )


def check_requester(requested_by: str, operator_override: bool) -> None:
    if requested_by not in ("customer", "operator"):
        raise ValueError(f"requested_by is 'customer' or 'operator', got {requested_by!r}")
    if operator_override and requested_by != "operator":
        raise ValueError("only an operator can override a policy rule")


def check_positive_usd(name: str, amount: Money) -> None:
    if not isinstance(amount, Money) or amount.asset != USD or not amount.is_positive:
        raise ValueError(f"{name} must be a positive USD amount, got {amount!r}")


def duration(delta: timedelta) -> str:
    """A short, readable length of time ("10 days", "14 days 2 hours", "3 minutes")."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return plural(days, "day") + (f" {plural(hours, 'hour')}" if hours else "")
    if hours:
        return plural(hours, "hour") + (f" {plural(minutes, 'minute')}" if minutes else "")
    if minutes:
        return plural(minutes, "minute")
    return plural(seconds, "second")


def is_are(count: int) -> str:
    return "is" if count == 1 else "are"


# --------------------------------------------------------------------------- wording


def usd(amount: Money) -> str:
    sign = "-" if amount.is_negative else ""
    return f"{sign}${abs(amount).format()}"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")
