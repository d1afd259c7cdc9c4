"""Leg 4: solvency — what Kassa owes its customers against the coins it holds.

Liabilities (micro-USD): every customer balance as posted (it includes what open payouts and
activations reserve) plus anything in the payout clearing account. Assets: the coins on the
deposit addresses and in the hot wallets as the nodes report them, valued at the current bid
(rounded down). Coverage is assets ÷ liabilities, in total and per asset against the payouts
reserved in that asset (coins that must leave in it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, select

from kassa.assets import price_symbol
from kassa.ledger.tables import ledger_account
from kassa.money import USD, asset
from kassa.payouts.tables import payout_request
from kassa.pricing import history
from kassa.reports.reconciliation.ledger_leg import CLEARING_CODE
from kassa.reports.reconciliation.model import Break, BreakClass, Findings, Leg

_OPEN = ("pending_review", "approved", "signed", "broadcast")


@dataclass(slots=True)
class Books:
    """What the database says, gathered in the run's reading transaction."""

    liabilities: int = 0
    reserved_usd: int = 0
    reserved: dict[str, int] = field(default_factory=dict)
    """Open payouts' coins per payout asset."""
    bids: dict[str, Decimal] = field(default_factory=dict)


def gather(conn: Connection) -> Books:
    books = Books()
    rows = select(
        ledger_account.c.code,
        ledger_account.c.kind,
        ledger_account.c.debits_posted,
        ledger_account.c.credits_posted,
    ).where((ledger_account.c.kind == "user") | (ledger_account.c.code == CLEARING_CODE))
    for row in conn.execution_options(yield_per=10_000).execute(rows):
        books.liabilities += int(row.credits_posted) - int(row.debits_posted)
    reserved: dict[str, int] = defaultdict(int)
    for request in conn.execute(
        select(
            payout_request.c.asset, payout_request.c.net_native, payout_request.c.gross_usd
        ).where(payout_request.c.status.in_(_OPEN))
    ):
        reserved[request.asset] += int(request.net_native)
        books.reserved_usd += int(request.gross_usd)
    books.reserved = dict(reserved)
    for code in ("BTC", "ETH", "USDT-ERC20", "TRX", "USDT-TRC20"):
        sample = history.latest(conn, price_symbol(code))
        if sample is not None:
            books.bids[code] = sample.bid
    return books


def usd_value(code: str, amount: int, bid: Decimal) -> int:
    """Micro-USD worth of `amount` minor units of `code` at `bid` USD per coin, rounded down."""
    coin = asset(code)
    scaled = Decimal(amount) * bid * (Decimal(10) ** (USD.decimals - coin.decimals))
    return int(scaled.to_integral_value(rounding="ROUND_FLOOR"))


def _ratio(assets: int, owed: int) -> str | None:
    if owed <= 0:
        return None
    return str((Decimal(assets) / Decimal(owed)).quantize(Decimal("0.0001"), "ROUND_FLOOR"))


def assess(
    books: Books, held: Mapping[str, int], found: Findings, *, judge: bool = True
) -> dict[str, object]:
    """The coverage report; an under-covered total or asset is a break (when `judge`: every
    chain was read, so the coins held are all counted)."""
    per_asset: dict[str, object] = {}
    total = 0
    for code in sorted(set(held) | set(books.reserved)):
        coins = held.get(code, 0)
        bid = books.bids.get(code)
        value = None if bid is None else usd_value(code, coins, bid)
        total += value or 0
        reserved = books.reserved.get(code, 0)
        ratio = _ratio(coins, reserved)
        per_asset[code] = {
            "coins": str(coins),
            "bid": None if bid is None else str(bid),
            "usd_micro": None if value is None else str(value),
            "reserved_payouts": str(reserved),
            "coverage": ratio,
        }
        if judge and reserved and coins < reserved:
            found.add(
                Break(
                    BreakClass.UNDER_COVERED,
                    code,
                    f"open payouts reserve {reserved} {code} minor units; the chains hold {coins}",
                    asset=code,
                    expected=reserved,
                    actual=coins,
                )
            )
    coverage = _ratio(total, books.liabilities)
    if judge and books.liabilities > 0 and total < books.liabilities:
        found.add(
            Break(
                BreakClass.UNDER_COVERED,
                "total",
                f"customers are owed {books.liabilities} micro-USD; the coins held are worth "
                f"{total} at the current bid",
                asset="USD",
                expected=books.liabilities,
                actual=total,
            )
        )
    if judge:
        found.checked.add((Leg.SOLVENCY, None))
    return {
        "liabilities_usd_micro": str(books.liabilities),
        "reserved_payouts_usd_micro": str(books.reserved_usd),
        "assets_usd_micro": str(total),
        "coverage": coverage,
        "assets": per_asset,
    }
