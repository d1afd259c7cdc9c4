"""Request and response bodies.

Amounts travel as `{"amount": "12.50", "asset": "USD"}`: a decimal string in whole units,
parsed exactly by `Money.parse`. JSON numbers are refused — a parser may already have rounded
them to a binary float before any of our code sees them.

The published OpenAPI description is generated from these models, so each constraint the
server enforces is written on its field: patterns, enums, bounds. Where the domain layer checks
a rule with its own stable error code (an external id answers `invalid_external_id`, not a
generic `validation_error`), the pattern is declared for the schema only (`schema_only`) and the
domain check stays the one that refuses: the document tells the truth and the code stays stable.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kassa import money
from kassa.accounts.service import EXTERNAL_ID
from kassa.accounts.states import AccountState, effective_state
from kassa.ledger.model import Balance, HistoryEntry, Hold, HoldStatus
from kassa.money import Asset, AssetMismatch, InvalidAmount, Money
from kassa.policy.model import Destination
from kassa.policy.outcome import DecisionKind

MAX_HOLD_SECONDS = 7 * 24 * 3600
DEFAULT_HOLD_SECONDS = 24 * 3600
MAX_METADATA_BYTES = 16_384


def schema_only(**constraints: Any) -> dict[str, Any]:
    """JSON Schema keywords for the document alone: the domain layer enforces them with its
    own error code (pydantic would answer a generic `validation_error` instead)."""
    return dict(constraints)


EXTERNAL_ID_PATTERN = EXTERNAL_ID.pattern
EXTERNAL_ID_DESCRIPTION = "Your user id: 1-128 of A-Z a-z 0-9 . _ : @ -"

ExternalId = Annotated[
    str,
    Field(
        description=EXTERNAL_ID_DESCRIPTION,
        examples=["user-1042"],
        json_schema_extra=schema_only(pattern=EXTERNAL_ID_PATTERN, minLength=1, maxLength=128),
    ),
]


def _decimal_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "invalid_amount",
            'amounts are decimal strings such as "12.50", not JSON numbers',
        )
    return value


DecimalString = Annotated[
    str,
    BeforeValidator(_decimal_string),
    Field(description="Whole units as a decimal string", examples=["12.50"]),
]


class AmountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: DecimalString
    asset: str = Field(examples=["USD"])

    def to_money(self, expected: Asset) -> Money:
        """Exact, positive, and in `expected` (raises MoneyError subclasses otherwise)."""
        unit = money.asset(self.asset)
        if unit != expected:
            raise AssetMismatch(f"this amount must be in {expected.code.value}, got {unit.code}")
        value = Money.parse(self.amount, unit)
        if not value.is_positive:
            raise InvalidAmount(f"amount must be greater than zero, got {self.amount!r}")
        return value


class AmountOut(BaseModel):
    amount: str = Field(
        examples=["12.50"],
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        description="Whole units as a decimal string, exact",
    )
    asset: str = Field(examples=["USD"])

    @classmethod
    def of(cls, value: Money) -> AmountOut:
        return cls(amount=value.format(), asset=value.asset.code.value)


class BalanceOut(BaseModel):
    asset: str
    posted: AmountOut
    pending: AmountOut = Field(description="Reserved by open holds")
    available: AmountOut = Field(description="Posted minus pending: what may still be spent")
    frozen: bool = Field(description="Below zero after a reversal; nothing may leave it")

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls(
            asset=balance.asset.code.value,
            posted=AmountOut.of(balance.posted),
            pending=AmountOut.of(balance.pending_outgoing),
            available=AmountOut.of(balance.available),
            frozen=balance.frozen,
        )


class AccountCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId
    metadata: dict[str, JsonValue] | None = Field(
        default=None,
        description=f"Free-form JSON object of your own, at most {MAX_METADATA_BYTES} bytes",
        examples=[{"plan": "pro"}],
    )

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None and len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is limited to {MAX_METADATA_BYTES} bytes of JSON")
        return value


class AccountOut(BaseModel):
    id: uuid.UUID
    external_id: str = Field(examples=["user-1042"])
    status: str = Field(
        description="The state that applies: active, suspended, terminated or frozen (set by "
        "an operator, or frozen while a reversal keeps the balance below zero)",
        examples=["active"],
        json_schema_extra={"enum": [state.value for state in AccountState]},
    )
    metadata: dict[str, JsonValue] = Field(description="As given at creation (free-form)")
    created_at: datetime
    balance: BalanceOut

    @model_validator(mode="after")
    def _frozen_by_balance(self) -> AccountOut:
        # The stored state is what an operator set; an active account that a reversal took
        # below zero is frozen too (DESIGN §6), and the balance is right here to say so.
        self.status = effective_state(AccountState(self.status), self.balance.frozen).value
        return self


class LedgerEntryOut(BaseModel):
    posting_id: int
    transaction_id: uuid.UUID
    kind: str
    amount: AmountOut = Field(description="Signed: positive raised the balance")
    memo: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: HistoryEntry) -> LedgerEntryOut:
        return cls(
            posting_id=entry.posting_id,
            transaction_id=entry.transaction_id,
            kind=entry.kind.value,
            amount=AmountOut.of(entry.amount),
            memo=entry.memo,
            created_at=entry.created_at,
        )


class LedgerPageOut(BaseModel):
    entries: list[LedgerEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older entries; null: done")


class HoldCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountIn
    expires_in_seconds: int = Field(
        default=DEFAULT_HOLD_SECONDS,
        ge=1,
        le=MAX_HOLD_SECONDS,
        strict=True,
        description="Unresolved holds expire and release their funds (default one day)",
    )
    memo: str | None = Field(default=None, max_length=500)


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountIn | None = Field(
        default=None, description="At most the held amount; the rest is released. Default: all"
    )


class HoldOut(BaseModel):
    id: uuid.UUID
    status: HoldStatus
    amount: AmountOut
    captured_amount: AmountOut | None
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    memo: str | None

    @classmethod
    def of(cls, hold: Hold) -> HoldOut:
        captured = hold.captured_amount
        return cls(
            id=hold.id,
            status=hold.status,
            amount=AmountOut.of(hold.amount),
            captured_amount=None if captured is None else AmountOut.of(captured),
            expires_at=hold.expires_at,
            created_at=hold.created_at,
            resolved_at=hold.resolved_at,
            memo=hold.memo,
        )


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId
    direction: Literal["credit", "debit"] = Field(
        description="credit raises the customer's balance, debit lowers it"
    )
    amount: AmountIn
    reason: str = Field(min_length=1, max_length=500)


class AdjustmentOut(BaseModel):
    transaction_id: uuid.UUID
    external_id: str
    balance: BalanceOut


class WatcherOut(BaseModel):
    chain: str
    scanned_height: int
    head_height: int | None
    final_height: int | None
    lag: int | None = Field(description="Blocks the node has that are not scanned yet")
    last_tick_at: datetime | None
    last_error: str | None = Field(description="The most recent failure (see last_error_at)")
    last_error_at: datetime | None


class NodeOut(BaseModel):
    chain: str
    priority: int = Field(description="0 is the primary; the order of rpc_urls")
    url: str = Field(description="Without credentials")
    state: Literal["active", "standby", "behind", "down"] = Field(
        description="active: read now; standby: healthy, not read; behind: its tip is below "
        "the watcher's checkpoint or far below another node; down: its last request failed"
    )
    height: int | None = Field(description="Its tip when last asked")
    latency_ms: int | None = Field(description="Its last answer's round trip")
    errors: int = Field(description="Failures in a row")
    last_error: str | None
    checked_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str = Field(examples=["sqlite", "postgresql"])
    migration: str | None = Field(description="Alembic revision the database is at")
    watchers: list[WatcherOut] = Field(description="Each chain watcher as last recorded")
    nodes: list[NodeOut] = Field(
        default_factory=list,
        description="Each node of a chain with several (rpc_urls), as its watcher last saw it",
    )


class ProblemFieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query, path or header, then the field")
    message: str
    type: str | None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is returned (`application/problem+json`)."""

    type: str = Field(description="`urn:kassa:problem:<code>`", examples=["urn:kassa:problem:x"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable machine-readable error code")
    instance: str = Field(description="The request's path")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Validation errors only: every invalid field"
    )


# --------------------------------------------------------------------------- decisions


class RuleOutcomeOut(BaseModel):
    """One rule of the policy applied to the request."""

    rule_id: str = Field(description="Stable id of the rule", examples=["refund_window"])
    clause: str = Field(description="The policy text the rule comes from")
    passed: bool = Field(description="The rule does not stand in the way (waived included)")
    waived: bool = Field(description="Failed on its own; an operator override let it pass")
    reason: str = Field(description="A sentence support can read to the customer")


class BreakdownOut(BaseModel):
    """The money of a decision: `net_usd = gross_usd − handling_fee_usd − flat_fee_usd −
    provider_fee_usd − network_fee_charged_usd`; `net_native` is what the destination receives
    on chain (null for refunds to the balance)."""

    gross_usd: AmountOut = Field(description="What leaves the balance (or the top-up's value)")
    handling_fee_usd: AmountOut
    flat_fee_usd: AmountOut
    provider_fee_usd: AmountOut
    network_fee_native: AmountOut | None = Field(description="Chain fee estimate, fee asset")
    network_fee_usd: AmountOut
    network_fee_charged_usd: AmountOut = Field(description="The part the customer bears")
    net_usd: AmountOut
    rate: str | None = Field(description="Whole USD per whole coin of the payout asset")
    rate_source: str | None
    rate_lock_id: str | None
    net_native: AmountOut | None = Field(description="Paid on chain, rounded down")
    destination: Destination
    network_fee_source: Literal["live", "fallback"] | None = Field(
        default=None,
        description="live: read from the chain at quote time, safety margin included; "
        "fallback: the configured estimate (the node did not answer); null: nothing on chain",
    )


class DecisionOut(BaseModel):
    """A policy decision as recorded: the verdict, every rule with its reason, and the money."""

    kind: DecisionKind
    policy: str = Field(description="Name of the policy that decided")
    subject: str = Field(description="The top-up id, the activation id, or the payout asset")
    requested_by: Literal["customer", "operator"]
    decided_at: str = Field(description="ISO 8601", json_schema_extra={"format": "date-time"})
    allowed: bool
    needs_review: bool = Field(description="An operator must approve before anything is paid")
    review_due_at: str | None = Field(
        description="ISO 8601; when a review is needed and the policy promises a time",
        json_schema_extra={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    )
    overridable: bool = Field(description="Refused, but an operator override would allow it")
    rules: list[RuleOutcomeOut] = Field(description="Every rule, refusals and passes alike")
    breakdown: BreakdownOut


class RefusalProblem(Problem):
    """A refund or withdrawal the policy refused: the problem plus the full decision."""

    decision: DecisionOut | None = Field(
        default=None, description="Every rule with its reason, and the money"
    )


class PricedFiguresOut(BaseModel):
    """The figures of a refund or withdrawal that re-pricing at approval may change."""

    rate: str | None = Field(description="Whole USD per whole coin", examples=["50000"])
    rate_lock_id: str | None = Field(description="The rate lock (null in a preview: none taken)")
    network_fee_native: AmountOut | None = Field(description="The chain fee, in its fee asset")
    network_fee_source: str | None = Field(description="live (read from the chain) or fallback")
    network_fee_charged: AmountOut = Field(description="The network fee the customer bears, USD")
    net: AmountOut = Field(description="Net USD: what the coins sent are worth")
    net_native: AmountOut | None = Field(description="The coins sent")


class RepricingOut(BaseModel):
    """A request priced again at approval (policy ``pricing = "at_approval"``): the committed
    figures and the re-priced ones. The gross USD (and the hold reserving it) stays."""

    pricing: str = Field(description="at_approval", examples=["at_approval"])
    at: datetime = Field(description="When it was (or, in a preview, would be) re-priced")
    actor: str | None = Field(
        default=None, description="The operator whose approval re-priced it (null: a preview)"
    )
    gross: AmountOut = Field(description="Gross USD, unchanged by re-pricing")
    committed: PricedFiguresOut
    repriced: PricedFiguresOut
    changed: bool = Field(description="Any figure differs from the committed one")
    allowed: bool = Field(description="The policy allows the re-priced payout")
    refusal: str | None = Field(description="Why the policy would refuse it (null: allowed)")


class PayoutEventOut(BaseModel):
    """One step of a refund's or withdrawal's history."""

    model_config = ConfigDict(populate_by_name=True)

    from_status: str | None = Field(alias="from", description="null for the creation")
    to_status: str = Field(alias="to")
    actor: str
    reason: str | None
    at: datetime
    kind: str = Field(
        default="status",
        description="status: a step of its status; repriced: its figures changed at approval",
        examples=["status", "repriced"],
    )
    repricing: RepricingOut | None = Field(
        default=None, description="A repriced entry's committed and re-priced figures"
    )
