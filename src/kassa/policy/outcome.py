"""What a policy decision returns: the verdict, every rule with its reason, and the money.

Design
------
A `Decision` is a value: the caller stores it with the refund or withdrawal request (``as_record``
gives plain JSON-ready data) so that, months later, support can read which rules were applied,
which clause each came from, and exactly how the amount was computed. Every rule is listed even
after the first refusal, so a customer hears every reason at once rather than one per attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, TypedDict

from kassa.money import Money, asset
from kassa.policy.model import Destination

__all__ = [
    "Breakdown",
    "BreakdownRecord",
    "Decision",
    "DecisionKind",
    "DecisionRecord",
    "MoneyRecord",
    "Requester",
    "RuleOutcome",
    "RuleRecord",
    "breakdown_of",
    "decision_of",
]

Requester = Literal["customer", "operator"]


class DecisionKind(StrEnum):
    REFUND = "refund"
    WITHDRAWAL = "withdrawal"
    ACTIVATION_REFUND = "activation_refund"


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule of the policy applied to one request."""

    rule_id: str
    """Stable id (a `RefundRule`, `WithdrawalRule`, `ActivationRule` or `ClaimKind` value)."""
    clause: str
    """The policy text the rule comes from (a citation), or the parameter name if none is given."""
    passed: bool
    """True when the rule does not stand in the way (including when an operator waived it)."""
    reason: str
    """A sentence a support agent can read to the customer."""
    waived: bool = False
    """The rule failed on its own and an operator override let it pass."""


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The money of a decision. USD fields are micro-USD `Money`; native fields are minor units.

    ``net_usd = gross_usd − handling_fee_usd − flat_fee_usd − provider_fee_usd −
    network_fee_charged_usd``. ``net_native`` is what the destination receives on chain (None for
    refunds to the balance). Either may be zero or negative; the decision is then a refusal.
    """

    gross_usd: Money
    """What leaves the customer's balance (or the top-up's USD value being refunded)."""
    handling_fee_usd: Money
    """Handling cost of the account state (policy B's termination clauses)."""
    flat_fee_usd: Money
    """Flat fee per withdrawal."""
    provider_fee_usd: Money
    """Payment-provider fee the customer bears."""
    network_fee_native: Money | None
    """The chain fee estimate, in the chain's fee asset (None when nothing goes on chain)."""
    network_fee_usd: Money
    """That estimate in USD, rounded up."""
    network_fee_charged_usd: Money
    """The part of the network fee the customer bears, USD (rounded up)."""
    net_usd: Money
    rate: Decimal | None
    """Whole USD per whole coin of the payout asset at the refund / withdrawal date."""
    rate_source: str | None
    rate_lock_id: str | None
    net_native: Money | None
    """Paid out on chain, in the payout asset's minor units, rounded down."""
    destination: Destination
    network_fee_source: str | None = None
    """``live`` (read from the chain, margin included) or ``fallback`` (the configured
    estimate); None when nothing goes on chain."""


class MoneyRecord(TypedDict):
    amount: str
    asset: str


class RuleRecord(TypedDict):
    rule_id: str
    clause: str
    passed: bool
    waived: bool
    reason: str


class BreakdownRecord(TypedDict):
    gross_usd: MoneyRecord
    handling_fee_usd: MoneyRecord
    flat_fee_usd: MoneyRecord
    provider_fee_usd: MoneyRecord
    network_fee_native: MoneyRecord | None
    network_fee_usd: MoneyRecord
    network_fee_charged_usd: MoneyRecord
    net_usd: MoneyRecord
    rate: str | None
    rate_source: str | None
    rate_lock_id: str | None
    net_native: MoneyRecord | None
    destination: str
    network_fee_source: str | None


class DecisionRecord(TypedDict):
    """The shape `Decision.as_record` gives: what is stored with a request and what the API
    answers (`kassa.api.schemas.DecisionOut` describes the same fields to clients)."""

    kind: str
    policy: str
    subject: str
    requested_by: Requester
    decided_at: str
    allowed: bool
    needs_review: bool
    review_due_at: str | None
    overridable: bool
    rules: list[RuleRecord]
    breakdown: BreakdownRecord


def _money_record(value: Money) -> MoneyRecord:
    return {"amount": value.format(), "asset": value.asset.code.value}


def _optional_money(value: Money | None) -> MoneyRecord | None:
    return None if value is None else _money_record(value)


def _money_of(record: Mapping[str, Any]) -> Money:
    return Money.parse(str(record["amount"]), asset(str(record["asset"])), allow_negative=True)


def _optional_money_of(record: Mapping[str, Any] | None) -> Money | None:
    return None if record is None else _money_of(record)


def breakdown_of(record: Mapping[str, Any]) -> Breakdown:
    """A `Breakdown` again from its stored record (`Decision.record`'s ``breakdown``)."""
    rate = record.get("rate")
    return Breakdown(
        gross_usd=_money_of(record["gross_usd"]),
        handling_fee_usd=_money_of(record["handling_fee_usd"]),
        flat_fee_usd=_money_of(record["flat_fee_usd"]),
        provider_fee_usd=_money_of(record["provider_fee_usd"]),
        network_fee_native=_optional_money_of(record.get("network_fee_native")),
        network_fee_usd=_money_of(record["network_fee_usd"]),
        network_fee_charged_usd=_money_of(record["network_fee_charged_usd"]),
        net_usd=_money_of(record["net_usd"]),
        rate=None if rate is None else Decimal(str(rate)),
        rate_source=record.get("rate_source"),
        rate_lock_id=record.get("rate_lock_id"),
        net_native=_optional_money_of(record.get("net_native")),
        destination=Destination(record["destination"]),
        network_fee_source=record.get("network_fee_source"),
    )


def decision_of(record: Mapping[str, Any]) -> Decision:
    """A `Decision` again from its stored record (what a request keeps): the inverse of
    `Decision.record`, so a stored decision can be re-priced (`kassa.policy.repricing`)."""
    due = record.get("review_due_at")
    return Decision(
        kind=DecisionKind(record["kind"]),
        policy=str(record["policy"]),
        subject=str(record["subject"]),
        requested_by="operator" if record["requested_by"] == "operator" else "customer",
        decided_at=datetime.fromisoformat(str(record["decided_at"])),
        allowed=bool(record["allowed"]),
        rules=tuple(
            RuleOutcome(
                rule_id=str(r["rule_id"]),
                clause=str(r["clause"]),
                passed=bool(r["passed"]),
                reason=str(r["reason"]),
                waived=bool(r.get("waived", False)),
            )
            for r in record["rules"]
        ),
        breakdown=breakdown_of(record["breakdown"]),
        needs_review=bool(record["needs_review"]),
        review_due_at=None if due is None else datetime.fromisoformat(str(due)),
        overridable=bool(record["overridable"]),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one refund, withdrawal or activation refund."""

    kind: DecisionKind
    policy: str
    """Name of the policy that decided."""
    subject: str
    """What was decided about: the top-up id, the activation id, or the payout asset."""
    requested_by: Requester
    decided_at: datetime
    allowed: bool
    rules: tuple[RuleOutcome, ...]
    breakdown: Breakdown
    needs_review: bool
    """An operator must approve before anything is paid (as the policy or account state says)."""
    review_due_at: datetime | None
    """``decided_at`` plus the review SLA in business days, when a review is needed and the
    policy promises a time."""
    overridable: bool
    """Refused, but the same request with an operator override (of the rules the policy lets
    an operator waive) would be allowed."""

    @property
    def refusals(self) -> tuple[RuleOutcome, ...]:
        return tuple(rule for rule in self.rules if not rule.passed)

    @property
    def waivers(self) -> tuple[RuleOutcome, ...]:
        return tuple(rule for rule in self.rules if rule.waived)

    def rule(self, rule_id: str) -> RuleOutcome:
        """The outcome of one rule by id (KeyError if the decision has no such rule)."""
        for outcome in self.rules:
            if outcome.rule_id == rule_id:
                return outcome
        raise KeyError(rule_id)

    def summary(self) -> str:
        """One paragraph for a support agent."""
        if not self.allowed:
            return "Refused: " + " ".join(rule.reason for rule in self.refusals)
        b = self.breakdown
        paid = f"{b.net_native}" if b.net_native is not None else f"{b.net_usd}"
        where = b.destination.value.replace("_", " ")
        review = " after an operator's review" if self.needs_review else ""
        return f"Allowed: pays {paid} to the {where}{review}."

    def as_record(self) -> dict[str, Any]:
        """JSON-ready data (amounts as decimal strings with their asset) to store with a request:
        `record` as a plain dict, for the callers that carry it as one (problem bodies)."""
        return dict(self.record())

    def record(self) -> DecisionRecord:
        """`as_record`, typed: the fields `DecisionRecord` names, nothing else."""
        b = self.breakdown
        return {
            "kind": self.kind.value,
            "policy": self.policy,
            "subject": self.subject,
            "requested_by": self.requested_by,
            "decided_at": self.decided_at.isoformat(),
            "allowed": self.allowed,
            "needs_review": self.needs_review,
            "review_due_at": None if self.review_due_at is None else self.review_due_at.isoformat(),
            "overridable": self.overridable,
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "clause": r.clause,
                    "passed": r.passed,
                    "waived": r.waived,
                    "reason": r.reason,
                }
                for r in self.rules
            ],
            "breakdown": {
                "gross_usd": _money_record(b.gross_usd),
                "handling_fee_usd": _money_record(b.handling_fee_usd),
                "flat_fee_usd": _money_record(b.flat_fee_usd),
                "provider_fee_usd": _money_record(b.provider_fee_usd),
                "network_fee_native": _optional_money(b.network_fee_native),
                "network_fee_usd": _money_record(b.network_fee_usd),
                "network_fee_charged_usd": _money_record(b.network_fee_charged_usd),
                "net_usd": _money_record(b.net_usd),
                "rate": None if b.rate is None else format(b.rate, "f"),
                "rate_source": b.rate_source,
                "rate_lock_id": b.rate_lock_id,
                "net_native": _optional_money(b.net_native),
                "destination": b.destination.value,
                "network_fee_source": b.network_fee_source,
            },
        }
