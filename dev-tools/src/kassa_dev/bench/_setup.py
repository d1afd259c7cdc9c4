"""Prepare a bench database: migrate it, open and fund the user accounts, create scratch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from kassa.accounts import service as customer_accounts
from kassa.db import Database
from kassa.ledger import house, transfers
from kassa.money import USD, Money
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._workers import SCRATCH_METADATA

FUNDING = Money(1_000_000 * 10**USD.decimals, USD)
"""Each user account starts with a million dollars (an operator credit)."""
ACCOUNTS_PER_TRANSACTION = 100


@dataclass(frozen=True, slots=True)
class Fixture:
    account_ids: tuple[int, ...]
    """Ledger account ids of the funded user accounts."""
    revenue_id: int
    """The house revenue account (USD) that usage batches credit."""


def prepare(db: Database, accounts: int, progress: Progress) -> Fixture:
    # Imported here: spawned writers re-import the main module, and Alembic costs each of them
    # ~0.4 s of CPU at start-up that they do not need.
    from kassa.db.migrate import upgrade

    upgrade(db.engine)
    SCRATCH_METADATA.create_all(db.engine)
    account_ids: list[int] = []
    heartbeat = Heartbeat()
    while len(account_ids) < accounts:
        chunk = min(ACCOUNTS_PER_TRANSACTION, accounts - len(account_ids))
        with db.transaction() as conn:
            account_ids += [_funded_account(conn, len(account_ids) + n) for n in range(chunk)]
        if heartbeat.due():
            progress.heartbeat(f"accounts opened and funded: {len(account_ids):,}/{accounts:,}")
    with db.transaction() as conn:
        revenue = house.revenue(conn, USD, datetime.now(UTC))
    return Fixture(tuple(account_ids), revenue.id)


def _funded_account(conn: Connection, number: int) -> int:
    now = datetime.now(UTC)
    customer = customer_accounts.create(
        conn, external_id=f"bench-user-{number}", now=now, request=None
    )
    transfers.adjust(
        conn,
        account_id=customer.ledger_account_id,
        amount=FUNDING,
        direction="credit",
        reason="benchmark funding",
        actor="kassa-bench",
        now=now,
        request=None,
    )
    return customer.ledger_account_id
