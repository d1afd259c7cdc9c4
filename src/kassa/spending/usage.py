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
* The entry is the batch's LAST write. It locks the house revenue account every batch credits,
  so on PostgreSQL that row is locked only from the entry to COMMIT, never while the events,
  the batch row or the last usage time are written. The transaction id is allocated up front
  and the batch row names it before the entry exists: that foreign key is checked at COMMIT
  (migration 0021). On PostgreSQL the events, the batch row and the last usage time are one
  statement; on SQLite, whose writers hold the database lock from BEGIN to COMMIT, the events
  already recorded are read first and the new ones inserted.
* The hot statements go straight to the driver (`kassa.db.driver`); `payer` reads the account,
  its balance, the revenue account and whether a hold is due in one statement.
* Refused as a whole when the available balance cannot cover the new events: the ledger's
  `insufficient_funds` (or `account_frozen`). Everything the batch wrote is rolled back to a
  savepoint first, so only the refusal stored under the caller's key remains. Suspended,
  terminated and frozen accounts are refused before anything is written (`spending.guard`).
* The request's Idempotency-Key is claimed as well: the same key and batch gets the stored batch
  back (its events reported as they were then), the same key with another batch is refused.
* `account_usage.last_usage_at` is when usage was last charged; refund policies read it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, bindparam, select

from kassa.accounts.errors import CustomerAccountNotFound
from kassa.accounts.service import CustomerAccount
from kassa.db import driver
from kassa.ledger import house, idempotency
from kassa.ledger.accounts import get_balance
from kassa.ledger.charges import new_transaction_id, post_charge
from kassa.ledger.errors import AccountFrozen, InsufficientFunds, LedgerInvariantBroken
from kassa.ledger.holds import expire_due_holds_of
from kassa.ledger.idempotency import OK, Claim, Request, StoredOutcome
from kassa.ledger.model import Balance, NormalSide, TransactionKind
from kassa.money import USD, Money, asset
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


# Built once: the hot path of every batch.
#
# PostgreSQL: the events, the batch row and the last usage time in ONE statement. The events
# take three arrays (a 1 000-row VALUES list has 6 000 placeholders, and psycopg re-parses a
# statement that long on every call, ~100 ms); those the account had already are skipped (ON
# CONFLICT), and the batch row counts and sums the ones inserted. The batch names the journal
# entry by the id allocated up front (checked at COMMIT, migration 0021), or none when nothing
# was new. The events' own key to the batch is checked at the end of the statement, when the
# batch row is there.
_RECORD_POSTGRES = """
    WITH new AS (
        INSERT INTO usage_event
            (customer_account_id, event_id, batch_id, amount, description, created_at)
        SELECT %(account_id)s, e.event_id, %(batch_id)s, e.amount, e.description, %(now)s
        FROM unnest(
            %(event_ids)s::varchar[], %(amounts)s::numeric[], %(descriptions)s::text[]
        ) WITH ORDINALITY AS e(event_id, amount, description, n)
        ORDER BY e.n
        ON CONFLICT (customer_account_id, event_id) DO NOTHING
        RETURNING event_id, amount
    ), batch AS (
        INSERT INTO usage_batch
            (id, customer_account_id, transaction_id, charged_events, duplicate_events,
             charged_amount, actor, created_at)
        SELECT %(batch_id)s, %(account_id)s,
               CASE WHEN count(*) > 0 THEN %(transaction_id)s::uuid END,
               count(*), %(events)s - count(*), coalesce(sum(amount), 0), %(actor)s::varchar,
               %(now)s
        FROM new
    ), touched AS (
        -- The last usage time, when something was charged (`_touch_last_usage`).
        INSERT INTO account_usage AS u (customer_account_id, last_usage_at)
        SELECT %(account_id)s, %(now)s WHERE EXISTS (SELECT 1 FROM new)
        ON CONFLICT (customer_account_id) DO UPDATE SET last_usage_at = excluded.last_usage_at
        WHERE u.last_usage_at < excluded.last_usage_at
        RETURNING last_usage_at
    )
    SELECT event_id, (SELECT last_usage_at FROM touched) FROM new
"""
# The events already recorded under some of a batch's ids (replays, and their conflicts).
_RECORDED = select(
    usage_event.c.event_id,
    usage_event.c.batch_id,
    usage_event.c.amount,
    usage_event.c.description,
).where(
    usage_event.c.customer_account_id == bindparam("account_id"),
    usage_event.c.event_id.in_(bindparam("event_ids", expanding=True)),
)

REVENUE_CODE = f"house:revenue:{USD.code}"
"""The house account usage is credited to (`kassa.ledger.house.revenue`)."""

