"""Deposit addresses: one per customer account and chain, derived watch-only from an xpub.

The API and the watcher only ever hold account-level extended *public* keys; no private key
lives here. Derivation indexes come from a counter row (`address_counter`) incremented in the
same savepoint as the address insert, so a failed or losing insert gives its index back: the
indexes in use are 0, 1, 2, … without gaps or duplicates, however many requests race (on
PostgreSQL the counter row lock serialises them; SQLite has one writer anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from kassa.chains.network import Chain
from kassa.deposits.tables import address_counter, deposit_address


class AddressDeriver(Protocol):
    """Derives a chain's deposit addresses from one account-level public key."""

    @property
    def chain(self) -> Chain: ...

    @property
    def key_id(self) -> str:
        """A short stable fingerprint of the public key (addresses remember which key)."""
        ...

    def address_at(self, index: int) -> str: ...


@dataclass(frozen=True, slots=True)
class DepositAddress:
    id: int
    customer_account_id: uuid.UUID
    chain: Chain
    address: str
    match_key: str
    key_id: str
    derivation_index: int
    created_at: datetime


def match_key(chain: Chain, address: str) -> str:
    """The form of an address used to match chain transfers against watched addresses.

    ETH addresses compare case-insensitively (EIP-55 case is only a checksum). Native segwit
    addresses are case-insensitive too; base58 (BTC legacy, TRON) is case-sensitive.
    """
    if chain is Chain.ETH:
        return address.lower()
    if chain is Chain.BTC and address.lower().startswith(("bc1", "tb1", "bcrt1")):
        return address.lower()
    return address


def _address(row: Row[Any]) -> DepositAddress:
    return DepositAddress(
        id=row.id,
        customer_account_id=row.customer_account_id,
        chain=Chain(row.chain),
        address=row.address,
        match_key=row.match_key,
        key_id=row.key_id,
        derivation_index=row.derivation_index,
        created_at=row.created_at,
    )


def find(conn: Connection, customer_account_id: uuid.UUID, chain: Chain) -> DepositAddress | None:
    row = conn.execute(
        select(deposit_address).where(
            deposit_address.c.customer_account_id == customer_account_id,
            deposit_address.c.chain == chain.value,
        )
    ).first()
    return None if row is None else _address(row)


def for_account(conn: Connection, customer_account_id: uuid.UUID) -> list[DepositAddress]:
    rows = conn.execute(
        select(deposit_address)
        .where(deposit_address.c.customer_account_id == customer_account_id)
        .order_by(deposit_address.c.chain)
    ).all()
    return [_address(row) for row in rows]


def _next_index(conn: Connection, chain: Chain, key_id: str) -> int:
    where = (address_counter.c.chain == chain.value) & (address_counter.c.key_id == key_id)
    bumped = conn.execute(
        update(address_counter)
        .where(where)
        .values(next_index=address_counter.c.next_index + 1)
        .returning(address_counter.c.next_index)
    ).scalar_one_or_none()
    if bumped is not None:
        return int(bumped) - 1
    # First address for this key. A racing first insert fails on the primary key; the caller's
    # savepoint retry then finds the row.
    conn.execute(insert(address_counter).values(chain=chain.value, key_id=key_id, next_index=1))
    return 0


def get_or_create(
    conn: Connection,
    customer_account_id: uuid.UUID,
    deriver: AddressDeriver,
    now: datetime,
) -> tuple[DepositAddress, bool]:
    """The account's address on the deriver's chain, derived now if it has none.

    Returns (address, created). Idempotent per (account, chain) under any concurrency.
    """
    for _attempt in range(5):
        existing = find(conn, customer_account_id, deriver.chain)
        if existing is not None:
            return existing, False
        try:
            with conn.begin_nested():
                index = _next_index(conn, deriver.chain, deriver.key_id)
                address = deriver.address_at(index)
                row = conn.execute(
                    insert(deposit_address)
                    .values(
                        customer_account_id=customer_account_id,
                        chain=deriver.chain.value,
                        address=address,
                        match_key=match_key(deriver.chain, address),
                        key_id=deriver.key_id,
                        derivation_index=index,
                        created_at=now,
                    )
                    .returning(*deposit_address.c)
                ).one()
            return _address(row), True
        except IntegrityError:
            continue  # lost a race: the savepoint gave the index back; look again
    raise RuntimeError(f"could not allocate a {deriver.chain} deposit address after 5 attempts")


def watched(conn: Connection, chain: Chain, after_id: int = 0) -> dict[str, int]:
    """Match key → deposit address id, for addresses with id > after_id.

    The watcher loads everything once, then only what was added since, so 100 000 addresses
    cost one query at start and one set lookup per transfer afterwards. The customer behind an
    address is read only once the address is paid (`owners`): turning 100 000 customer ids
    into UUIDs was half the cost of the start-up load.
    """
    # On the driver's cursor of this transaction's connection, not through SQLAlchemy's
    # result rows: at 100 000 rows, making a Row per address was most of the load's CPU.
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"SELECT match_key, id FROM {deposit_address.name} "  # noqa: S608 (no user input)
            f"WHERE chain = {mark} AND id > {mark} ORDER BY id",
            (chain.value, after_id),
        )
        found: dict[str, int] = dict(cursor.fetchall())  # (text, bigint) on both drivers
        return found
    finally:
        cursor.close()


class Owned(NamedTuple):
    """A deposit address as a payment to it is recorded: whose it is, and its text."""

    customer_account_id: uuid.UUID
    address: str


def owners(conn: Connection, address_ids: Collection[int]) -> dict[int, Owned]:
    """Deposit address id → the customer account it belongs to and the address (one query)."""
    rows = conn.execute(
        select(
            deposit_address.c.id, deposit_address.c.customer_account_id, deposit_address.c.address
        ).where(deposit_address.c.id.in_(sorted(set(address_ids))))
    ).all()
    return {row.id: Owned(row.customer_account_id, row.address) for row in rows}


def gap(conn: Connection, chain: Chain, key_id: str) -> tuple[int, int]:
    """(addresses issued, next index) for a key: equal when there is no gap."""
    issued = len(
        conn.execute(
            select(deposit_address.c.id).where(
                deposit_address.c.chain == chain.value, deposit_address.c.key_id == key_id
            )
        ).all()
    )
    next_index = conn.execute(
        select(address_counter.c.next_index).where(
            address_counter.c.chain == chain.value, address_counter.c.key_id == key_id
        )
    ).scalar_one_or_none()
    return issued, int(next_index or 0)
