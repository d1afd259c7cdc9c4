"""The operator's events fire on transitions only: once when the trouble starts, once when it
ends, nothing on the rounds between (issue 15). The episode is read from the subject's last
event, which does not depend on the dialect: SQLite only."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from kassa.chains.network import Chain
from kassa.clock import ManualClock
from kassa.db import Database, make_engine
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events.tables import event
from kassa.money import BTC, ETH, Asset, Money
from kassa.payouts import hot_balances
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_db(sqlite_template: str, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "kassa.sqlite3"
    shutil.copyfile(sqlite_template, path)
    database = Database(make_engine(f"sqlite:///{path}"))
    yield database
    database.dispose()


def fired(database: Database, kind: str, subject: str) -> list[tuple[str, dict[str, object]]]:
    with database.transaction() as conn:
        rows = conn.execute(
            select(event.c.type, event.c.data)
            .where(event.c.subject_kind == kind, event.c.subject_id == subject)
            .order_by(event.c.seq)
        ).all()
    return [(row.type, json.loads(row.data)) for row in rows]


def test_a_lagging_watcher_fires_once_and_recovers_once(sqlite_db: Database) -> None:
    clock = ManualClock(NOW)
    chain = FakeChain(Chain.BTC, NOW - timedelta(hours=1))
    chain.mine_empty(12)
    pricing = PricingService(sqlite_db, clock, PricingSettings())
    config = WatcherConfig(Chain.BTC, max_blocks_per_tick=4, lag_alert_blocks=2)
    watcher = Watcher(sqlite_db, clock, chain, pricing, config)
    watcher.tick()  # 0…3 of 0…12: 9 behind
    watcher.tick()  # 5 behind: still the same episode
    assert [t for t, _ in fired(sqlite_db, "watcher", "btc")] == ["watcher.lagging"]
    watcher.tick()  # 1 behind: recovered
    watcher.tick()  # caught up: nothing new
    events = fired(sqlite_db, "watcher", "btc")
    assert events == [
        (
            "watcher.lagging",
            {"chain": "btc", "scanned_height": 3, "head_height": 12, "lag": 9, "threshold": 2},
        ),
        (
            "watcher.recovered",
            {"chain": "btc", "scanned_height": 11, "head_height": 12, "lag": 1, "threshold": 2},
        ),
    ]


def test_a_missing_or_depegged_rate_fires_once_per_episode(sqlite_db: Database) -> None:
    clock = ManualClock(NOW)

    def refresh(rates: dict[Symbol, Decimal]) -> None:
        settings = PricingSettings(static_rates=rates)
        PricingService(sqlite_db, clock, settings).refresh([Symbol.USDT])

    refresh({Symbol.USDT: Decimal(1)})  # never in trouble: nothing to say
    assert fired(sqlite_db, "rate", "USDT") == []
    refresh({Symbol.USDT: Decimal("0.95")})
    refresh({Symbol.USDT: Decimal("0.94")})
    refresh({Symbol.BTC: Decimal(60000)})  # no USDT rate at all
    refresh({Symbol.BTC: Decimal(60000)})
    refresh({Symbol.USDT: Decimal(1)})
    refresh({Symbol.USDT: Decimal(1)})
    events = fired(sqlite_db, "rate", "USDT")
    assert [t for t, _ in events] == ["rate.depegged", "rate.unavailable", "rate.recovered"]
    depegged, unavailable, recovered = (data for _, data in events)
    assert (depegged["bid"], depegged["sources"]) == ("0.95", ["static"])
    assert (unavailable["bid"], unavailable["sources"]) == (None, [])
    assert recovered["bid"] == "1"


class HotWallet:
    """A rail's hot-wallet side (`hot_balances.HotBalances`) holding what the test says."""

    def __init__(self, held: Money) -> None:
        self.held = held

    def hot_address(self) -> str:
        return "0x" + "ab" * 20

    def hot_balance(self, conn: Connection, coin: Asset) -> Money:
        return self.held


def test_a_low_hot_wallet_fires_once_until_it_recovers(sqlite_db: Database) -> None:
    clock = ManualClock(NOW)
    wallet = HotWallet(Money.parse("0.5", ETH))
    thresholds = {ETH: Money.parse("1", ETH), BTC: Money.parse("1", BTC)}  # no BTC rail here
    rails = {Chain.ETH: wallet}
    for held in ["0.5", "0.4", "1", "2", "0.9"]:
        wallet.held = Money.parse(held, ETH)
        hot_balances.check(sqlite_db, clock, thresholds, rails)
    events = fired(sqlite_db, "hot_wallet", "ETH")
    assert [(t, d["balance"]) for t, d in events] == [
        ("hot_wallet.low", "0.50"),
        ("hot_wallet.recovered", "1.00"),
        ("hot_wallet.low", "0.90"),
    ]
    assert events[0][1] == {
        "chain": "eth",
        "asset": "ETH",
        "address": wallet.hot_address(),
        "balance": "0.50",
        "threshold": "1.00",
    }
    assert fired(sqlite_db, "hot_wallet", "BTC") == []
