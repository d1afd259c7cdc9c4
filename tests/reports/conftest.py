"""A small finance history seeded through the real ledger (holds, captures, balanced journal
transactions) with the deposit, usage, activation, rate and payout rows beside it, dated so that
the reports' figures can be worked out by hand (see test_finance_reports.py).

Times are UTC. The reports read November 2026 in Europe/Berlin (UTC+1 then), so
2026-11-10 23:30Z falls on 11 November and 2026-11-30 23:30Z on 1 December.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, insert

from kassa.accounts import service as customers
from kassa.accounts.tables import customer_account
from kassa.db import Database
from kassa.deposits.tables import deposit, deposit_address
from kassa.ledger import holds, house
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, post
from kassa.money import BTC, ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Asset, Money
from kassa.payouts.tables import payout_event, payout_request
from kassa.policy import add_business_days
from kassa.pricing.tables import rate_lock, rate_sample
from kassa.spending.tables import activation, usage_batch

HOLIDAYS = frozenset({date(2026, 11, 26)})
"""The policy's holiday list in this history (used for the refund's due date)."""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def usd(text: str) -> Money:
    return Money.parse(text, USD)


@dataclass
class History:
    db: Database
    customers: dict[str, uuid.UUID] = field(default_factory=dict)
    ledger_ids: dict[str, int] = field(default_factory=dict)
    locks: dict[str, uuid.UUID] = field(default_factory=dict)
    addresses: dict[tuple[str, str], int] = field(default_factory=dict)


def _new_id(key: object) -> int:
    assert key is not None
    return int(key[0])  # type: ignore[index]


def _sample(
    conn: Connection, symbol: str, when: str, market: tuple[str, str], quoted: tuple[str, str]
) -> int:
    result = conn.execute(
        insert(rate_sample).values(
            symbol=symbol,
            kind="live",
            sampled_at=at(when),
            market_bid=Decimal(market[0]),
            market_ask=Decimal(market[1]),
            bid=Decimal(quoted[0]),
            ask=Decimal(quoted[1]),
            spread_bps=50,
            pegged=symbol == "USDT",
            depegged=False,
            accepted_count=3,
            recorded_at=at(when),
        )
    )
    return _new_id(result.inserted_primary_key)


def _lock(
    conn: Connection,
    name: str,
    sample: int,
    code: str,
    symbol: str,
    side: str,
    rate: str,
    when: str,
) -> uuid.UUID:
    lock_id = uuid.uuid4()
    conn.execute(
        insert(rate_lock).values(
            id=lock_id,
            purpose=f"test:{name}",
            asset=code,
            symbol=symbol,
            side=side,
            rate=Decimal(rate),
            priced_at=at(when),
            sample_id=sample,
            sources="[]",
            locked_at=at(when),
        )
    )
    return lock_id


def _deposit(
    conn: Connection,
    history: History,
    who: str,
    coin: Asset,
    chain: str,
    amount: int,
    usd_amount: int | None,
    when: str,
    lock: uuid.UUID | None,
    status: str = "credited",
) -> uuid.UUID:
    account = history.customers[who]
    address_id = history.addresses.get((who, chain))
    if address_id is None:
        address_id = _new_id(
            conn.execute(
                insert(deposit_address).values(
                    customer_account_id=account,
                    chain=chain,
                    address=f"{who}-{chain}",
                    match_key=f"{who}-{chain}",
                    key_id="k",
                    derivation_index=len(history.addresses),
                    created_at=at(when),
                )
            ).inserted_primary_key
        )
        history.addresses[(who, chain)] = address_id
    deposit_id = uuid.uuid4()
    conn.execute(
        insert(deposit).values(
            id=deposit_id,
            chain=chain,
            asset=coin.code.value,
            txid=uuid.uuid4().hex,
            position=0,
            deposit_address_id=address_id,
            customer_account_id=account,
            amount=amount,
            sender="sender",
            sender_kind="known",
            first_seen_at=at(when),
            confirmations=6,
            status=status,
            rate_lock_id=lock,
            usd_amount=usd_amount,
            credit_count=1 if status == "credited" else 0,
            created_at=at(when),
            updated_at=at(when),
        )
    )
    if status == "credited" and usd_amount is not None:
        now = at(when)
        post(
            conn,
            [
                Leg(house.wallet(conn, f"{chain}-deposits", coin, now).id, Money(amount, coin)),
                Leg(house.fx(conn, coin, coin, now).id, Money(-amount, coin)),
                Leg(house.fx(conn, coin, USD, now).id, Money(usd_amount, USD)),
                Leg(history.ledger_ids[who], Money(-usd_amount, USD)),
            ],
            kind=TransactionKind.DEPOSIT,
            now=now,
            request=None,
            memo=f"deposit of {Money(amount, coin)}",
        )
    return deposit_id


def _usage(
    conn: Connection, history: History, who: str, events: int, amount: str, when: str
) -> None:
    now = at(when)
    charged = usd(amount)
    tx = post(
        conn,
        [
            Leg(history.ledger_ids[who], charged),
            Leg(house.revenue(conn, USD, now).id, -charged),
        ],
        kind=TransactionKind.USAGE,
        now=now,
        request=None,
        memo=f"usage: {events} events",
    )
    conn.execute(
        insert(usage_batch).values(
            id=uuid.uuid4(),
            customer_account_id=history.customers[who],
            transaction_id=tx,
            charged_events=events,
            duplicate_events=0,
            charged_amount=charged.amount,
            created_at=now,
        )
    )


def _activation(
    conn: Connection,
    history: History,
    who: str,
    price: str,
    created: str,
    status: str,
    resolved: str,
) -> None:
    start, end = at(created), at(resolved)
    hold = holds.create_hold(
        conn,
        debit_account_id=history.ledger_ids[who],
        credit_account_id=house.revenue(conn, USD, start).id,
        amount=usd(price),
        now=start,
        request=None,
        memo="activation",
    )
    if status == "fulfilled":
        holds.capture_hold(conn, hold.id, now=end, request=None, memo="activation fulfilled")
    else:
        holds.void_hold(conn, hold.id, now=end, request=None)
    conn.execute(
        insert(activation).values(
            id=uuid.uuid4(),
            customer_account_id=history.customers[who],
            hold_id=hold.id,
            price=usd(price).amount,
            window_seconds=1200,
            status=status,
            created_at=start,
            expires_at=start,
            resolved_at=end,
        )
    )


def _decision(flat: str) -> str:
    zero = {"amount": "0.00", "asset": "USD"}
    return json.dumps(
        {
            "breakdown": {
                "flat_fee_usd": {"amount": flat, "asset": "USD"},
                "handling_fee_usd": zero,
                "provider_fee_usd": zero,
            }
        }
    )


@dataclass(frozen=True)
class PayoutSpec:
    kind: str
    who: str
    coin: Asset
    gross: str
    fees: str
    network_fee: str
    net_usd: str
    net_native: int
    created: str
    due: datetime | None
    events: tuple[tuple[str | None, str, str], ...]
    """(from, to, at) moves after the request was made."""
    lock: str
    deposit_id: uuid.UUID | None = None
    execution_lock: str | None = None
    fee_paid: int | None = None
    fee_coin: Asset | None = None


def _payout(conn: Connection, history: History, spec: PayoutSpec) -> None:
    created = at(spec.created)
    hold = holds.create_hold(
        conn,
        debit_account_id=history.ledger_ids[spec.who],
        credit_account_id=house.payout_clearing(conn, created).id,
        amount=usd(spec.gross),
        now=created,
        request=None,
        memo=f"{spec.kind} reserved",
    )
    request_id = uuid.uuid4()
    final = spec.events[-1][1] if spec.events else "pending_review"
    settled = at(spec.events[-1][2]) if final in ("confirmed", "failed") else None
    conn.execute(
        insert(payout_request).values(
            id=request_id,
            kind=spec.kind,
            customer_account_id=history.customers[spec.who],
            deposit_id=spec.deposit_id,
            asset=spec.coin.code.value,
            destination="dest",
            status=final,
            policy="default",
            gross_usd=usd(spec.gross).amount,
            fees_usd=usd(spec.fees).amount,
            network_fee_usd=usd(spec.network_fee).amount,
            net_usd=usd(spec.net_usd).amount,
            net_native=spec.net_native,
            rate_lock_id=history.locks[spec.lock],
            hold_id=hold.id,
            decision=_decision(spec.fees),
            needs_review=True,
            review_due_at=spec.due,
            requested_by="customer",
            actor="test",
            created_at=created,
            updated_at=created,
            execution_rate_lock_id=None
            if spec.execution_lock is None
            else history.locks[spec.execution_lock],
            network_fee_paid_native=spec.fee_paid,
            settled_at=settled,
        )
    )
    moves = ((None, "pending_review", spec.created), *spec.events)
    for from_status, to_status, when in moves:
        conn.execute(
            insert(payout_event).values(
                request_id=request_id,
                from_status=from_status,
                to_status=to_status,
                actor="test",
                at=at(when),
            )
        )
    if final == "cancelled":
        holds.void_hold(conn, hold.id, now=at(spec.events[-1][2]), request=None)
    if final != "confirmed":
        return
    assert settled is not None and spec.fee_paid is not None and spec.fee_coin is not None
    holds.capture_hold(conn, hold.id, now=settled, request=None, memo=f"{spec.kind} paid")
    fee_usd = _fee_usd(conn, history, spec)
    net_usd_ = usd(spec.net_usd)
    chain = {"BTC": "btc", "ETH": "eth", "USDT-ERC20": "eth", "USDT-TRC20": "tron"}[
        spec.coin.code.value
    ]
    fee_coin = spec.fee_coin
    legs: dict[int, Money] = {}

    def leg(account: int, amount: Money) -> None:
        legs[account] = amount if account not in legs else legs[account] + amount

    leg(house.payout_clearing(conn, settled).id, usd(spec.gross))
    leg(house.revenue(conn, USD, settled).id, -usd(spec.fees))
    leg(house.network_fees(conn, USD, settled).id, -usd(spec.network_fee))
    leg(house.fx(conn, spec.coin, USD, settled).id, -net_usd_)
    leg(house.fx(conn, spec.coin, spec.coin, settled).id, Money(spec.net_native, spec.coin))
    leg(house.hot_wallet(conn, chain, spec.coin, settled).id, Money(-spec.net_native, spec.coin))
    leg(house.hot_wallet(conn, chain, fee_coin, settled).id, Money(-spec.fee_paid, fee_coin))
    leg(house.fx(conn, fee_coin, fee_coin, settled).id, Money(spec.fee_paid, fee_coin))
    leg(house.fx(conn, fee_coin, USD, settled).id, -fee_usd)
    leg(house.network_fees(conn, USD, settled).id, fee_usd)
    post(
        conn,
        [Leg(account, amount) for account, amount in legs.items() if not amount.is_zero],
        kind=TransactionKind.PAYOUT,
        now=settled,
        request=None,
        memo=f"{spec.kind} of {Money(spec.net_native, spec.coin).format()} {spec.coin.code.value}",
    )


FEE_USD = {"W1": usd("1.05675"), "R1": usd("1.00")}


def _fee_usd(conn: Connection, history: History, spec: PayoutSpec) -> Money:
    """The fee paid at the payout-time lock, worked out by hand: 1 500 sat × $70 450 / 1e8 =
    $1.05675; 4 TRX × $0.25 = $1.00."""
    return FEE_USD["W1" if spec.coin is BTC else "R1"]


def seed(db: Database) -> History:
    history = History(db)
    with db.transaction() as conn:
        for who in ("c1", "c2"):
            account = customers.create(
                conn, external_id=who, now=at("2026-10-01 08:00"), request=None
            )
            history.customers[who] = account.id
            history.ledger_ids[who] = int(
                conn.execute(customer_account.select().where(customer_account.c.id == account.id))
                .one()
                .ledger_account_id
            )
        s_old = _sample(conn, "BTC", "2026-10-20 09:00", ("50000", "50100"), ("49750", "50350"))
        s1 = _sample(conn, "BTC", "2026-11-02 10:00", ("60000", "60100"), ("59700", "60400"))
        s2 = _sample(conn, "USDT", "2026-11-10 23:30", ("1", "1"), ("1", "1"))
        s3 = _sample(conn, "BTC", "2026-11-20 09:00", ("70000", "70100"), ("69650", "70450"))
        s_trx = _sample(conn, "TRX", "2026-11-25 10:00", ("0.25", "0.25"), ("0.249", "0.25"))
        _sample(conn, "BTC", "2026-11-29 12:00", ("65300", "65400"), ("65000", "65700"))
        _sample(conn, "BTC", "2026-12-03 12:00", ("40000", "40100"), ("39800", "40300"))
        locks = history.locks
        locks["old"] = _lock(conn, "d3", s_old, "BTC", "BTC", "bid", "49750", "2026-10-20 09:00")
        locks["d1"] = _lock(conn, "d1", s1, "BTC", "BTC", "bid", "59700", "2026-11-02 10:00")
        locks["d2"] = _lock(conn, "d2", s2, "USDT-TRC20", "USDT", "bid", "1", "2026-11-10 23:30")
        locks["w1"] = _lock(conn, "w1", s3, "BTC", "BTC", "ask", "70450", "2026-11-20 09:00")
        locks["w1x"] = _lock(conn, "w1x", s3, "BTC", "BTC", "ask", "70450", "2026-11-23 15:30")
        locks["r1"] = _lock(conn, "r1", s2, "USDT-TRC20", "USDT", "ask", "1", "2026-11-25 10:00")
        locks["r1x"] = _lock(conn, "r1x", s_trx, "TRX", "TRX", "ask", "0.25", "2026-12-01 08:30")

        _deposit(
            conn, history, "c1", BTC, "btc", 200_000, 99_500_000, "2026-10-20 09:00", locks["old"]
        )
        _deposit(
            conn, history, "c1", BTC, "btc", 100_000, 59_700_000, "2026-11-02 10:00", locks["d1"]
        )
        d2 = _deposit(
            conn,
            history,
            "c2",
            USDT_TRC20,
            "tron",
            50_000_000,
            50_000_000,
            "2026-11-10 23:30",
            locks["d2"],
        )
        _deposit(
            conn,
            history,
            "c2",
            BTC,
            "btc",
            10_000,
            None,
            "2026-11-03 09:00",
            None,
            status="ignored",
        )

        # 22:30Z on 25 October is 23:30 in Berlin: the clocks went back at 01:00Z that day.
        _usage(conn, history, "c1", 2, "0.10", "2026-10-25 22:30")
        _usage(conn, history, "c1", 3, "0.75", "2026-11-02 12:00")
        _usage(conn, history, "c1", 1, "0.10", "2026-11-30 23:30")  # 1 December in Berlin

        _activation(
            conn, history, "c2", "1.50", "2026-11-12 10:00", "fulfilled", "2026-11-12 10:05"
        )
        _activation(conn, history, "c2", "2.00", "2026-11-12 11:00", "expired", "2026-11-12 11:20")
        _activation(
            conn, history, "c2", "0.50", "2026-11-13 09:00", "cancelled", "2026-11-13 09:01"
        )

        _payout(
            conn,
            history,
            PayoutSpec(
                "withdrawal",
                "c1",
                BTC,
                "100.00",
                "5.00",
                "2.7105",
                "92.2895",
                131_000,
                "2026-11-20 09:00",
                add_business_days(at("2026-11-20 09:00"), 2, HOLIDAYS),
                (
                    ("pending_review", "approved", "2026-11-23 15:00"),
                    ("approved", "signed", "2026-11-23 15:30"),
                    ("signed", "broadcast", "2026-11-23 15:31"),
                    ("broadcast", "confirmed", "2026-11-23 16:00"),
                ),
                "w1",
                execution_lock="w1x",
                fee_paid=1_500,
                fee_coin=BTC,
            ),
        )
        _payout(
            conn,
            history,
            PayoutSpec(
                "refund",
                "c2",
                USDT_TRC20,
                "20.00",
                "0.00",
                "1.30",
                "18.70",
                18_700_000,
                "2026-11-25 10:00",
                add_business_days(at("2026-11-25 10:00"), 2, HOLIDAYS),
                (
                    ("pending_review", "approved", "2026-12-01 08:00"),
                    ("approved", "signed", "2026-12-01 08:30"),
                    ("signed", "broadcast", "2026-12-01 08:31"),
                    ("broadcast", "confirmed", "2026-12-01 09:00"),
                ),
                "r1",
                deposit_id=d2,
                execution_lock="r1x",
                fee_paid=4_000_000,
                fee_coin=TRX,
            ),
        )
        _payout(
            conn,
            history,
            PayoutSpec(
                "withdrawal",
                "c2",
                ETH,
                "25.00",
                "5.00",
                "0.15",
                "19.85",
                7_000_000_000_000_000,
                "2026-11-26 10:00",
                at("2026-11-27 10:00"),
                (("pending_review", "cancelled", "2026-11-26 12:00"),),
                "w1",
            ),
        )
        _payout(
            conn,
            history,
            PayoutSpec(
                "withdrawal",
                "c1",
                USDT_ERC20,
                "25.00",
                "5.00",
                "1.00",
                "19.00",
                19_000_000,
                "2026-11-30 20:00",
                at("2026-12-02 20:00"),
                (),
                "r1",
            ),
        )
    return history


@pytest.fixture
def finance_history(db: Database) -> History:
    """The history above in a fresh database (SQLite, then PostgreSQL)."""
    return seed(db)
