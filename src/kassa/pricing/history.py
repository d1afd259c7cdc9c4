"""Rate history: storing aggregated rates with their quotes, and answering "the rate at T".

Every sample is written together with every verdict behind it (accepted quotes, rejected ones and
sources that failed), so a stored rate can always be explained source by source. Reading is by
time: the latest sample for "now", the nearest sample within a tolerance for "at T".
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, RowMapping, func, insert, select

from kassa.pricing.aggregate import Aggregate
from kassa.pricing.model import Symbol
from kassa.pricing.tables import rate_quote, rate_sample


@dataclass(frozen=True, slots=True)
class StoredQuote:
    source: str
    bid: Decimal | None
    ask: Decimal | None
    observed_at: datetime | None
    accepted: bool
    rejection: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class RateSample:
    """A stored aggregated rate. Prices are whole USD per whole coin."""

    id: int
    symbol: Symbol
    kind: str
    sampled_at: datetime
    market_bid: Decimal
    market_ask: Decimal
    bid: Decimal
    ask: Decimal
    spread_bps: int
    pegged: bool
    depegged: bool
    recorded_at: datetime
    quotes: tuple[StoredQuote, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources whose quotes the rate is the median of."""
        return tuple(q.source for q in self.quotes if q.accepted)


def record(conn: Connection, aggregate: Aggregate, *, kind: str, now: datetime) -> RateSample:
    """Store one aggregated rate and every verdict behind it; return it as stored."""
    sample_id = conn.execute(
        insert(rate_sample)
        .values(
            symbol=aggregate.symbol.value,
            kind=kind,
            sampled_at=aggregate.sampled_at,
            market_bid=aggregate.market_bid,
            market_ask=aggregate.market_ask,
            bid=aggregate.bid,
            ask=aggregate.ask,
            spread_bps=aggregate.spread_bps,
            pegged=aggregate.pegged,
            depegged=aggregate.depegged,
            accepted_count=aggregate.accepted_count,
            recorded_at=now,
        )
        .returning(rate_sample.c.id)
    ).scalar_one()
    conn.execute(
        insert(rate_quote),
        [
            {
                "sample_id": sample_id,
                "source": v.source,
                "bid": None if v.quote is None else _fit(v.quote.bid),
                "ask": None if v.quote is None else _fit(v.quote.ask),
                "observed_at": None if v.quote is None else v.quote.observed_at,
                "accepted": v.accepted,
                "rejection": v.rejection,
                "detail": v.detail,
            }
            for v in aggregate.verdicts
        ],
    )
    sample = get_sample(conn, sample_id)
    if sample is None:
        raise RuntimeError(f"rate sample {sample_id} vanished inside its own transaction")
    return sample


def _fit(price: Decimal) -> Decimal | None:
    """A source's raw price as stored (12 places); absurd values that cannot be stored are kept
    as None, since the verdict already records them as rejected."""
    if not price.is_finite() or abs(price) >= Decimal(10) ** 27:
        return None
    return price.quantize(Decimal(1).scaleb(-12))


def get_sample(conn: Connection, sample_id: int) -> RateSample | None:
    row = conn.execute(select(rate_sample).where(rate_sample.c.id == sample_id)).mappings().first()
    if row is None:
        return None
    return _with_quotes(conn, [row])[0]


