"""The finance reports over a seeded history (tests/reports/conftest.py), on SQLite and
PostgreSQL, against figures worked out by hand here — never by the code under test.

November 2026 in Europe/Berlin runs from 2026-10-31T23:00Z to 2026-11-30T23:00Z.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kassa.reports.activity import activity
from kassa.reports.fees import fees
from kassa.reports.fx import fx
from kassa.reports.period import Period, parse_period
from kassa.reports.sla import sla
from kassa.reports.statement import statement
from kassa.reports.trial_balance import trial_balance

if TYPE_CHECKING:
    from conftest import History  # type: ignore[import-not-found]

BERLIN = ZoneInfo("Europe/Berlin")
NOVEMBER = Period.of_month(2026, 11, BERLIN)
LATER = datetime(2026, 12, 5, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_activity_per_berlin_day(finance_history: History) -> None:
    with finance_history.db.transaction() as conn:
        rows = [tuple(r) for r in activity(conn, NOVEMBER).rows]
    assert rows == [
        ("2026-11-02", "deposit", "credited", "BTC", "1", "0.001", "59.70"),
        ("2026-11-02", "usage", "charged", "USD", "3", "0.75", "0.75"),
        # 2026-11-10 23:30Z is 00:30 on the 11th in Berlin
        ("2026-11-11", "deposit", "credited", "USDT-TRC20", "1", "50.00", "50.00"),
        ("2026-11-12", "activation", "expired", "USD", "1", "2.00", "2.00"),
        ("2026-11-12", "activation", "fulfilled", "USD", "1", "1.50", "1.50"),
        ("2026-11-13", "activation", "cancelled", "USD", "1", "0.50", "0.50"),
        ("2026-11-20", "withdrawal", "confirmed", "BTC", "1", "0.00131", "100.00"),
        ("2026-11-25", "refund", "confirmed", "USDT-TRC20", "1", "18.70", "20.00"),
        ("2026-11-26", "withdrawal", "cancelled", "ETH", "1", "0.007", "25.00"),
        ("2026-11-30", "withdrawal", "pending_review", "USDT-ERC20", "1", "19.00", "25.00"),
        # the $0.10 of usage at 2026-11-30 23:30Z is 1 December in Berlin: not here
    ]
    with finance_history.db.transaction() as conn:
        utc_rows = list(activity(conn, parse_period("2026-11-30", "UTC")).rows)
    assert ("2026-11-30", "usage", "charged", "USD", "1", "0.10", "0.10") in utc_rows


def test_fees_fx_and_sla(finance_history: History) -> None:
    with finance_history.db.transaction() as conn:
        fee_rows = list(fees(conn, NOVEMBER).records())
        fx_rows = list(fx(conn, NOVEMBER, now=LATER).records())
        sla_november = list(sla(conn, NOVEMBER, now=LATER).records())
        sla_longer = list(
            sla(conn, parse_period("2026-11-01..2026-12-02", "Europe/Berlin"), now=LATER).records()
        )
        fee_december = list(fees(conn, parse_period("2026-12", "Europe/Berlin")).records())

    # Only W1 settled in November: $5 flat fee; charged 100 − 5 − 92.2895 = $2.7105; the
    # chain took 1 500 sat, at $70 450 = $1.05675; the house kept 2.7105 − 1.05675 = $1.65375.
    w1 = {
        "chain": "btc",
        "kind": "withdrawal",
        "payouts": "1",
        "service_fees_usd": "5.00",
        "flat_fees_usd": "5.00",
        "handling_fees_usd": "0.00",
        "provider_fees_usd": "0.00",
        "network_fee_charged_usd": "2.7105",
        "network_fee_paid_usd": "1.05675",
        "network_fee_variance_usd": "1.65375",
        "fee_asset": "BTC",
        "network_fee_paid": "0.000015",
    }
    assert fee_rows == [w1, {**w1, "chain": "total", "kind": "all"}]
    # R1 settled on 1 December: 4 TRX at $0.25 = $1.00 paid against $1.30 charged.
    assert fee_december[0]["chain"] == "tron"
    assert fee_december[0]["network_fee_paid_usd"] == "1.00"
    assert fee_december[0]["network_fee_variance_usd"] == "0.30"
    assert fee_december[0]["network_fee_paid"] == "4.00"

    by_key = {(r["section"], r["asset"]): r for r in fx_rows}
    # D1: 0.001 BTC credited at the bid $59 700 = $59.70, worth $60.00 at the market bid.
    assert by_key[("spread_deposits", "BTC")] == {
        "section": "spread_deposits",
        "asset": "BTC",
        "count": "1",
        "coins": "0.001",
        "book_usd": "59.70",
        "value_usd": "60.00",
        "result_usd": "0.30",
        "rate": "",
    }
    assert by_key[("spread_deposits", "USDT-TRC20")]["result_usd"] == "0.00"
    # W1: 131 000 sat priced at $92.2895 (ask 70 450); at the market ask 70 100: $91.831.
    assert by_key[("spread_payouts", "BTC")]["value_usd"] == "91.831"
    assert by_key[("spread_payouts", "BTC")]["result_usd"] == "0.4585"
    # Average BTC credit rate: (99.50 + 59.70) / 300 000 sat; 131 000 sat of it is
    # 131 000 × 159.20 / 300 000 = $69.517333 (down); they settled at $92.2895.
    assert by_key[("realised", "BTC")]["book_usd"] == "69.517333"
    assert by_key[("realised", "BTC")]["value_usd"] == "92.2895"
    assert by_key[("realised", "BTC")]["result_usd"] == "22.772167"
    # Held at the end: 300 000 − 131 000 − 1 500 (the fee) = 167 500 sat; book
    # 167 500 × 159.20 / 300 000 = $88.886666; at the last bid before the end ($65 000): $108.875.
    assert by_key[("unrealised", "BTC")] == {
        "section": "unrealised",
        "asset": "BTC",
        "count": "",
        "coins": "0.001675",
        "book_usd": "88.886666",
        "value_usd": "108.875",
        "result_usd": "19.988334",
        "rate": "65000",
    }
    assert by_key[("unrealised", "USDT-TRC20")]["result_usd"] == "0.00"

    # Due dates: W1 Friday 20th + 2 business days = Tuesday 24th 09:00Z, approved Monday: met.
    # W2 cancelled before its due date: met. W3 due 2 December: open. R1 made Wednesday 25th,
    # the 26th a holiday: due Monday 30th 10:00Z, still undecided at the end: overdue.
    refunds, withdrawals, total = sla_november
    assert (
        withdrawals["met"],
        withdrawals["missed"],
        withdrawals["open"],
        withdrawals["overdue"],
    ) == ("2", "0", "1", "0")
    assert (refunds["met"], refunds["missed"], refunds["open"], refunds["overdue"]) == (
        "0",
        "0",
        "0",
        "1",
    )
    # W1 approved 3 days 6 hours after the request, confirmed an hour later.
    assert (
        withdrawals["approve_median_s"] == withdrawals["approve_p95_s"] == str(3 * 86400 + 6 * 3600)
    )
    assert withdrawals["confirm_median_s"] == str(3 * 86400 + 7 * 3600)
    assert total["requests"] == "4" and total["approved"] == "1"
    # Up to 2 December R1 was approved on the 1st 08:00Z, after its due date: missed.
    refunds_later = sla_longer[0]
    assert (refunds_later["missed"], refunds_later["overdue"]) == ("1", "0")
    assert refunds_later["approve_median_s"] == str(5 * 86400 + 22 * 3600)
    assert refunds_later["confirm_median_s"] == str(5 * 86400 + 23 * 3600)


def test_statement_and_trial_balance(finance_history: History) -> None:
    with finance_history.db.transaction() as conn:
        lines = [
            (r["kind"], r["credit"], r["debit"], r["balance"])
            for r in statement(conn, "c1", NOVEMBER).records()
        ]
        times = [r["time"] for r in statement(conn, "c1", NOVEMBER).records()]
        balances = trial_balance(conn, at("2026-11-15 00:00"))
        rows = {r["account"]: r for r in balances.records()}
        # Early (fewer transactions before than after: read forward) and after everything.
        early = {
            r["account"]: r["balance"]
            for r in trial_balance(conn, at("2026-10-21 00:00")).records()
        }
        late = {r["account"]: r["balance"] for r in trial_balance(conn, LATER).records()}
    # Opening: D3's $99.50 less October's $0.10 of usage; D1 +59.70; usage −0.75; W1's hold
    # captured on the 23rd −100.00; the usage of 2026-11-30 23:30Z is in December in Berlin.
    assert lines == [
        ("opening_balance", "", "", "99.40"),
        ("deposit", "59.70", "", "159.10"),
        ("usage", "", "0.75", "158.35"),
        ("capture", "", "100.00", "58.35"),
        ("closing_balance", "", "", "58.35"),
    ]
    assert times[1:4] == ["2026-11-02T10:00:00Z", "2026-11-02T12:00:00Z", "2026-11-23T16:00:00Z"]

    c1, c2 = (f"user:{finance_history.customers[w]}:USD" for w in ("c1", "c2"))
    assert (rows[c1]["credits"], rows[c1]["debits"], rows[c1]["balance"]) == (
        "159.20",
        "0.85",
        "158.35",
    )
    # c2: $50 deposited, the $1.50 activation captured on the 12th (holds are not postings).
    assert rows[c2]["balance"] == "48.50"
    assert rows["house:revenue:USD"]["balance"] == "2.35"
    assert rows["fx:BTC:BTC"]["credits"] == "0.003"
    assert rows["fx:BTC:USD"]["balance"] == "159.20"
    assert rows["wallet:btc-deposits:BTC"]["balance"] == "0.003"
    # Accounts first used after the instant (W1's hold on the 20th) did not exist yet.
    assert "clearing:payouts:USD" not in rows
    assert balances.meta["total_USD"] == "debits 211.55 credits 211.55"
    assert (early[c1], early[c2]) == ("99.50", "0.00")
    # At the end: c1 158.35 − W1's $100 − the $0.10 of usage on 30 November (Z); c2 48.50 −
    # R1's $20; the TRON hot wallet paid 18.70 USDT and 4 TRX.
    assert (late[c1], late[c2]) == ("58.25", "28.50")
    assert late["wallet:tron-hot:TRX"] == "-4.00"
    assert balances.meta["total_BTC"] == "debits 0.003 credits 0.003"


def test_a_25_hour_day(finance_history: History) -> None:
    """2026-10-25 in Berlin runs from 22:00Z on the 24th to 23:00Z on the 25th (the clocks went
    back): 22:30Z on the 25th is still that day there, though summer time would say the 26th."""
    with finance_history.db.transaction() as conn:
        sunday = list(activity(conn, parse_period("2026-10-25", "Europe/Berlin")).rows)
        monday = list(activity(conn, parse_period("2026-10-26", "Europe/Berlin")).rows)
        week = list(activity(conn, parse_period("2026-10-19..2026-10-26", "Europe/Berlin")).rows)
    assert sunday == [("2026-10-25", "usage", "charged", "USD", "2", "0.10", "0.10")]
    assert monday == []
    assert [r[0] for r in week] == ["2026-10-20", "2026-10-25"]


def test_period_days_follow_the_zone() -> None:
    autumn = parse_period("2026-10-25", "Europe/Berlin").days()[0]
    spring = parse_period("2026-03-29", "Europe/Berlin").days()[0]
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    month = parse_period("2026-11", "Europe/Berlin")
    assert (month.first, month.last, month.label) == (
        date(2026, 11, 1),
        date(2026, 11, 30),
        "2026-11",
    )
    assert month.start == at("2026-10-31 23:00")
    assert len(month.days()) == 30
