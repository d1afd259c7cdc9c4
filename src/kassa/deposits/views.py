"""A deposit as the API shows it, and the `deposit.*` events.

`deposit_view` is the body of `GET /v1/accounts/{id}/deposits/{deposit_id}` (and one item of the
list); `emit` writes the event of a status change with that view as its ``data``. Every status
a deposit enters is an event type: ``deposit.seen``, ``deposit.confirming``,
``deposit.credited``, ``deposit.reversed`` and ``deposit.ignored`` (the view's
``status_reason`` says why: dust, a fake token contract, a failed transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from kassa.deposits.model import DepositStatus
from kassa.deposits.records import Deposit
from kassa.deposits.tables import deposit_address
from kassa.events import outbox
from kassa.events.views import JsonObject, amount, iso
from kassa.money import USD, Money
from kassa.pricing.locks import RateLock, get_lock
from kassa.pricing.model import price_text


def deposit_view(
    conn: Connection,
    deposit: Deposit,
    *,
    address: str | None = None,
    lock: RateLock | None = None,
) -> JsonObject:
    """The deposit with its address, USD value and the rate lock behind it (`address` and
    `lock`, when the caller already has them, save their lookups)."""
    lock_view = None
    if deposit.rate_lock_id is not None:
        if lock is None or lock.id != deposit.rate_lock_id:
            lock = get_lock(conn, deposit.rate_lock_id)
        lock_view = {
            "id": str(lock.id),
            "rate": price_text(lock.rate),
            "side": lock.side.value,
            "priced_at": iso(lock.priced_at),
            "sources": list(lock.sources),
        }
    if address is None:
        address = conn.execute(
            select(deposit_address.c.address).where(
                deposit_address.c.id == deposit.deposit_address_id
            )
        ).scalar_one_or_none()
    credited = deposit.usd_amount if deposit.status is DepositStatus.CREDITED else None
    return {
        "id": str(deposit.id),
        "chain": deposit.chain.value,
        "asset": deposit.asset,
        "txid": deposit.txid,
        "position": deposit.position,
        "address": address,
        "amount": amount(deposit.money),
        "usd_value": None if credited is None else amount(Money(credited, USD)),
        "status": deposit.status.value,
        "status_reason": deposit.status_reason,
        "confirmations": deposit.confirmations,
        "block_height": deposit.block_height,
        "first_seen_at": iso(deposit.first_seen_at),
        "sender": deposit.sender,
        "sender_kind": deposit.sender_kind.value,
        "rate_lock": lock_view,
    }


def emit(
    conn: Connection,
    deposit: Deposit,
    now: datetime,
    *,
    address: str | None = None,
    lock: RateLock | None = None,
) -> None:
    """The event of the status `deposit` just entered (``deposit.<status>``); `address` and
    `lock` as `deposit_view` takes them."""
    outbox.record_all(conn, [draft(conn, deposit, now, address=address, lock=lock)])


def draft(
    conn: Connection,
    deposit: Deposit,
    now: datetime,
    *,
    address: str | None = None,
    lock: RateLock | None = None,
) -> dict[str, Any]:
    """`emit`'s event, to be written later with others (`kassa.events.outbox.record_all`)."""
    return outbox.draft(
        type=f"deposit.{deposit.status.value}",
        subject_kind="deposit",
        subject_id=deposit.id,
        data=deposit_view(conn, deposit, address=address, lock=lock),
        at=now,
        account_id=deposit.customer_account_id,
    )