# The paying account, its balance, the revenue account and whether a hold is due, at once.
_PAYER_SQL = """
    SELECT c.id, c.external_id, c.ledger_account_id, c.status, c.metadata_json, c.created_at,
           a.asset, a.normal_side, a.allow_negative, a.debits_posted, a.credits_posted,
           a.debits_pending, a.credits_pending,
           r.id, r.asset, r.normal_side, r.allow_negative,
           EXISTS (SELECT 1 FROM ledger_hold h
                   WHERE h.debit_account_id = c.ledger_account_id AND h.status = 'pending'
                     AND h.expires_at IS NOT NULL AND h.expires_at <= %(now)s) AS holds_due
    FROM customer_account c
    JOIN ledger_account a ON a.id = c.ledger_account_id
    LEFT JOIN ledger_account r ON r.code = %(revenue_code)s
    WHERE c.external_id = %(external_id)s
"""
_BALANCE_SQL = """
    SELECT debits_posted, credits_posted, debits_pending, credits_pending
    FROM ledger_account WHERE id = %(id)s
"""
_LAST_USAGE_SQL = """
    INSERT INTO account_usage AS u (customer_account_id, last_usage_at)
    VALUES (%(account_id)s, %(now)s)
    ON CONFLICT (customer_account_id) DO UPDATE SET last_usage_at = excluded.last_usage_at
    -- Never backwards: two batches may commit out of clock order.
    WHERE u.last_usage_at < excluded.last_usage_at
    RETURNING last_usage_at
"""
# SQLite: writers hold the database lock from BEGIN IMMEDIATE to COMMIT, so the events the
# account already has are read first and the new ones inserted plainly (a conflict would be a
# bug, and fails the batch).
_RECORDED_SQLITE = """
    SELECT event_id, amount, description FROM usage_event
    WHERE customer_account_id = :account_id AND event_id IN (SELECT value FROM json_each(:ids))
"""
_INSERT_BATCH_SQLITE = """
    INSERT INTO usage_batch
        (id, customer_account_id, transaction_id, charged_events, duplicate_events,
         charged_amount, actor, created_at)
    VALUES (:id, :account_id, :transaction_id, :charged_events, :duplicate_events,
            :charged_amount, :actor, :now)
"""
_INSERT_EVENT_SQLITE = """
    INSERT INTO usage_event
        (customer_account_id, event_id, batch_id, amount, description, created_at)
    VALUES (:account_id, :event_id, :batch_id, :amount, :description, :now)
"""
_SQL = {
    "postgresql": {
        "payer": _PAYER_SQL,
        "balance": _BALANCE_SQL,
        "last_usage": _LAST_USAGE_SQL,
    },
    "sqlite": {
        "payer": driver.for_sqlite(_PAYER_SQL),
        "balance": driver.for_sqlite(_BALANCE_SQL),
        "last_usage": driver.for_sqlite(_LAST_USAGE_SQL),
    },
}


@dataclass(frozen=True, slots=True)
class Payer:
    """What charging a batch needs to know about the account paying it, read in one
    statement (`payer`)."""

    account: CustomerAccount
    balance: Balance
    """Its ledger balance, its due holds expired."""
    revenue_id: int | None
    """The house revenue account usage is credited to; None until it is opened."""
    wrote: bool = True
    """Whether reading it wrote something (the fence expired due holds): `charge` then keeps
    those writes apart from the batch's with a savepoint of its own."""


def payer(
    conn: Connection,
    external_id: str,
    *,
    now: datetime,
    visible: Callable[[uuid.UUID], bool] = lambda _id: True,
) -> Payer:
    """The customer account `external_id` with its balance, in one statement; its holds due
    at `now` are expired first (the fence `kassa.ledger.holds.expire_due_holds_of`, run only
    when the statement saw one due). CustomerAccountNotFound when there is no such account or
    `visible` says the caller may not see it."""
    dialect = conn.dialect.name
    postgres = dialect == "postgresql"
    found = driver.rows(
        conn,
        _SQL[dialect]["payer"],
        {
            "external_id": external_id,
            "now": now if postgres else driver.time_text(now),
            "revenue_code": REVENUE_CODE,
        },
    )
    row = found[0] if found else None
    account_id = None if row is None else (row[0] if postgres else uuid.UUID(row[0]))
    if row is None or account_id is None or not visible(account_id):
        raise CustomerAccountNotFound(f"no account with external id {external_id!r}")
    (_, external, ledger_id, status, metadata, created) = row[:6]
    account = CustomerAccount(
        id=account_id,
        external_id=external,
        ledger_account_id=ledger_id,
        status=status,
        metadata=json.loads(metadata) if metadata else {},
        created_at=driver.read_time(created),
    )
    if row[17]:  # a hold is due: expire it (and the others due) before reading the balance
        expire_due_holds_of(conn, ledger_id, now=now)
        balance = get_balance(conn, ledger_id)
    else:
        balance = Balance(
            asset=asset(row[6]),
            normal_side=NormalSide(row[7]),
            allow_negative=bool(row[8]),
            debits_posted=int(row[9]),
            credits_posted=int(row[10]),
            debits_pending=int(row[11]),
            credits_pending=int(row[12]),
        )
    revenue_id = row[13]
    if revenue_id is not None and (
        row[14] != str(USD.code) or row[15] != str(NormalSide.CREDIT) or not row[16]
    ):
        raise LedgerInvariantBroken(f"account {REVENUE_CODE} exists with a different definition")
    return Payer(account, balance, revenue_id, wrote=bool(row[17]))


