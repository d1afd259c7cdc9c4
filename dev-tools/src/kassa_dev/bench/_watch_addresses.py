"""The watched addresses: derived once per chain (measured), then loaded into each database.

* Derivation is measured through the real `HdDeriver` of the devnet account key, one address
  at a time as the API derives them: ``addresses derived/s``.
* Loading is setup, not measured: once per database, one customer account per address index
  (with its USD ledger account: the rows `accounts.service.create` writes); per chain, the
  deposit address rows as `addresses.get_or_create` writes them (customer i gets address i of
  every chain), inserted in bulk, with the address counter set after them.
* The last `allocate` addresses then go through `addresses.get_or_create` itself, one unit of
  work each (counter bump, derivation, insert, commit): ``addresses allocated/s``. Each one
  must come out equal to the address derived for its index, which checks the bulk rows too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from kassa.accounts.tables import customer_account
from kassa.chains.network import Chain
from kassa.db import Database
from kassa.deposits import addresses
from kassa.deposits.derive import HdDeriver
from kassa.deposits.tables import address_counter, deposit_address
from kassa.ledger.model import AccountKind, NormalSide
from kassa.ledger.tables import ledger_account
from kassa.money import USD
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._watch_model import WatchBenchError

ROWS_PER_TRANSACTION = 5_000


@dataclass(frozen=True, slots=True)
class Derived:
    chain: Chain
    key_id: str
    addresses: tuple[str, ...]
    """Address i is derivation index i."""
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.addresses) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Customers:
    ids: tuple[uuid.UUID, ...]
    """Customer account i owns address i of every chain."""
    ledger_ids: tuple[int, ...]
    """The USD ledger account of customer i."""
    seconds: float


@dataclass(frozen=True, slots=True)
class Population:
    bulk_seconds: float
    allocated: int
    allocate_seconds: float

    @property
    def allocated_per_second(self) -> float:
        return self.allocated / self.allocate_seconds if self.allocate_seconds > 0 else 0.0


def derive(deriver: HdDeriver, count: int, progress: Progress) -> Derived:
    heartbeat = Heartbeat()
    derived: list[str] = []
    started = time.perf_counter()
    for index in range(count):
        derived.append(deriver.address_at(index))
        if heartbeat.due():
            rate = len(derived) / (time.perf_counter() - started)
            progress.heartbeat(
                f"{deriver.chain}: derived {len(derived):,}/{count:,} ({rate:,.0f}/s)"
            )
    seconds = time.perf_counter() - started
    return Derived(deriver.chain, deriver.key_id, tuple(derived), seconds)


def load_customers(db: Database, count: int, now: datetime, progress: Progress) -> Customers:
    """Customer accounts with their USD ledger accounts, as `accounts.service.create` makes them."""
    started = time.perf_counter()
    ids = tuple(uuid.uuid4() for _ in range(count))
    heartbeat = Heartbeat()
    for rows in _chunks(range(count)):
        with db.transaction() as conn:
            conn.execute(insert(ledger_account), [_ledger_row(ids[index], now) for index in rows])
        if heartbeat.due():
            progress.heartbeat(f"ledger accounts inserted: {rows[-1] + 1:,}/{count:,}")
    with db.transaction() as conn:
        owned = {
            str(owner): int(account_id)
            for owner, account_id in conn.execute(
                select(ledger_account.c.owner, ledger_account.c.id).where(
                    ledger_account.c.kind == str(AccountKind.USER)
                )
            )
        }
    ledger_ids = tuple(owned[str(customer_id)] for customer_id in ids)
    for rows in _chunks(range(count)):
        with db.transaction() as conn:
            conn.execute(
                insert(customer_account),
                [_customer_row(ids[index], index, ledger_ids[index], now) for index in rows],
            )
        if heartbeat.due():
            progress.heartbeat(f"customer accounts inserted: {rows[-1] + 1:,}/{count:,}")
    return Customers(ids, ledger_ids, time.perf_counter() - started)


def load_addresses(
    db: Database,
    deriver: HdDeriver,
    derived: Derived,
    customers: Customers,
    allocate: int,
    now: datetime,
    progress: Progress,
) -> Population:
    """Address i for customer i: in bulk, then the last `allocate` through `get_or_create`."""
    count = len(derived.addresses)
    if count > len(customers.ids):
        raise WatchBenchError(f"{count:,} addresses but only {len(customers.ids):,} customers")
    bulk = count - allocate
    started = time.perf_counter()
    heartbeat = Heartbeat()
    for rows in _chunks(range(bulk)):
        with db.transaction() as conn:
            conn.execute(
                insert(deposit_address),
                [_address_row(derived, customers.ids[index], index, now) for index in rows],
            )
        if heartbeat.due():
            progress.heartbeat(f"deposit addresses inserted: {rows[-1] + 1:,}/{bulk:,}")
    if bulk:
        with db.transaction() as conn:
            conn.execute(
                insert(address_counter).values(
                    chain=derived.chain.value, key_id=derived.key_id, next_index=bulk
                )
            )
    bulk_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for index in range(bulk, count):
        with db.transaction() as conn:
            address, created = addresses.get_or_create(conn, customers.ids[index], deriver, now)
        if not created or (address.derivation_index, address.address) != (
            index,
            derived.addresses[index],
        ):
            raise WatchBenchError(
                f"get_or_create gave index {address.derivation_index} ({address.address}) for "
                f"customer {index}; expected {index} ({derived.addresses[index]})"
            )
    return Population(bulk_seconds, allocate, time.perf_counter() - started)


def _customer_row(
    customer_id: uuid.UUID, index: int, ledger_id: int, now: datetime
) -> dict[str, object]:
    return {
        "id": customer_id,
        "external_id": f"bench-watch-{index}",
        "ledger_account_id": ledger_id,
        "status": "active",
        "metadata_json": None,
        "created_at": now,
    }


def _ledger_row(customer_id: uuid.UUID, now: datetime) -> dict[str, object]:
    return {
        "code": f"user:{customer_id}:USD",
        "asset": str(USD.code),
        "normal_side": str(NormalSide.CREDIT),
        "kind": str(AccountKind.USER),
        "owner": str(customer_id),
        "allow_negative": False,
        "debits_posted": 0,
        "credits_posted": 0,
        "debits_pending": 0,
        "credits_pending": 0,
        "created_at": now,
    }


def _address_row(
    derived: Derived, customer_id: uuid.UUID, index: int, now: datetime
) -> dict[str, object]:
    address = derived.addresses[index]
    return {
        "customer_account_id": customer_id,
        "chain": derived.chain.value,
        "address": address,
        "match_key": addresses.match_key(derived.chain, address),
        "key_id": derived.key_id,
        "derivation_index": index,
        "created_at": now,
    }


def _chunks(indexes: range) -> Iterator[range]:
    for first in range(indexes.start, indexes.stop, ROWS_PER_TRANSACTION):
        yield range(first, min(first + ROWS_PER_TRANSACTION, indexes.stop))