def latest(conn: Connection, symbol: Symbol, *, kind: str = "live") -> RateSample | None:
    """The most recent sample of `symbol` (by the time the rate is for)."""
    row = (
        conn.execute(
            select(rate_sample)
            .where(rate_sample.c.symbol == symbol.value, rate_sample.c.kind == kind)
            .order_by(rate_sample.c.sampled_at.desc(), rate_sample.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else _with_quotes(conn, [row])[0]


def nearest(
    conn: Connection, symbol: Symbol, at: datetime, tolerance: timedelta
) -> RateSample | None:
    """The sample of `symbol` closest in time to `at`, if one lies within `tolerance`.

    Two indexed lookups (the last sample at or before `at`, the first after it) instead of a
    scan, so history can grow without bound. On a tie the earlier sample wins: it was the rate
    in force at `at`.
    """
    base = select(rate_sample).where(rate_sample.c.symbol == symbol.value)
    before = (
        conn.execute(
            base.where(rate_sample.c.sampled_at <= at, rate_sample.c.sampled_at >= at - tolerance)
            .order_by(rate_sample.c.sampled_at.desc(), rate_sample.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    after = (
        conn.execute(
            base.where(rate_sample.c.sampled_at > at, rate_sample.c.sampled_at <= at + tolerance)
            .order_by(rate_sample.c.sampled_at.asc(), rate_sample.c.id.asc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    candidates = [row for row in (before, after) if row is not None]
    if not candidates:
        return None
    best = min(candidates, key=lambda row: abs(row["sampled_at"] - at))
    return _with_quotes(conn, [best])[0]


def between(conn: Connection, symbol: Symbol, start: datetime, end: datetime) -> list[RateSample]:
    """Every sample of `symbol` taken in [start, end], oldest first (ties by id)."""
    rows = (
        conn.execute(
            select(rate_sample)
            .where(
                rate_sample.c.symbol == symbol.value,
                rate_sample.c.sampled_at >= start,
                rate_sample.c.sampled_at <= end,
            )
            .order_by(rate_sample.c.sampled_at, rate_sample.c.id)
        )
        .mappings()
        .all()
    )
    return _with_quotes(conn, rows) if rows else []


class SampleWindow:
    """Samples of one symbol read in one query, answering "the rate at T" like `nearest` for
    any T whose tolerance window the read covered: a batch of deposits is priced without a
    query (or a transaction) per deposit, and with the very sample `nearest` would pick."""

    def __init__(self, samples: Sequence[RateSample], start: datetime, end: datetime) -> None:
        self._samples = sorted(samples, key=lambda s: (s.sampled_at, s.id))
        self._times = [s.sampled_at for s in self._samples]
        self.start = start
        self.end = end

    def nearest(self, at: datetime, tolerance: timedelta) -> RateSample | None:
        """As `nearest`; None also when the window does not cover ``at ± tolerance``."""
        if at - tolerance < self.start or at + tolerance > self.end:
            return None
        split = bisect_right(self._times, at)
        candidates = []
        if split > 0 and self._times[split - 1] >= at - tolerance:
            candidates.append(self._samples[split - 1])  # the last at or before `at`
        if split < len(self._samples) and self._times[split] <= at + tolerance:
            candidates.append(self._samples[split])  # the first after it
        if not candidates:
            return None
        # On a tie the earlier sample wins (min keeps the first), as in `nearest`.
        return min(candidates, key=lambda sample: abs(sample.sampled_at - at))


def count_samples(conn: Connection, symbol: Symbol | None = None) -> int:
    query = select(func.count()).select_from(rate_sample)
    if symbol is not None:
        query = query.where(rate_sample.c.symbol == symbol.value)
    return int(conn.execute(query).scalar_one())


def _with_quotes(conn: Connection, rows: Sequence[RowMapping]) -> list[RateSample]:
    ids = [row["id"] for row in rows]
    quotes: dict[int, list[StoredQuote]] = defaultdict(list)
    for q in conn.execute(
        select(rate_quote).where(rate_quote.c.sample_id.in_(ids)).order_by(rate_quote.c.id)
    ).mappings():
        quotes[q["sample_id"]].append(
            StoredQuote(
                source=q["source"],
                bid=q["bid"],
                ask=q["ask"],
                observed_at=q["observed_at"],
                accepted=bool(q["accepted"]),
                rejection=q["rejection"],
                detail=q["detail"],
            )
        )
    return [_sample(row, quotes[row["id"]]) for row in rows]


def _sample(row: RowMapping, quotes: Iterable[StoredQuote]) -> RateSample:
    return RateSample(
        id=row["id"],
        symbol=Symbol(row["symbol"]),
        kind=row["kind"],
        sampled_at=row["sampled_at"],
        market_bid=row["market_bid"],
        market_ask=row["market_ask"],
        bid=row["bid"],
        ask=row["ask"],
        spread_bps=row["spread_bps"],
        pegged=bool(row["pegged"]),
        depegged=bool(row["depegged"]),
        recorded_at=row["recorded_at"],
        quotes=tuple(quotes),
    )
