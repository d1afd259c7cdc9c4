"""Value types of the ledger: accounts, balances, postings, transactions, holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kassa.money import Asset, Money


class NormalSide(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountKind(StrEnum):
    USER = "user"
    REVENUE = "revenue"
    ADJUSTMENT = "adjustment"
    CLEARING = "clearing"
    FX = "fx"
    WALLET = "wallet"
    FEE = "fee"


class TransactionKind(StrEnum):
    TRANSFER = "transfer"
    CAPTURE = "capture"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"
    DEPOSIT = "deposit"
    USAGE = "usage"
    PAYOUT = "payout"


class HoldStatus(StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


AccountId = int
TransactionId = uuid.UUID
HoldId = uuid.UUID


@dataclass(frozen=True, slots=True)
class Balance:
    """The four running sums of an account, in minor units of `asset`."""

    asset: Asset
    normal_side: NormalSide
    allow_negative: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def posted(self) -> Money:
        """Posted balance on the account's normal side."""
        net = self.credits_posted - self.debits_posted
        return Money(net if self.normal_side is NormalSide.CREDIT else -net, self.asset)

    @property
    def pending_outgoing(self) -> Money:
        """Reserved by open holds that will reduce this account."""
        side = (
            self.debits_pending if self.normal_side is NormalSide.CREDIT else self.credits_pending
        )
        return Money(side, self.asset)

    @property
    def pending_incoming(self) -> Money:
        side = (
            self.credits_pending if self.normal_side is NormalSide.CREDIT else self.debits_pending
        )
        return Money(side, self.asset)

    @property
    def available(self) -> Money:
        """Posted minus what open holds reserve: what may still be spent."""
        return self.posted - self.pending_outgoing

    @property
    def frozen(self) -> bool:
        """An account that may not go negative but is (only a reversal can do that): nothing may
        leave it until credits cover the shortfall."""
        return not self.allow_negative and self.available.amount < 0


@dataclass(frozen=True, slots=True)
class Account:
    id: AccountId
    code: str
    asset: Asset
    normal_side: NormalSide
    kind: AccountKind
    owner: str | None
    allow_negative: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Posting:
    id: int
    transaction_id: TransactionId
    account_id: AccountId
    amount: Money
    """Signed: positive is a debit, negative a credit."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One posting of an account with its transaction's description."""

    posting_id: int
    transaction_id: TransactionId
    kind: TransactionKind
    amount: Money
    """Signed on the account's normal side: positive increases the balance."""
    memo: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JournalTransaction:
    id: TransactionId
    kind: TransactionKind
    memo: str | None
    actor: str | None
    reason: str | None
    reverses_id: TransactionId | None
    hold_id: HoldId | None
    created_at: datetime
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True)
class Hold:
    id: HoldId
    debit_account_id: AccountId
    credit_account_id: AccountId
    amount: Money
    status: HoldStatus
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    captured_amount: Money | None
    capture_transaction_id: TransactionId | None
    memo: str | None
