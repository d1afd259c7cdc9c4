"""What reconciliation finds: breaks, their classes and legs, and a run's outcome."""

from __future__ import annotations

import io
import pickle
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any


class Leg(StrEnum):
    LEDGER = "ledger"
    RECORDS = "records"
    CHAINS = "chains"
    SOLVENCY = "solvency"


class BreakClass(StrEnum):
    """Every kind of discrepancy, with the leg that finds it (see docs/reconciliation.md)."""

    # leg 1: the ledger on its own
    ASSET_UNBALANCED = "asset_unbalanced"
    TRANSACTION_UNBALANCED = "transaction_unbalanced"
    POSTED_SUMS_MISMATCH = "posted_sums_mismatch"
    PENDING_SUMS_MISMATCH = "pending_sums_mismatch"
    NEGATIVE_BALANCE = "negative_balance"
    CLEARING_NOT_ZERO = "clearing_not_zero"
    KEY_WITHOUT_OUTCOME = "key_without_outcome"
    # leg 2: records against the ledger
    DEPOSIT_CREDIT_MISMATCH = "deposit_credit_mismatch"
    CREDIT_WITHOUT_DEPOSIT = "credit_without_deposit"
    PAYOUT_SETTLEMENT_MISSING = "payout_settlement_missing"
    PAYOUT_FEE_LEGS_MISMATCH = "payout_fee_legs_mismatch"
    PAYOUT_HOLD_MISMATCH = "payout_hold_mismatch"
    ACTIVATION_HOLD_MISMATCH = "activation_hold_mismatch"
    # leg 3: the ledger and records against the chains
    DEPOSIT_MISSED = "deposit_missed"
    DEPOSIT_NOT_ON_CHAIN = "deposit_not_on_chain"
    HOT_WALLET_MISMATCH = "hot_wallet_mismatch"
    PAYOUT_NOT_ON_CHAIN = "payout_not_on_chain"
    PAYOUT_MISMATCH = "payout_mismatch"
    # leg 4: solvency
    UNDER_COVERED = "under_covered"


LEG_OF: dict[BreakClass, Leg] = {
    **{
        c: Leg.LEDGER
        for c in (
            BreakClass.ASSET_UNBALANCED,
            BreakClass.TRANSACTION_UNBALANCED,
            BreakClass.POSTED_SUMS_MISMATCH,
            BreakClass.PENDING_SUMS_MISMATCH,
            BreakClass.NEGATIVE_BALANCE,
            BreakClass.CLEARING_NOT_ZERO,
            BreakClass.KEY_WITHOUT_OUTCOME,
        )
    },
    **{
        c: Leg.RECORDS
        for c in (
            BreakClass.DEPOSIT_CREDIT_MISMATCH,
            BreakClass.CREDIT_WITHOUT_DEPOSIT,
            BreakClass.PAYOUT_SETTLEMENT_MISSING,
            BreakClass.PAYOUT_FEE_LEGS_MISMATCH,
            BreakClass.PAYOUT_HOLD_MISMATCH,
            BreakClass.ACTIVATION_HOLD_MISMATCH,
        )
    },
    **{
        c: Leg.CHAINS
        for c in (
            BreakClass.DEPOSIT_MISSED,
            BreakClass.DEPOSIT_NOT_ON_CHAIN,
            BreakClass.HOT_WALLET_MISMATCH,
            BreakClass.PAYOUT_NOT_ON_CHAIN,
            BreakClass.PAYOUT_MISMATCH,
        )
    },
    BreakClass.UNDER_COVERED: Leg.SOLVENCY,
}


class BreakStatus(StrEnum):
    NEW = "new"
    PERSISTING = "persisting"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Break:
    """One discrepancy as a run finds it. Amounts are minor units of `asset` (a count when the
    asset is None); ``difference`` is actual − expected."""

    cls: BreakClass
    object_id: str
    detail: str
    chain: str | None = None
    asset: str | None = None
    expected: int | None = None
    actual: int | None = None

    @property
    def leg(self) -> Leg:
        return LEG_OF[self.cls]

    @property
    def key(self) -> str:
        return "|".join((self.cls.value, self.chain or "", self.asset or "", self.object_id))

    @property
    def difference(self) -> int | None:
        if self.expected is None or self.actual is None:
            return None
        return self.actual - self.expected


Scope = tuple[Leg, str | None]
"""What a run checked: a leg, and for the chains leg the chain. Breaks of a scope a run did not
check (a node that did not answer) keep their status instead of being resolved."""


SPILL_CHUNK = 5_000
"""Breaks kept in memory before a chunk of them goes to the run's spill file."""


@dataclass(slots=True)
class Findings:
    """What a run found. Breaks are kept in chunks of `chunk`: each full chunk goes to a
    temporary file, so a run that finds a break for most of its records (a broken import, a
    fresh install) holds one chunk at a time, not all of them; `store.apply` reads them back
    chunk by chunk."""

    checked: set[Scope] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    """What a run could not check, and why (a node down, a check this node cannot answer)."""
    chunk: int = SPILL_CHUNK
    count: int = 0
    _pending: list[Break] = field(default_factory=list)
    _spill: IO[bytes] | None = None

    def add(self, found: Break) -> None:
        self._pending.append(found)
        self.count += 1
        if len(self._pending) >= self.chunk:
            if self._spill is None:
                # Closed by `close`, at the end of the run.
                self._spill = tempfile.TemporaryFile(prefix="kassa-breaks-")  # noqa: SIM115
            pickle.dump(self._pending, self._spill, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending = []

    def chunks(self) -> Iterator[list[Break]]:
        """Every break found so far, in the order found, one chunk at a time."""
        if self._spill is not None:
            self._spill.flush()
            self._spill.seek(0)
            while True:
                try:
                    yield pickle.load(self._spill)  # noqa: S301 - our own file, just written
                except EOFError:
                    break
            self._spill.seek(0, io.SEEK_END)
        if self._pending:
            yield list(self._pending)

    @property
    def breaks(self) -> list[Break]:
        """Every break at once: for a leg's own tests and small runs, not for a whole run."""
        return [found for chunk in self.chunks() for found in chunk]

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self._pending = []


@dataclass(frozen=True, slots=True)
class Outcome:
    run_id: uuid.UUID
    new: int
    persisting: int
    resolved: int
    summary: dict[str, Any]
    """The run's report (what the JSON file and the API show), ``open_breaks`` included."""

    @property
    def open_breaks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.summary.get("open_breaks", [])
        return found


Progress = Callable[[str], None]
"""Told what a long run is doing (one line per step)."""


def quiet(_message: str) -> None:
    return None
