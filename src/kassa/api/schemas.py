"""Request and response bodies.

Amounts travel as `{"amount": "12.50", "asset": "USD"}`: a decimal string in whole units,
parsed exactly by `Money.parse`. JSON numbers are refused — a parser may already have rounded
them to a binary float before any of our code sees them.
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
from kassa.accounts.states import AccountState, effective_state
from kassa.ledger.model import Balance, HistoryEntry, Hold
from kassa.money import Asset, AssetMismatch, InvalidAmount, Money

MAX_HOLD_SECONDS = 7 * 24 * 3600
DEFAULT_HOLD_SECONDS = 24 * 3600
MAX_METADATA_BYTES = 16_384


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
    amount: str = Field(examples=["12.50"])
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

    external_id: str = Field(description="Your user id: 1-128 of A-Z a-z 0-9 . _ : @ -")
    metadata: dict[str, JsonValue] | None = None

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None and len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is limited to {MAX_METADATA_BYTES} bytes of JSON")
        return value


class AccountOut(BaseModel):
    id: uuid.UUID
    external_id: str
    status: str = Field(
        description="The state that applies: active, suspended, terminated or frozen (set by "
        "an operator, or frozen while a reversal keeps the balance below zero)",
        examples=["active"],
    )
    metadata: dict[str, Any]
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
    status: str = Field(examples=["pending", "captured", "voided", "expired"])
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
            status=hold.status.value,
            amount=AmountOut.of(hold.amount),
            captured_amount=None if captured is None else AmountOut.of(captured),
            expires_at=hold.expires_at,
            created_at=hold.created_at,
            resolved_at=hold.resolved_at,
            memo=hold.memo,
        )


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str
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


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str = Field(examples=["sqlite", "postgresql"])
    migration: str | None = Field(description="Alembic revision the database is at")
    watchers: list[WatcherOut] = Field(description="Each chain watcher as last recorded")


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is returned."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code")
    instance: str