def balance_after(conn: Connection, payer: Payer, batch: UsageBatch) -> Balance:
    """The paying account's balance after `batch`, charged in this unit of work. On SQLite it is
    the balance `payer` read plus the charge: this unit has held the database's write lock since
    then. On PostgreSQL another unit may have moved the balance in between (a deposit, a hold):
    it is read again."""
    before = payer.balance
    if conn.dialect.name == "postgresql":
        sums = driver.rows(conn, _BALANCE_SQL, {"id": payer.account.ledger_account_id})[0]
        debits, credits, debits_pending, credits_pending = (int(value) for value in sums)
    else:
        debits = before.debits_posted + batch.charged.amount
        credits, debits_pending, credits_pending = (
            before.credits_posted,
            before.debits_pending,
            before.credits_pending,
        )
    return Balance(
        asset=before.asset,
        normal_side=before.normal_side,
        allow_negative=before.allow_negative,
        debits_posted=debits,
        credits_posted=credits,
        debits_pending=debits_pending,
        credits_pending=credits_pending,
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
    balance = get_balance(conn, account.ledger_account_id)
    batch = charge(
        conn, Payer(account, balance, None), events, now=now, claimed=claimed, actor=actor
    )
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(batch.id), None)
    return batch


def charge(
    conn: Connection,
    payer: Payer,
    events: Sequence[UsageEvent],
    *,
    now: datetime,
    claimed: Claim | None,
    actor: str | None,
    rolled_back_by_caller: bool = False,
) -> UsageBatch:
    """Charge the (validated) batch to `payer` under the key `claimed` in this transaction,
    which the caller completes with the batch's id. A refusal (insufficient funds, a frozen,
    suspended or terminated account) is stored under `claimed` when replayable, as
    `record_usage` does, and raised; the batch's writes are rolled back first.

    `rolled_back_by_caller`: the caller rolls back to a savepoint of its own on any refusal it
    did not see recorded (the API's unit of work does) and stores it itself. When, besides,
    nothing was written since that savepoint (`payer.wrote` is False), an insufficient-funds or
    frozen refusal of the entry is raised as it comes, unrecorded, and the caller's rollback
    takes the batch's writes with it: no savepoint of the batch's own (two statements fewer).

    The journal entry is the batch's last write: everything else (the events, the batch row,
    the last usage time) is written before it, so the house revenue account it credits is
    locked only from the entry to the unit's COMMIT."""
    account = payer.account
    ensure_may_spend(conn, account, claimed, balance=payer.balance)
    if rolled_back_by_caller and not payer.wrote:
        return _charge(conn, payer, events, uuid.uuid4(), now, actor)
    try:
        # A savepoint, because a refused batch must leave nothing but the stored refusal, and
        # its refusals are "recorded" errors: the unit of work commits them.
        with conn.begin_nested():
            return _charge(conn, payer, events, uuid.uuid4(), now, actor)
    except (InsufficientFunds, AccountFrozen) as refused:
        if claimed is not None:
            idempotency.complete_refused(conn, claimed, refused)
        raise


