"""Metered usage: batches of priced events charged to a customer's USD balance.

Design
------
* A batch is all or nothing, and everything is validated before anything is written: 1 to
  `MAX_BATCH_EVENTS` events with distinct event ids, each a positive USD amount of at most
  `MAX_EVENT_AMOUNT` with a description.
* Idempotent per event id, in the schema: `usage_event`'s primary key is (account, event id).
  Events are inserted with ON CONFLICT DO NOTHING. An event already recorded with the same amount
  and description is a *duplicate*: skipped, reported as such, never charged again. With a
  different amount or description the whole batch is refused (`usage_event_conflict`). When two
  racing batches carry one event id, the second waits on the first's uncommitted index entry and
  then finds it, so the event is charged once. Events go in in event-id order, so two batches
  sharing several ids take those index locks in the same order and cannot deadlock.
* The new events of a batch are charged in ONE journal transaction (Dr the customer, Cr house
  revenue, for their sum): a batch of 1 000 is one entry, not 1 000. Each event row names its
  batch; the batch row names the transaction.
* Refused as a whole when the available balance cannot cover the new events: the ledger's
  `insufficient_funds` (or `account_frozen`). Everything the batch wrote is rolled back to a
  savepoint first, so only the refusal stored under the caller's key remains. Suspended,
  terminated and frozen accounts are refused before anything is written (`spending.guard`).
* The request's Idempotency-Key is claimed as well: the same key and batch gets the stored batch
  back (its events reported as they were then), the same key with another batch is refused.
* `account_usage.last_usage_at` is when usage was last charged; refund policies read it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Connection, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.accounts.service import CustomerAccount
from kassa.ledger import house, idempotency
from kassa.ledger.errors import AccountFrozen, InsufficientFunds
from kassa.ledger.idempotency import OK, Request, StoredOutcome
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, post
from kassa.money import USD, Money
from kassa.spending.errors import InvalidUsageBatch, InvalidUsageEvent, UsageEventConflict
from kassa.spending.guard import ensure_may_spend
from kassa.spending.tables import account_usage, usage_batch, usage_event

MAX_BATCH_EVENTS = 1_000
MAX_EVENT_AMOUNT = Money(1_000_000 * 10**USD.decimals, USD)
"""$1 000 000: far above any metered event, low enough that a batch's sum stays small."""
MAX_DESCRIPTION_LENGTH = 500
EVENT_ID = re.compile(r"[!-~]{1,128}")
"""Printable ASCII without spaces, 1 to 128 characters (a UUID, `req-123`, `2026-11-20/7`)."""


class EventStatus(StrEnum):
    CHARGED = "charged"
    """Recorded and charged by this batch."""
    DUPLICATE = "duplicate"
    """Already charged by an earlier batch with the same amount and description; skipped."""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    event_id: str
    amount: Money
    """Micro-USD."""
    description: str


@dataclass(frozen=True, slots=True)
class UsageBatch:
    id: uuid.UUID
    customer_account_id: uuid.UUID
    transaction_id: uuid.UUID | None
    """The journal entry charging the new events; None when there were none."""
    charged: Money
    """Sum of the events this batch charged (micro-USD)."""
    events: tuple[tuple[str, EventStatus], ...]
    """Each event id of the request, in request order, with what happened to it."""
    created_at: datetime
    last_usage_at: datetime | None = None
    """The account's last usage time as this batch set it; None when it did not set it (nothing
    charged, a replay, or a later time already stored): read it with `last_usage_at`."""

    @property
    def charged_events(self) -> int:
        return sum(1 for _id, status in self.events if status is EventStatus.CHARGED)

    @property
    def duplicate_events(self) -> int:
        return len(self.events) - self.charged_events


