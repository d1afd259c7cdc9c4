"""FX: what the house earns on exchange rates — the spread, the realised result of the coins
that left with payouts, and the unrealised result of the coins it still holds.

Sections (the ``section`` column), per asset:

* ``spread_deposits`` — deposits credited with their payment time in the period: ``coins``
  received, ``book_usd`` credited (at the bid), ``value_usd`` their value at the market bid of
  the same rate sample; ``result_usd`` = value − credited, the spread the house kept.
* ``spread_payouts`` — payouts confirmed in the period: ``coins`` sent (``net_native``),
  ``book_usd`` the net USD they were priced at (at the ask), ``value_usd`` the same coins at the
  market ask of the same sample; ``result_usd`` = priced − value.
* ``realised`` — the same payouts: ``book_usd`` the coins at the house's average credit rate
  (every credited deposit of the asset paid before the period's end: USD credited ÷ coins
  received), ``value_usd`` what they settled (net USD at the payout rate); ``result_usd`` =
  value − book: positive when the coins left worth more than they came in at.
* ``unrealised`` — the coins the house holds at the period's end (its FX position,
  ``fx:<coin>:<coin>``, as of that instant): ``book_usd`` at the average credit rate,
  ``value_usd`` at the latest bid at or before the end; ``result_usd`` = value − book.

USD figures round down to the micro-dollar. Deposits and payouts are streamed from the database
one row at a time (each is valued at its own rate sample); the average credit rate and the
position are grouped sums.

Columns: ``section``, ``asset``, ``count`` (deposits or payouts; empty for ``unrealised``),
``coins`` (in ``asset``), ``book_usd``, ``value_usd``, ``result_usd``, ``rate`` (the rate used
for ``value_usd`` of ``unrealised``, USD per coin; empty otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from kassa.assets import on_chain, price_symbol
from kassa.deposits.tables import deposit
from kassa.money import USD, Money, asset, convert_down
from kassa.payouts.tables import payout_request
from kassa.pricing.model import price_text
from kassa.pricing.tables import rate_lock, rate_sample
from kassa.reports._sql import exact_sum, prepare
from kassa.reports.model import Report, amount_text, usd_text
from kassa.reports.period import Period
from kassa.reports.trial_balance import balances_at

__all__ = ["COLUMNS", "FxLine", "fx", "fx_lines"]

COLUMNS = ("section", "asset", "count", "coins", "book_usd", "value_usd", "result_usd", "rate")
SECTIONS = ("spread_deposits", "spread_payouts", "realised", "unrealised")
_STREAM_ROWS = 2_000


@dataclass(slots=True)
class FxLine:
    section: str
    asset: str
    count: int | None = 0
    coins: int = 0
    book: int = 0
    value: int = 0
    rate: Decimal | None = None

    @property
    def result(self) -> int:
        if self.section == "spread_payouts":
            return self.book - self.value
        return self.value - self.book

    def text(self) -> tuple[str, ...]:
        return (
            self.section,
            self.asset,
            "" if self.count is None else str(self.count),
            amount_text(self.coins, self.asset),
            usd_text(self.book),
            usd_text(self.value),
            usd_text(self.result),
            "" if self.rate is None else price_text(self.rate),
        )


def fx_lines(conn: Connection, period: Period, *, now: datetime | None = None) -> list[FxLine]:
    prepare(conn)
    lines: dict[tuple[str, str], FxLine] = {}

    def line(section: str, code: str) -> FxLine:
        return lines.setdefault((section, code), FxLine(section, code))

    deposits = (
        select(deposit.c.asset, deposit.c.amount, deposit.c.usd_amount, rate_sample.c.market_bid)
        .join(rate_lock, rate_lock.c.id == deposit.c.rate_lock_id)
        .join(rate_sample, rate_sample.c.id == rate_lock.c.sample_id)
        .where(
            deposit.c.status == "credited",
            deposit.c.first_seen_at >= period.start,
            deposit.c.first_seen_at < period.end,
        )
    )
    for row in conn.execution_options(yield_per=_STREAM_ROWS).execute(deposits):
        item = line("spread_deposits", row.asset)
        item.count = (item.count or 0) + 1
        item.coins += int(row.amount)
        item.book += int(row.usd_amount)
        item.value += _usd_down(int(row.amount), row.asset, row.market_bid)

    average = _average_credit_rates(conn, period.end)
    payouts = (
        select(
            payout_request.c.asset,
            payout_request.c.net_native,
            payout_request.c.net_usd,
            rate_sample.c.market_ask,
        )
        .join(rate_lock, rate_lock.c.id == payout_request.c.rate_lock_id)
        .join(rate_sample, rate_sample.c.id == rate_lock.c.sample_id)
        .where(
            payout_request.c.status == "confirmed",
            payout_request.c.settled_at >= period.start,
            payout_request.c.settled_at < period.end,
        )
    )
    for row in conn.execution_options(yield_per=_STREAM_ROWS).execute(payouts):
        coins, net = int(row.net_native), int(row.net_usd)
        spread = line("spread_payouts", row.asset)
        spread.count = (spread.count or 0) + 1
        spread.coins += coins
        spread.book += net
        spread.value += _usd_down(coins, row.asset, row.market_ask)
        realised = line("realised", row.asset)
        realised.count = (realised.count or 0) + 1
        realised.coins += coins
        realised.value += net
    for (section, code), item in lines.items():
        if section == "realised":
            item.book = _at_average(item.coins, average.get(code))

    moment = period.end if now is None else min(period.end, now)
    for balance in balances_at(conn, period.end, code_prefix="fx:"):
        _, coin, leg = balance.code.split(":", 2)
        if coin != leg or not on_chain(coin):
            continue
        held = balance.credits - balance.debits  # deposits credit the coin leg
        if held == 0:
            continue
        bid = _latest_bid(conn, coin, moment)
        item = FxLine("unrealised", coin, None, held)
        item.book = _at_average(held, average.get(coin))
        item.value = 0 if bid is None else _usd_down(held, coin, bid)
        item.rate = bid
        lines[("unrealised", coin)] = item
    return [lines[key] for key in sorted(lines, key=lambda k: (SECTIONS.index(k[0]), k[1]))]


def fx(conn: Connection, period: Period, *, now: datetime | None = None) -> Report:
    rows = [item.text() for item in fx_lines(conn, period, now=now)]
    return Report("fx", COLUMNS, rows, period.describe())


def _average_credit_rates(conn: Connection, before: datetime) -> dict[str, tuple[int, int]]:
    """Per asset: (USD credited, coins received) of the credited deposits paid before it."""
    query = (
        select(
            deposit.c.asset,
            exact_sum(conn, deposit.c.usd_amount).label("usd"),
            exact_sum(conn, deposit.c.amount).label("coins"),
        )
        .where(deposit.c.status == "credited", deposit.c.first_seen_at < before)
        .group_by(deposit.c.asset)
    )
    return {row.asset: (int(row.usd or 0), int(row.coins or 0)) for row in conn.execute(query)}


def _at_average(coins: int, average: tuple[int, int] | None) -> int:
    """``coins`` at the average credit rate, micro-USD rounded down (0 with no deposits)."""
    if average is None or average[1] == 0:
        return 0
    usd, received = average
    return (coins * usd) // received


def _latest_bid(conn: Connection, code: str, moment: datetime) -> Decimal | None:
    symbol = price_symbol(code).value
    bid: Decimal | None = conn.execute(
        select(rate_sample.c.bid)
        .where(rate_sample.c.symbol == symbol, rate_sample.c.sampled_at <= moment)
        .order_by(rate_sample.c.sampled_at.desc(), rate_sample.c.id.desc())
        .limit(1)
    ).scalar()
    return bid


def _usd_down(amount: int, code: str, rate: Decimal) -> int:
    num, den = rate.as_integer_ratio()
    return convert_down(Money(amount, asset(code)), num, den, USD).amount