def _charge(
    conn: Connection,
    payer: Payer,
    events: Sequence[UsageEvent],
    batch_id: uuid.UUID,
    now: datetime,
    actor: str | None,
) -> UsageBatch:
    account = payer.account
    transaction_id = new_transaction_id()
    # In event-id order: batches sharing ids take their index locks in the same order.
    ordered = sorted(events, key=lambda e: e.event_id)
    if conn.dialect.name == "postgresql":
        inserted, last_usage = _record_postgres(
            conn, account, ordered, batch_id, transaction_id, now, actor
        )
        _refuse_conflicting_replays(
            conn, account, [e for e in events if e.event_id not in inserted]
        )
    else:
        inserted = _record_sqlite(conn, account, ordered, batch_id, transaction_id, now, actor)
        last_usage = _touch_last_usage(conn, account.id, now) if inserted else None

    charged = Money(sum(e.amount.amount for e in events if e.event_id in inserted), USD)
    if charged.is_positive:
        revenue_id = payer.revenue_id
        if revenue_id is None:
            revenue_id = house.revenue(conn, USD, now).id
        # Last: from here to COMMIT the house revenue row is locked (see the docstring).
        post_charge(
            conn,
            transaction_id=transaction_id,
            debit_account_id=account.ledger_account_id,
            credit_account_id=revenue_id,
            amount=charged,
            kind=TransactionKind.USAGE,
            now=now,
            memo=f"usage: {len(inserted)} event(s)",
            actor=actor,
            metadata={"usage_batch": str(batch_id), "events": len(inserted)},
        )
    return UsageBatch(
        id=batch_id,
        customer_account_id=account.id,
        transaction_id=transaction_id if charged.is_positive else None,
        charged=charged,
        events=tuple(
            (e.event_id, EventStatus.CHARGED if e.event_id in inserted else EventStatus.DUPLICATE)
            for e in events
        ),
        created_at=now,
        last_usage_at=last_usage,
    )


def _record_postgres(
    conn: Connection,
    account: CustomerAccount,
    ordered: Sequence[UsageEvent],
    batch_id: uuid.UUID,
    transaction_id: uuid.UUID,
    now: datetime,
    actor: str | None,
) -> tuple[set[str], datetime | None]:
    """Insert the batch row and its new events and set the last usage time; the ids of the
    events inserted, and the last usage time if this batch set it."""
    found = driver.rows(
        conn,
        _RECORD_POSTGRES,
        {
            "account_id": account.id,
            "batch_id": batch_id,
            "transaction_id": transaction_id,
            "now": now,
            "events": len(ordered),
            "actor": actor,
            "event_ids": [e.event_id for e in ordered],
            # Python ints: psycopg sends the narrowest integer array, the query casts it.
            "amounts": [e.amount.amount for e in ordered],
            "descriptions": [e.description for e in ordered],
        },
    )
    last_usage = found[0][1] if found else None
    return {row[0] for row in found}, None if last_usage is None else driver.read_time(last_usage)


def _record_sqlite(
    conn: Connection,
    account: CustomerAccount,
    ordered: Sequence[UsageEvent],
    batch_id: uuid.UUID,
    transaction_id: uuid.UUID,
    now: datetime,
    actor: str | None,
) -> set[str]:
    """Insert the batch row and its new events; the ids of the events inserted. The account's
    events are read first: this unit holds the database's write lock."""
    account_id = driver.uuid_text(account.id)
    batch = driver.uuid_text(batch_id)
    at = driver.time_text(now)
    recorded = {
        event_id: (int(amount), description)
        for event_id, amount, description in driver.rows(
            conn,
            _RECORDED_SQLITE,
            {"account_id": account_id, "ids": json.dumps([e.event_id for e in ordered])},
        )
    }
    _refuse_conflicting(ordered, recorded)
    new = [e for e in ordered if e.event_id not in recorded]
    driver.rows(
        conn,
        _INSERT_BATCH_SQLITE,
        {
            "id": batch,
            "account_id": account_id,
            "transaction_id": driver.uuid_text(transaction_id) if new else None,
            "charged_events": len(new),
            "duplicate_events": len(ordered) - len(new),
            "charged_amount": str(sum(e.amount.amount for e in new)),
            "actor": actor,
            "now": at,
        },
    )
    if new:
        driver.many(
            conn,
            _INSERT_EVENT_SQLITE,
            [
                {
                    "account_id": account_id,
                    "event_id": e.event_id,
                    "batch_id": batch,
                    "amount": str(e.amount.amount),
                    "description": e.description,
                    "now": at,
                }
                for e in new
            ],
        )
    return {e.event_id for e in new}


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
    missing = [e.event_id for e in replays if e.event_id not in recorded]
    if missing:  # skipped by ON CONFLICT, so recorded: never
        raise LedgerInvariantBroken(f"usage events skipped but not recorded: {_some(missing)}")
    _refuse_conflicting(replays, recorded)


def _refuse_conflicting(
    replays: Sequence[UsageEvent], recorded: Mapping[str, tuple[int, str]]
) -> None:
    """Refuse the batch if one of `replays` (events already recorded, or events that may be)
    was recorded with another amount or description."""
    conflicting = [
        e.event_id
        for e in replays
        if recorded.get(e.event_id, (e.amount.amount, e.description))
        != (e.amount.amount, e.description)
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
    dialect = conn.dialect.name
    postgres = dialect == "postgresql"
    written = driver.rows(
        conn,
        _SQL[dialect]["last_usage"],
        {
            "account_id": account_id if postgres else driver.uuid_text(account_id),
            "now": now if postgres else driver.time_text(now),
        },
    )
    return driver.read_time(written[0][0]) if written else None


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
