"""``hot_wallet.low`` and ``hot_wallet.recovered``: an operator's warning before payouts wait.

`[payouts] hot_wallet_low` sets, per payout asset, the balance (whole units) below which the hot
wallet counts as low; without an entry an asset is never checked and nothing is read. Once per
payout round the worker asks each rail that can tell (`HotBalances`) for the balance of each
such asset and settles the episode (`kassa.events.operational.settle`): ``hot_wallet.low``
once when it falls below the threshold, ``hot_wallet.recovered`` once when it is back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

from kassa.assets import Chain, chain_of
from kassa.clock import Clock
from kassa.db import Database
from kassa.events import operational
from kassa.money import Asset, Money
from kassa.payouts.rails.base import Rail, RailUnavailable
from kassa.telemetry.metrics import HOT_WALLET_BALANCE, HOT_WALLET_LOW


@runtime_checkable
class HotBalances(Protocol):
    def hot_address(self) -> str: ...

    def hot_balance(self, conn: Connection, coin: Asset) -> Money:
        """What the hot wallet holds of ``coin`` now (raises ``RailUnavailable``)."""
        ...


def note_balance(
    conn: Connection,
    *,
    coin: Asset,
    address: str,
    balance: Money,
    threshold: Money,
    now: datetime,
) -> None:
    """Settle the asset's episode: low below `threshold`, recovered at or above it."""
    operational.settle(
        conn,
        subject_kind="hot_wallet",
        subject_id=coin.code.value,
        trouble="hot_wallet.low" if balance < threshold else None,
        recovered="hot_wallet.recovered",
        data={
            "chain": chain_of(coin).value,
            "asset": coin.code.value,
            "address": address,
            "balance": balance.format(),
            "threshold": threshold.format(),
        },
        at=now,
    )


def export(coin: Asset, balance: Money, threshold: Money) -> None:
    """The balance and its threshold as the worker's metrics, whole units of ``coin``."""
    labels = (chain_of(coin).value, coin.code.value)
    HOT_WALLET_BALANCE.labels(*labels).set(balance.amount / 10**coin.decimals)
    HOT_WALLET_LOW.labels(*labels).set(threshold.amount / 10**coin.decimals)


def check(
    database: Database,
    clock: Clock,
    thresholds: Mapping[Asset, Money],
    rails: Mapping[Chain, Rail] | Mapping[Chain, object],
) -> None:
    """Read each watched asset's balance and settle its episode (one transaction each)."""
    for coin, threshold in thresholds.items():
        rail: object = rails.get(chain_of(coin))
        if not isinstance(rail, HotBalances):
            continue
        with database.transaction() as conn:
            try:
                balance = rail.hot_balance(conn, coin)
            except RailUnavailable:
                continue  # the node is down: the next round asks again
            export(coin, balance, threshold)
            note_balance(
                conn,
                coin=coin,
                address=rail.hot_address(),
                balance=balance,
                threshold=threshold,
                now=clock.now(conn),
            )
