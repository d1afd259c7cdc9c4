"""Solvency's arithmetic (pure: no database, no chain)."""

from __future__ import annotations

from decimal import Decimal

from kassa.reports.reconciliation.model import BreakClass, Findings, Leg
from kassa.reports.reconciliation.solvency import Books, assess, usd_value


def test_coins_are_valued_at_the_bid_rounded_down() -> None:
    assert usd_value("BTC", 100_000, Decimal("60000")) == 60_000_000  # 0.001 BTC = $60
    assert usd_value("ETH", 1, Decimal("3000")) == 0  # a wei is worth less than a micro-dollar
    assert usd_value("TRX", 1_000_001, Decimal("0.25")) == 250_000


def test_coverage_in_total_and_per_asset_and_when_it_is_short() -> None:
    books = Books(
        liabilities=100_000_000,
        reserved_usd=30_000_000,
        reserved={"ETH": 10**16},
        bids={"BTC": Decimal("60000"), "ETH": Decimal("3000")},
    )
    found = Findings()
    report = assess(books, {"BTC": 200_000, "ETH": 2 * 10**16}, found)
    assert report["coverage"] == "1.8000"  # $120 + $60 against $100
    assert report["assets"]["ETH"]["coverage"] == "2.0000"  # type: ignore[index]
    assert found.breaks == [] and (Leg.SOLVENCY, None) in found.checked

    short = Findings()
    report = assess(books, {"BTC": 100_000, "ETH": 10**15}, short)
    assert report["coverage"] == "0.6300"
    assert sorted((b.cls, b.object_id) for b in short.breaks) == [
        (BreakClass.UNDER_COVERED, "ETH"),
        (BreakClass.UNDER_COVERED, "total"),
    ]

    unjudged = Findings()
    assess(books, {}, unjudged, judge=False)  # not every chain was read
    assert unjudged.breaks == [] and not unjudged.checked