def validate(events: Sequence[UsageEvent]) -> None:
    """Refuse the batch unless every event is usable (before anything is written)."""
    if not events:
        raise InvalidUsageBatch("a usage batch has at least one event")
    if len(events) > MAX_BATCH_EVENTS:
        raise InvalidUsageBatch(
            f"a usage batch has at most {MAX_BATCH_EVENTS} events, got {len(events)}; "
            "split it into several requests"
        )
    seen: set[str] = set()
    repeated: list[str] = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not EVENT_ID.fullmatch(event.event_id):
            raise InvalidUsageEvent(
                f"{where}: an event id has 1 to 128 printable ASCII characters without spaces"
            )
        if event.amount.asset != USD:
            raise InvalidUsageEvent(f"{where}: usage is charged in USD, not {event.amount.asset}")
        if not event.amount.is_positive:
            raise InvalidUsageEvent(f"{where}: the amount must be greater than zero")
        if event.amount > MAX_EVENT_AMOUNT:
            raise InvalidUsageEvent(
                f"{where}: {event.amount.format()} USD exceeds the limit of "
                f"{MAX_EVENT_AMOUNT.format()} USD per event"
            )
        if not event.description.strip() or len(event.description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidUsageEvent(
                f"{where}: a description has 1 to {MAX_DESCRIPTION_LENGTH} characters"
            )
        if event.event_id in seen:
            repeated.append(event.event_id)
        seen.add(event.event_id)
    if repeated:
        raise InvalidUsageBatch(f"a batch names each event once; repeated: {_some(repeated)}")


def _some(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


# Built once: the hot path of every batch. SQLite takes the rows as an executemany (SQLAlchemy
# folds it into multi-row INSERTs). PostgreSQL takes three arrays: a 1 000-row VALUES list has
# 6 000 placeholders, and psycopg re-parses a statement that long on every call (~100 ms).
_INSERT_EVENTS_SQLITE = (
    sqlite_insert(usage_event)
    .values(
        customer_account_id=bindparam("account_id"),
        event_id=bindparam("event_id"),
        batch_id=bindparam("batch_id"),
        amount=bindparam("amount"),
        description=bindparam("description"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=["customer_account_id", "event_id"])
    .returning(usage_event.c.event_id)
)
_INSERT_EVENTS_POSTGRES = text(
    """
    INSERT INTO usage_event
        (customer_account_id, event_id, batch_id, amount, description, created_at)
    SELECT :account_id, e.event_id, :batch_id, e.amount, e.description, :created_at
    FROM unnest(
        CAST(:event_ids AS varchar[]), CAST(:amounts AS numeric[]), CAST(:descriptions AS text[])
    ) WITH ORDINALITY AS e(event_id, amount, description, n)
    ORDER BY e.n
    ON CONFLICT (customer_account_id, event_id) DO NOTHING
    RETURNING event_id
    """
)
_RECORDED = select(
    usage_event.c.event_id,
    usage_event.c.batch_id,
    usage_event.c.amount,
    usage_event.c.description,
).where(
    usage_event.c.customer_account_id == bindparam("account_id"),
    usage_event.c.event_id.in_(bindparam("event_ids", expanding=True)),
)


def record_usage(
    conn: Connection,
    account: CustomerAccount,
    events: Sequence[UsageEvent],
    *,
    now: datetime,
    request: Request | None,
    actor: str | None = None,
) -> UsageBatch:
    """Charge the batch's new events to `account` in one journal transaction (see the module
    docstring). Raises InsufficientFunds / AccountFrozen after storing the refusal under
    `request`'s key; UsageEventConflict and the validation errors change nothing."""
    validate(events)
    claimed = None if request is None else idempotency.claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replayed(conn, account, events, claimed)
    ensure_may_spend(conn, account, claimed)
    batch_id = uuid.uuid4()
    try:
        # A savepoint, because a refused batch must leave nothing but the stored refusal, and
        # its refusals are "recorded" errors: the unit of work commits them.
        with conn.begin_nested():
            batch = _charge(conn, account, events, batch_id, now, actor)
    except (InsufficientFunds, AccountFrozen) as refused:
        if claimed is not None:
            idempotency.complete_refused(conn, claimed, refused)
        raise
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(batch_id), None)
    return batch


def _charge(
    conn: Connection,
    account: CustomerAccount,
    events: Sequence[UsageEvent],
    batch_id: uuid.UUID,
    now: datetime,
    actor: str | None,
) -> UsageBatch:
    conn.execute(
        insert(usage_batch).values(
            id=batch_id,
            customer_account_id=account.id,
            charged_events=0,
            duplicate_events=0,
            charged_amount=0,
            actor=actor,
            created_at=now,
        )
    )
    # In event-id order: batches sharing ids take their index locks in the same order.
    ordered = sorted(events, key=lambda e: e.event_id)
    if conn.dialect.name == "postgresql":
        result = conn.execute(
            _INSERT_EVENTS_POSTGRES,
            {
                "account_id": account.id,
                "batch_id": batch_id,
                "created_at": now,
                "event_ids": [e.event_id for e in ordered],
                "amounts": [Decimal(e.amount.amount) for e in ordered],
                "descriptions": [e.description for e in ordered],
            },
        )
    else:
        result = conn.execute(
            _INSERT_EVENTS_SQLITE,
            [
                {
                    "account_id": account.id,
                    "event_id": e.event_id,
                    "batch_id": batch_id,
                    "amount": e.amount.amount,
                    "description": e.description,
                    "created_at": now,
                }
                for e in ordered
            ],
        )
    inserted = set(result.scalars())
    _refuse_conflicting_replays(conn, account, [e for e in events if e.event_id not in inserted])

    charged = Money(sum(e.amount.amount for e in events if e.event_id in inserted), USD)
    transaction_id = None
    last_usage = None
    if charged.is_positive:
        revenue = house.revenue(conn, USD, now)
        transaction_id = post(
            conn,
            [Leg(account.ledger_account_id, charged), Leg(revenue.id, -charged)],
            kind=TransactionKind.USAGE,
            now=now,
            request=None,
            memo=f"usage: {len(inserted)} event(s)",
            actor=actor,
            metadata={"usage_batch": str(batch_id), "events": len(inserted)},
        )
        last_usage = _touch_last_usage(conn, account.id, now)
    conn.execute(
        update(usage_batch)
        .where(usage_batch.c.id == batch_id)
        .values(
            transaction_id=transaction_id,
            charged_events=len(inserted),
            duplicate_events=len(events) - len(inserted),
            charged_amount=charged.amount,
        )
    )
    return UsageBatch(
        id=batch_id,
        customer_account_id=account.id,
        transaction_id=transaction_id,
        charged=charged,
        events=tuple(
            (e.event_id, EventStatus.CHARGED if e.event_id in inserted else EventStatus.DUPLICATE)
            for e in events
        ),
        created_at=now,
        last_usage_at=last_usage,
    )


def _refuse_conflicting_replays(
    conn: Connection, account: CustomerAccount, replays: Sequence[UsageEvent]
) -> None:
    """A replayed event id must carry what was charged for it the first time."""
    if not replays:
        return
    recorded = {
        row.event_id: (row.amount, row.description)
        for row in conn.execute(
            _RECORDED, {"account_id": account.id, "event_ids": [e.event_id for e in replays]}
        )
    }
    conflicting = [
        e.event_id for e in replays if recorded.get(e.event_id) != (e.amount.amount, e.description)
    ]
    if conflicting:
        raise UsageEventConflict(
            f"event ids already charged with a different amount or description: "
            f"{_some(conflicting)}; nothing in this batch was charged. Reuse an event id only "
            "to retry the very same event"
        )


def _touch_last_usage(conn: Connection, account_id: uuid.UUID, now: datetime) -> datetime | None:
    """Set the account's last usage time to `now` unless a later one is stored; the time set,
    or None when the stored one was kept."""
    insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert_(account_usage).values(customer_account_id=account_id, last_usage_at=now)
    written: datetime | None = conn.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_account_id"],
            set_={"last_usage_at": statement.excluded.last_usage_at},
            # Never backwards: two batches may commit out of clock order.
            where=account_usage.c.last_usage_at < statement.excluded.last_usage_at,
        ).returning(account_usage.c.last_usage_at)
    ).scalar_one_or_none()
    return written


