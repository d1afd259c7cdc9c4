"""Rate locks: the rate a deposit or payout is valued at, stored once and never recomputed.

A lock is keyed by its *purpose* — a string naming what it values, such as
``deposit:btc:<txid>:<vout>`` or ``payout:<id>`` — under a unique constraint, so two racing
callers get the same lock and a retry after a crash finds the first one. It copies the side's
rate and the sources behind it from the sample, so the lock alone explains the valuation.

Conversions round in the house's favour (docs/domain.md §2): what a customer is credited rounds
down, what a customer is paid out in crypto rounds down, what a customer is charged rounds up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, RowMapping, select
from sqlalchemy.dialects import postgresql, sqlite

from kassa.money import USD, Asset, AssetCode, Money, convert_down, convert_up
from kassa.pricing.errors import RateLockNotFound
from kassa.pricing.history import RateSample
from kassa.pricing.model import Symbol, symbol_of
from kassa.pricing.tables import rate_lock


class Side(StrEnum):
    BID = "bid"
    """Deposits: what the house pays for a coin it receives."""
    ASK = "ask"
    """Payouts and refunds: what the house charges for a coin it sends."""


@dataclass(frozen=True, slots=True)
class RateLock:
    id: uuid.UUID
    purpose: str
    asset: AssetCode
    symbol: Symbol
    side: Side
    rate: Decimal
    """Whole USD per whole coin of `asset`."""
    priced_at: datetime
    sample_id: int
    sources: tuple[str, ...]
    locked_at: datetime

    def _ratio(self) -> tuple[int, int]:
        num, den = self.rate.as_integer_ratio()
        return num, den

    def to_usd(self, amount: Money) -> Money:
        """USD credited for `amount` of the asset (rounded down: credits never round up)."""
        self._check(amount)
        num, den = self._ratio()
        return convert_down(amount, num, den, USD)

    def usd_charge_for(self, amount: Money) -> Money:
        """USD charged for `amount` of the asset, e.g. a network fee (rounded up)."""
        self._check(amount)
        num, den = self._ratio()
        return convert_up(amount, num, den, USD)

    def from_usd(self, usd: Money, asset: Asset) -> Money:
        """Coins paid out for `usd` (rounded down: the house never sends a fraction extra)."""
        if usd.asset != USD:
            raise ValueError(f"from_usd converts USD, not {usd.asset}")
        if asset.code != self.asset:
            raise ValueError(f"this lock prices {self.asset}, not {asset.code}")
        num, den = self._ratio()
        return convert_down(usd, den, num, asset)

    def _check(self, amount: Money) -> None:
        if amount.asset.code != self.asset:
            raise ValueError(f"this lock prices {self.asset}, not {amount.asset.code}")


@dataclass(frozen=True, slots=True)
class LockRequest:
    """One rate lock to take (`lock_rates`): `lock_rate`'s arguments but the connection and
    the time."""

    purpose: str
    asset: AssetCode
    side: Side
    sample: RateSample
    priced_at: datetime


def lock_rate(
    conn: Connection,
    *,
    purpose: str,
    asset: AssetCode,
    side: Side,
    sample: RateSample,
    priced_at: datetime,
    now: datetime,
) -> RateLock:
    """Lock `sample`'s `side` rate for `purpose`; if that purpose is locked already, return the
    existing lock unchanged (first writer wins, under the unique constraint)."""
    request = LockRequest(purpose, asset, side, sample, priced_at)
    values = _values(request, now)
    if values is None:
        existing = get_lock_by_purpose(conn, purpose)
        if existing is not None:
            return existing
        raise ValueError(f"a {sample.symbol} rate cannot value {asset}")
    # One statement: a purpose locked before (or by a concurrent transaction, which this one
    # waits for) inserts nothing, and the lock that was there is returned unchanged.
    inserted = conn.execute(_INSERT_UNLESS_LOCKED[conn.dialect.name], values).first()
    if inserted is None:
        existing = get_lock_by_purpose(conn, purpose)
        if existing is None:
            raise RuntimeError(f"rate lock for {purpose!r} neither inserted nor found")
        return existing
    return _lock(values)


def lock_rates(
    conn: Connection, requests: Sequence[LockRequest], *, now: datetime
) -> dict[str, RateLock]:
    """`lock_rate` for many purposes at once, by purpose: the new locks in one multi-row
    ``INSERT … ON CONFLICT (purpose) DO NOTHING RETURNING purpose``, then the purposes locked
    before (by an earlier attempt or a concurrent transaction) read in one query. The first
    request of a purpose wins, as the first writer does in `lock_rate`."""
    wanted: dict[str, dict[str, Any]] = {}
    unpriceable: dict[str, LockRequest] = {}
    for request in requests:
        if request.purpose in wanted or request.purpose in unpriceable:
            continue
        values = _values(request, now)
        if values is None:
            unpriceable[request.purpose] = request  # only a lock taken before can answer
        else:
            wanted[request.purpose] = values
    inserted: set[str] = set()
    if wanted:
        statement = _INSERT_UNLESS_LOCKED[conn.dialect.name]
        inserted = set(conn.execute(statement, list(wanted.values())).scalars())
    found = {purpose: _lock(wanted[purpose]) for purpose in inserted}
    earlier = [purpose for purpose in [*wanted, *unpriceable] if purpose not in inserted]
    if earlier:
        rows = conn.execute(select(rate_lock).where(rate_lock.c.purpose.in_(earlier))).mappings()
        found.update({str(row["purpose"]): _lock(row) for row in rows})
    for purpose, request in unpriceable.items():
        if purpose not in found:
            raise ValueError(f"a {request.sample.symbol} rate cannot value {request.asset}")
    missing = [purpose for purpose in wanted if purpose not in found]
    if missing:
        raise RuntimeError(f"rate locks for {missing!r} neither inserted nor found")
    return found


def _values(request: LockRequest, now: datetime) -> dict[str, Any] | None:
    """The row that locks `request`; None when its sample cannot value its asset."""
    sample = request.sample
    if symbol_of(request.asset) is not sample.symbol:
        return None
    return {
        "id": uuid.uuid4(),
        "purpose": request.purpose,
        "asset": request.asset.value,
        "symbol": sample.symbol.value,
        "side": request.side.value,
        "rate": sample.bid if request.side is Side.BID else sample.ask,
        "priced_at": request.priced_at,
        "sample_id": sample.id,
        "sources": json.dumps(list(sample.sources)),
        "locked_at": now,
    }


# ``INSERT … ON CONFLICT (purpose) DO NOTHING RETURNING purpose``, per dialect, built once:
# one row (or a multi-row executemany) inserts nothing for a purpose locked before.
_INSERT_UNLESS_LOCKED: dict[str, Any] = {
    module.dialect.name: module.insert(rate_lock)
    .on_conflict_do_nothing(index_elements=[rate_lock.c.purpose])
    .returning(rate_lock.c.purpose)
    for module in (postgresql, sqlite)
}


def get_lock(conn: Connection, lock_id: uuid.UUID) -> RateLock:
    row = conn.execute(select(rate_lock).where(rate_lock.c.id == lock_id)).mappings().first()
    if row is None:
        raise RateLockNotFound(f"no rate lock {lock_id}")
    return _lock(row)


def get_lock_by_purpose(conn: Connection, purpose: str) -> RateLock | None:
    row = conn.execute(select(rate_lock).where(rate_lock.c.purpose == purpose)).mappings().first()
    return None if row is None else _lock(row)


def _lock(row: RowMapping | dict[str, object]) -> RateLock:
    sources = row["sources"]
    rate = row["rate"]
    lock_id = row["id"]
    priced_at = row["priced_at"]
    locked_at = row["locked_at"]
    sample_id = row["sample_id"]
    if not (
        isinstance(sources, str)
        and isinstance(rate, Decimal)
        and isinstance(lock_id, uuid.UUID)
        and isinstance(priced_at, datetime)
        and isinstance(locked_at, datetime)
        and isinstance(sample_id, int)
    ):
        raise TypeError(f"malformed rate lock row {dict(row)!r}")
    return RateLock(
        id=lock_id,
        purpose=str(row["purpose"]),
        asset=AssetCode(str(row["asset"])),
        symbol=Symbol(str(row["symbol"])),
        side=Side(str(row["side"])),
        rate=rate,
        priced_at=priced_at,
        sample_id=sample_id,
        sources=tuple(json.loads(sources)),
        locked_at=locked_at,
    )
