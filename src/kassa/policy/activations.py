"""Activation refunds and claim windows: the balance-side decisions of a policy.

Design
------
An activation is a purchase held against the balance with an expiry (docs/domain.md §6). Whether its
price goes back is a policy question with the same shape as a refund: every rule listed with its
clause and reason, a `Decision` with a breakdown (always to the balance, never on chain), and an
operator override limited to what the policy lists. Claim windows (top-up errors, disputes) are
a single rule, used by operators before they correct a balance and by activation refunds of
fulfilled activations (a dispute).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from kassa.policy._support import (
    ZERO_USD,
    Checks,
    balance_breakdown,
    check_now,
    check_requester,
    duration,
    review_due,
    when,
)
from kassa.policy.facts import ActivationFacts, ActivationOutcome
from kassa.policy.model import ActivationRule, ClaimKind, Policy
from kassa.policy.outcome import Decision, DecisionKind, Requester, RuleOutcome

__all__ = ["check_claim_window", "quote_activation_refund"]

_ACTIVATION_PARAMETERS = {
    ActivationRule.ACTIVATION_OUTCOME: "activations.refund_expired / refund_cancelled / "
    "refund_fulfilled",
    ActivationRule.DISPUTE_WINDOW: "claims.dispute_days",
}


def quote_activation_refund(
    policy: Policy,
    activation: ActivationFacts,
    now: datetime,
    *,
    requested_by: Requester = "customer",
    operator_override: bool = False,
) -> Decision:
    """Decide whether an activation's price goes back to the balance.

    Expired and cancelled activations are refunded automatically when the policy says so (the
    spending service voids the hold and records this decision). A fulfilled one is refunded only
    when the policy allows it or an operator waives the rule after a manual review (policy D's
    "technical error on our side"), and only within the dispute claim window.
    """
    check_now(now)
    check_requester(requested_by, operator_override)
    rules = policy.activations
    A = ActivationRule
    checks = Checks(
        rules.clauses, _ACTIVATION_PARAMETERS, rules.operator_may_waive, override=operator_override
    )
    outcome = activation.outcome

    if outcome is ActivationOutcome.PENDING:
        checks.record(
            A.ACTIVATION_OUTCOME,
            False,
            "The activation is still waiting for a code; cancelling it returns the price.",
            waivable=False,
        )
    elif outcome is ActivationOutcome.EXPIRED:
        checks.record(
            A.ACTIVATION_OUTCOME,
            rules.refund_expired,
            "The activation expired without a code; its price goes back to the balance."
            if rules.refund_expired
            else "The activation expired, and this policy does not refund expired activations.",
        )
    elif outcome is ActivationOutcome.CANCELLED:
        checks.record(
            A.ACTIVATION_OUTCOME,
            rules.refund_cancelled,
            "The activation was cancelled before a code arrived; its price goes back to the "
            "balance."
            if rules.refund_cancelled
            else "The activation was cancelled, and this policy does not refund cancellations.",
        )
    else:
        checks.record(
            A.ACTIVATION_OUTCOME,
            rules.refund_fulfilled,
            "The activation was fulfilled, and this policy refunds fulfilled activations."
            if rules.refund_fulfilled
            else "A code was received, so the activation is fulfilled and cannot be refunded.",
        )

    if outcome is not ActivationOutcome.FULFILLED:
        checks.record(
            A.DISPUTE_WINDOW, True, "A refund of an unfulfilled activation needs no dispute."
        )
    else:
        window = _claim_outcome(policy, ClaimKind.DISPUTE, activation.activated_at, now)
        clause = rules.clauses.get(A.DISPUTE_WINDOW, window.clause)
        checks.record(A.DISPUTE_WINDOW, window.passed, window.reason, clause=clause)

    price = activation.price_usd
    breakdown = balance_breakdown(price, ZERO_USD, price)
    # A refund of a fulfilled activation is a manual decision by nature (a support ticket).
    needs_review = checks.allowed and outcome is ActivationOutcome.FULFILLED
    decision = Decision(
        kind=DecisionKind.ACTIVATION_REFUND,
        policy=policy.name,
        subject=activation.id,
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
    overridden = quote_activation_refund(
        policy, activation, now, requested_by="operator", operator_override=True
    )
    return replace(decision, overridable=overridden.allowed)


# --------------------------------------------------------------------------- claims


def check_claim_window(
    policy: Policy, kind: ClaimKind, occurred_at: datetime, now: datetime
) -> RuleOutcome:
    """Is a claim of ``kind`` about an event at ``occurred_at`` still in time?

    Top-up errors (duplicate, wrong amount, wrong account) and disputes are handled by operators;
    this tells them whether the customer raised the claim within the policy's window.
    """
    check_now(now)
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware (UTC)")
    return _claim_outcome(policy, kind, occurred_at, now)


def _claim_outcome(
    policy: Policy, kind: ClaimKind, occurred_at: datetime, now: datetime
) -> RuleOutcome:
    days = policy.claims.days(kind)
    words = "top-up error" if kind is ClaimKind.TOPUP_ERROR else "dispute"
    clause = policy.claims.clauses.get(kind, "policy parameters, section [claims]")
    if days is None:
        return RuleOutcome(kind.value, clause, True, f"A {words} claim has no time limit.")
    deadline = occurred_at + timedelta(days=days)
    since = f"The event was {when(occurred_at)}, {duration(now - occurred_at)} ago"
    if now <= deadline:
        reason = f"{since}; a {words} claim is possible within {days} days, until {when(deadline)}."
        return RuleOutcome(kind.value, clause, True, reason)
    reason = f"{since}; the {days}-day window for a {words} claim closed {when(deadline)}."
    return RuleOutcome(kind.value, clause, False, reason)