def last_usage_at(conn: Connection, account_id: uuid.UUID) -> datetime | None:
    """When usage was last charged to the account; None if never."""
    value: datetime | None = conn.execute(
        select(account_usage.c.last_usage_at).where(
            account_usage.c.customer_account_id == account_id
        )
    ).scalar_one_or_none()
    return value


def _replayed(
    conn: Connection,
    account: CustomerAccount,
    events: Sequence[UsageEvent],
    stored: StoredOutcome,
) -> UsageBatch:
    """The batch stored under the request's key, its events reported as they were then: an
    event this batch recorded was charged by it, any other was already a duplicate."""
    batch_id = stored.resource_uuid
    row = conn.execute(select(usage_batch).where(usage_batch.c.id == batch_id)).one()
    recorded_here = {
        r.event_id
        for r in conn.execute(
            _RECORDED, {"account_id": account.id, "event_ids": [e.event_id for e in events]}
        )
        if r.batch_id == batch_id
    }
    return UsageBatch(
        id=batch_id,
        customer_account_id=row.customer_account_id,
        transaction_id=row.transaction_id,
        charged=Money(row.charged_amount, USD),
        events=tuple(
            (
                e.event_id,
                EventStatus.CHARGED if e.event_id in recorded_here else EventStatus.DUPLICATE,
            )
            for e in events
        ),
        created_at=row.created_at,
    )
