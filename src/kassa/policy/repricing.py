"""Re-pricing at approval: a committed refund or withdrawal priced again at the approval's rate.

Issue 14: when the market moves while a request waits for review, the policy decides — by
``refund.pricing`` / ``withdrawal.pricing`` — whether the committed figures stand
(``committed``, the default) or the request is priced again when the operator approves it
(``at_approval``: policy A prices a crypto refund "at the rate on the refund date").

What re-pricing keeps and what it changes:

* kept: every rule the policy applied when the request was made (eligibility is decided once,
  when the funds were reserved — a review lasting past a refund window does not refuse it), the
  gross USD (``usd_at_payment``: the refund is worth the USD the top-up credited; a withdrawal
  is the USD asked), and the USD fees (handling, flat, provider);
* changed: the rate, the network fee (read again from the chain), the network fee charged, the
  net USD and the net coins — computed by `kassa.policy.decisions.wallet_breakdown`, the very
  function a decision uses, so the figures follow the same rounding rule
  (``kassa.policy._support``);
* checked again: ``net_positive``, the one rule whose verdict depends on those figures. The
  minimums (``refund.minimum``, ``withdrawal.minimum``) apply to the gross, which re-pricing
  keeps, so they cannot turn. A re-priced decision that pays nothing is refused (`Repricing.
  allowed` is False) and the caller refuses the approval.

Pure, like every decision: the caller gathers the fresh rate and fee (`kassa.payouts.repricing`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from kassa.policy._support import Checks, check_now, net_positive, when
from kassa.policy.decisions import network_fee_charge, wallet_breakdown
from kassa.policy.facts import NetworkFee, RateFacts
from kassa.policy.model import Destination, Policy, Pricing, RefundRule
from kassa.policy.outcome import Breakdown, Decision, DecisionKind

__all__ = ["FIGURES", "Repricing", "pricing_of", "reprice", "reprices"]

FIGURES = (
    "rate",
    "network_fee_native",
    "network_fee_usd",
    "network_fee_charged_usd",
    "net_usd",
    "net_native",
)
"""The breakdown fields re-pricing may change (everything else is kept)."""

_NET_POSITIVE = RefundRule.NET_POSITIVE.value
"""The same id in both sections (`WithdrawalRule.NET_POSITIVE`)."""


def pricing_of(policy: Policy, kind: DecisionKind) -> Pricing:
    """When ``policy`` prices a payout of ``kind`` that waits for review."""
    if kind is DecisionKind.REFUND:
        return policy.refund.pricing
    if kind is DecisionKind.WITHDRAWAL:
        return policy.withdrawal.pricing
    raise ValueError(f"{kind.value} decisions pay nothing on chain")


def reprices(policy: Policy, committed: Decision) -> bool:
    """Does approving the request ``committed`` allowed re-price it under ``policy``?

    Only a payout on chain, only when ``policy`` is the one that decided it (a request made
    under another policy keeps the promise that policy made), and only under ``at_approval``."""
    b = committed.breakdown
    return (
        committed.kind in (DecisionKind.REFUND, DecisionKind.WITHDRAWAL)
        and b.net_native is not None
        and b.destination is not Destination.BALANCE
        and committed.policy == policy.name
        and pricing_of(policy, committed.kind) is Pricing.AT_APPROVAL
    )


@dataclass(frozen=True, slots=True)
class Repricing:
    """A committed decision and the same decision priced again at ``at``."""

    committed: Decision
    repriced: Decision
    at: datetime

    @property
    def old(self) -> Breakdown:
        return self.committed.breakdown

    @property
    def new(self) -> Breakdown:
        return self.repriced.breakdown

    @property
    def allowed(self) -> bool:
        return self.repriced.allowed

    @property
    def changed(self) -> bool:
        """Did any figure move (the same rate and fee give the same figures)?"""
        return any(getattr(self.old, name) != getattr(self.new, name) for name in FIGURES)

    def refusal(self) -> str | None:
        """Why the re-priced request would be refused (None when allowed)."""
        if self.allowed:
            return None
        return " ".join(rule.reason for rule in self.repriced.refusals)


def reprice(
    policy: Policy,
    committed: Decision,
    rate: RateFacts,
    network_fee: NetworkFee,
    now: datetime,
) -> Repricing:
    """Price ``committed`` (an allowed refund or withdrawal paid on chain) again at ``rate``
    with ``network_fee``; the module docstring says what is kept and what changes."""
    check_now(now)
    b = committed.breakdown
    if not committed.allowed:
        raise ValueError("only an allowed decision (a committed request) is re-priced")
    if b.net_native is None or b.destination is Destination.BALANCE:
        raise ValueError("only a payout on chain can be re-priced")
    if rate.asset != b.net_native.asset:
        raise ValueError(f"the rate prices {rate.asset}, the payout is in {b.net_native.asset}")
    new = wallet_breakdown(
        gross=b.gross_usd,
        handling=b.handling_fee_usd,
        flat_fee=b.flat_fee_usd,
        provider=b.provider_fee_usd,
        rate=rate,
        network_fee=network_fee,
        charge=network_fee_charge(policy, committed.kind),
        destination=b.destination,
    )
    section = policy.refund if committed.kind is DecisionKind.REFUND else policy.withdrawal
    checks = Checks(section.clauses, {}, (), override=False)
    net_positive(checks, _NET_POSITIVE, new)
    (outcome,) = checks.outcomes
    outcome = replace(
        outcome,
        reason=f"Re-priced at approval, {when(now)}, at ${rate.usd_per_unit} per {rate.asset}: "
        + outcome.reason,
    )
    rules = tuple(outcome if r.rule_id == _NET_POSITIVE else r for r in committed.rules)
    repriced = replace(
        committed,
        rules=rules,
        breakdown=new,
        allowed=all(r.passed for r in rules),
    )
    return Repricing(committed, repriced, now)
