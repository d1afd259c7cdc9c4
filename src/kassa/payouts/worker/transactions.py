"""The stored payout transactions (``payout_tx`` and its lines): written once signed, read back
to broadcast and follow them, and grouped by the spend they use.

A *spend* is what makes two transactions mutually exclusive on chain (an ETH nonce, a set of BTC
inputs): a fee bump is a new version of the same spend (``spend_key``), so at most one version is
ever mined. Settling locks every version of the spend first (`lock_in_flight`), so two workers
settling two versions at once take turns and each sees what the other decided.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from kassa.assets import Chain
from kassa.money import Asset, Money, asset
from kassa.payouts.rails.base import (
    IN_FLIGHT,
    FeeEstimate,
    PayoutLine,
    Rail,
    SignedTx,
    StoredTx,
)
from kassa.payouts.tables import payout_tx, payout_tx_line


def insert_tx(
    conn: Connection,
    rail: Rail,
    coin: Asset,
    signed: SignedTx,
    lines: Sequence[PayoutLine],
    shares: Mapping[uuid.UUID, int],
    estimate: FeeEstimate | None,
    replaces: StoredTx | None,
    now: datetime,
) -> uuid.UUID:
    """Store a signed transaction (``signed``, not yet broadcast) paying ``lines``, each line
    with its share of the fee; a replacement names the version it ``replaces``."""
    tx_id = uuid.uuid4()
    conn.execute(
        insert(payout_tx).values(
            id=tx_id,
            chain=rail.chain.value,
            asset=coin.code.value,
            txid=signed.txid,
            spend_key=signed.spend_key,
            replaces_id=None if replaces is None else replaces.id,
            raw=signed.raw,
            spend=signed.spend_json(),
            fee_native=signed.fee.amount,
            fee_asset=signed.fee.asset.code.value,
            fee_estimate=json.dumps(
                {}
                if estimate is None
                else {
                    "total": estimate.total.amount,
                    "params": dict(estimate.params),
                    "source": estimate.source,
                }
            ),
            status="signed",
            expires_at=signed.expires_at,
            created_at=now,
            updated_at=now,
        )
    )
    for line in lines:
        conn.execute(
            insert(payout_tx_line).values(
                tx_id=tx_id,
                request_id=line.request_id,
                destination=line.destination,
                amount_native=line.amount.amount,
                fee_share_native=shares.get(line.request_id, 0),
                output_index=signed.outputs.get(line.request_id),
            )
        )
    return tx_id


def load_tx(conn: Connection, tx_id: uuid.UUID) -> StoredTx:
    row = conn.execute(select(payout_tx).where(payout_tx.c.id == tx_id)).one()
    return _stored(row, _lines(conn, tx_id))


def in_flight(conn: Connection) -> list[tuple[StoredTx, str]]:
    """Every signed or broadcast transaction, oldest first, with its stored status."""
    rows = conn.execute(
        select(payout_tx).where(payout_tx.c.status.in_(IN_FLIGHT)).order_by(payout_tx.c.created_at)
    ).all()
    return [(_stored(row, _lines(conn, row.id)), row.status) for row in rows]


def lock_tx(conn: Connection, tx_id: uuid.UUID) -> tuple[str, int]:
    """Lock the stored transaction's row; its status and how often it was broadcast."""
    row = conn.execute(
        select(payout_tx.c.status, payout_tx.c.broadcast_count)
        .where(payout_tx.c.id == tx_id)
        .with_for_update()
    ).one()
    return row.status, int(row.broadcast_count)


def fee_shares(conn: Connection, tx_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Each request's share of the transaction's fee (native minor units)."""
    return {
        row.request_id: int(row.fee_share_native)
        for row in conn.execute(
            select(payout_tx_line.c.request_id, payout_tx_line.c.fee_share_native).where(
                payout_tx_line.c.tx_id == tx_id
            )
        )
    }


def has_replacement(conn: Connection, tx: StoredTx) -> bool:
    return (
        conn.execute(select(payout_tx.c.id).where(payout_tx.c.replaces_id == tx.id)).first()
        is not None
    )


def lock_in_flight(conn: Connection, tx: StoredTx) -> bool:
    """Lock every version (fee bumps) of ``tx``'s spend, in one order, and say whether
    ``tx`` is still in flight. Locking all of them makes two workers settling two
    versions at once take turns: each then sees what the other decided."""
    rows = conn.execute(
        select(payout_tx.c.id, payout_tx.c.status)
        .where(payout_tx.c.chain == tx.chain.value, payout_tx.c.spend_key == tx.spend_key)
        .order_by(payout_tx.c.id)
        .with_for_update()
    ).all()
    return any(row.id == tx.id and row.status in IN_FLIGHT for row in rows)


def siblings(conn: Connection, tx: StoredTx) -> Sequence[Any]:
    """Other versions (fee bumps) of ``tx``'s spend."""
    return conn.execute(
        select(payout_tx.c.id, payout_tx.c.status, payout_tx.c.txid).where(
            payout_tx.c.chain == tx.chain.value,
            payout_tx.c.spend_key == tx.spend_key,
            payout_tx.c.id != tx.id,
        )
    ).all()


def retire_siblings(conn: Connection, tx: StoredTx, now: datetime) -> None:
    """``tx`` was mined (paid or reverted): every other version of its spend is dead."""
    for sibling in siblings(conn, tx):
        if sibling.status in IN_FLIGHT:
            update_tx(
                conn,
                sibling.id,
                now,
                status="dead",
                last_error=f"replaced: {tx.txid} spent the same identity",
                settled_at=now,
            )


def update_tx(conn: Connection, tx_id: uuid.UUID, now: datetime, **values: Any) -> None:
    """Set columns of a stored transaction (its status, last error, block, fee paid)."""
    conn.execute(update(payout_tx).where(payout_tx.c.id == tx_id).values(updated_at=now, **values))


def _lines(conn: Connection, tx_id: uuid.UUID) -> Sequence[Row[Any]]:
    return conn.execute(
        select(payout_tx_line)
        .where(payout_tx_line.c.tx_id == tx_id)
        .order_by(payout_tx_line.c.output_index, payout_tx_line.c.request_id)
    ).all()


def _stored(row: Row[Any], lines: Sequence[Row[Any]]) -> StoredTx:
    coin = asset(row.asset)
    return StoredTx(
        id=row.id,
        chain=Chain(row.chain),
        txid=row.txid,
        raw=row.raw,
        spend_key=row.spend_key,
        spend=json.loads(row.spend),
        fee=Money(row.fee_native, asset(row.fee_asset)),
        lines=tuple(
            PayoutLine(
                request_id=line.request_id,
                destination=line.destination,
                amount=Money(line.amount_native, coin),
            )
            for line in lines
        ),
        created_at=row.created_at,
        broadcast_at=row.broadcast_at,
        expires_at=row.expires_at,
    )
