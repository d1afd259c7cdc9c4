"""Idempotency keys, enforced by the unique constraint on (scope, key).

A money-moving operation first *claims* its key by inserting the record with no outcome. On
PostgreSQL a concurrent claim of the same key blocks on the unique index until the first
transaction ends, then sees the stored outcome; on SQLite writers are serialised. The record is
completed with the outcome (`ok` + resource id, or a refusal code + detail) in the same
transaction as the effect, so a committed record always has an outcome and a rolled-back
operation leaves no record. Same key + same request → the stored outcome, refusals included;
same key + different request → `IdempotencyKeyReused`.

The API claims the key of every request itself, before the work starts, and passes the claim
down (`Request.claimed`): the ledger then completes that record instead of inserting its own,
and the API stores the exact HTTP answer beside the outcome (`finish`), which a retry gets back
verbatim (`kassa.api.idempotency`). `outcomeless` finds records that break the rule above.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from kassa.db import driver
from kassa.errors import KassaError
from kassa.ledger.errors import (
    REPLAYABLE,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    LedgerInvariantBroken,
)
from kassa.ledger.tables import idempotency_record

OK = "ok"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A caller's key within its scope (an API key id, or 'system' for chain-derived keys)."""

    scope: str
    key: str

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > MAX_KEY_LENGTH:
            raise InvalidIdempotencyKey(
                f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters, got {len(self.key)}"
            )
        if not all("!" <= ch <= "~" for ch in self.key):
            raise InvalidIdempotencyKey(
                "an idempotency key uses printable ASCII without spaces (for example a UUID)"
            )
        if not self.scope or len(self.scope) > 100:
            raise InvalidIdempotencyKey("an idempotency scope has 1 to 100 characters")


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int


@dataclass(frozen=True, slots=True)
class Request:
    """What is being asked, reduced to a fingerprint that replays must match."""

    key: IdempotencyKey
    operation: str
    fingerprint: str
    claimed: Claim | None = None
    """Set when the caller already claimed the key in the current transaction: `claim` then
    hands this claim back instead of inserting the record again."""

    @classmethod
    def of(cls, key: IdempotencyKey, operation: str, params: Mapping[str, Any]) -> Request:
        return cls(key, operation, fingerprint(operation, params))

    def under(self, claim: Claim) -> Request:
        """This request, its key already claimed by `claim` in the current transaction."""
        return Request(self.key, self.operation, self.fingerprint, claim)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The HTTP answer a request got the first time: its status and JSON body."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    outcome: str
    resource_id: str | None
    detail: str | None
    response: StoredResponse | None = None

    def raise_if_refused(self) -> None:
        if self.outcome != OK:
            raise REPLAYABLE[self.outcome](self.detail or self.outcome)

    @property
    def resource_uuid(self) -> uuid.UUID:
        """The created resource of a successful outcome."""
        self.raise_if_refused()
        if self.resource_id is None:
            raise LedgerInvariantBroken("a successful idempotent outcome names its resource")
        return uuid.UUID(self.resource_id)


# Built once (hot path of every keyed operation). The claim and the API's answer go straight
# to the driver (`kassa.db.driver`): every POST runs them.
_CLAIM_SQL = """
    INSERT INTO idempotency_record (scope, "key", operation, fingerprint, created_at)
    VALUES (%(scope)s, %(key)s, %(operation)s, %(fingerprint)s, %(created_at)s)
    ON CONFLICT (scope, "key") DO NOTHING
    RETURNING id
"""
_CLAIM = {"postgresql": _CLAIM_SQL, "sqlite": driver.for_sqlite(_CLAIM_SQL)}
_FINISH_SQL = {
    "resource": """
        UPDATE idempotency_record
        SET outcome = 'ok', resource_id = %(resource_id)s, detail = NULL,
            response_status = %(status)s, response_body = %(body)s
        WHERE id = %(record_id)s""",
    "ok": """
        UPDATE idempotency_record
        SET outcome = coalesce(outcome, 'ok'), response_status = %(status)s,
            response_body = %(body)s
        WHERE id = %(record_id)s""",
    "refused": """
        UPDATE idempotency_record
        SET outcome = %(outcome)s, resource_id = NULL, detail = %(detail)s,
            response_status = %(status)s, response_body = %(body)s
        WHERE id = %(record_id)s""",
}
_FINISH = {
    "postgresql": _FINISH_SQL,
    "sqlite": {name: driver.for_sqlite(sql) for name, sql in _FINISH_SQL.items()},
}
_STORED = select(
    idempotency_record.c.operation,
    idempotency_record.c.fingerprint,
    idempotency_record.c.outcome,
    idempotency_record.c.resource_id,
    idempotency_record.c.detail,
    idempotency_record.c.response_status,
    idempotency_record.c.response_body,
).where(
    idempotency_record.c.scope == bindparam("scope"),
    idempotency_record.c.key == bindparam("key"),
)
_COMPLETE = (
    update(idempotency_record)
    .where(idempotency_record.c.id == bindparam("record_id"))
    .values(
        outcome=bindparam("outcome"),
        resource_id=bindparam("resource_id"),
        detail=bindparam("detail"),
    )
)


def fingerprint(operation: str, params: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(conn: Connection, request: Request, now: datetime) -> Claim | StoredOutcome:
    """Insert the key, or return the outcome stored under it by an earlier request (or the
    claim the caller already made in this transaction)."""
    if request.claimed is not None:
        return request.claimed
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass timezone-aware UTC datetimes")
    dialect = conn.dialect.name
    values = {
        "scope": request.key.scope,
        "key": request.key.key,
        "operation": request.operation,
        "fingerprint": request.fingerprint,
        "created_at": now if dialect == "postgresql" else driver.time_text(now),
    }
    claimed = driver.rows(conn, _CLAIM[dialect], values)
    if claimed:
        return Claim(int(claimed[0][0]))
    row = conn.execute(_STORED, {"scope": request.key.scope, "key": request.key.key}).one()
    return _outcome_of(request, row)


def lookup(conn: Connection, request: Request) -> StoredOutcome | None:
    """The outcome stored under `request`'s key, without claiming it (None: not used yet, or
    claimed by a transaction still running)."""
    row = conn.execute(_STORED, {"scope": request.key.scope, "key": request.key.key}).first()
    if row is None or row.outcome is None:
        return None
    return _outcome_of(request, row)


def _outcome_of(request: Request, row: Any) -> StoredOutcome:
    stored = replayed(
        request, row.operation, row.fingerprint, row.outcome, row.resource_id, row.detail
    )
    if row.response_status is None or row.response_body is None:
        return stored
    response = StoredResponse(int(row.response_status), str(row.response_body))
    return StoredOutcome(stored.outcome, stored.resource_id, stored.detail, response)


def stored_detail(conn: Connection, request: Request) -> str | None:
    """The detail stored with the outcome under `request`'s key (a refusal's explanation)."""
    row = conn.execute(_STORED, {"scope": request.key.scope, "key": request.key.key}).first()
    return None if row is None else row.detail


def replayed(
    request: Request,
    operation: str,
    stored_fingerprint: str,
    outcome: str | None,
    resource_id: str | None,
    detail: str | None,
) -> StoredOutcome:
    """Check a stored record against the new request and return its outcome."""
    if operation != request.operation or stored_fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(
            f"idempotency key {request.key.key!r} was already used for a different request "
            f"({operation}); use a new key for a new request"
        )
    if outcome is None:
        # Only visible inside the transaction that claimed it: one unit of work reused a key.
        raise LedgerInvariantBroken(f"idempotency key {request.key.key!r} claimed twice")
    return StoredOutcome(outcome, resource_id, detail)


def complete(
    conn: Connection, claimed: Claim, outcome: str, resource_id: str | None, detail: str | None
) -> None:
    conn.execute(
        _COMPLETE,
        {
            "record_id": claimed.record_id,
            "outcome": outcome,
            "resource_id": resource_id,
            "detail": detail,
        },
    )


def complete_refused(conn: Connection, claimed: Claim, error: KassaError) -> None:
    if error.code not in REPLAYABLE:
        raise LedgerInvariantBroken(f"refusal {error.code} cannot be stored for replay")
    complete(conn, claimed, error.code, None, error.detail)
    error.recorded = True


def finish(
    conn: Connection,
    claimed: Claim,
    *,
    outcome: str,
    detail: str | None,
    response: StoredResponse,
    resource_id: str | None = None,
) -> None:
    """Complete an API request's record with the answer it got. The outcome a ledger call
    already stored in this transaction (its resource id included) is kept for a success,
    unless the success names its `resource_id` here."""
    values: dict[str, Any]
    if outcome != OK:
        form, values = "refused", {"outcome": outcome, "detail": detail}
    elif resource_id is not None:
        form, values = "resource", {"resource_id": resource_id}
    else:
        form, values = "ok", {}
    values.update(record_id=claimed.record_id, status=response.status, body=response.body)
    driver.rows(conn, _FINISH[conn.dialect.name][form], values)


def store_response(conn: Connection, request: Request, response: StoredResponse) -> None:
    """Keep the answer to a request whose record has an outcome but no answer yet."""
    conn.execute(
        update(idempotency_record)
        .where(
            idempotency_record.c.scope == request.key.scope,
            idempotency_record.c.key == request.key.key,
            idempotency_record.c.response_body.is_(None),
        )
        .values(response_status=response.status, response_body=response.body)
    )


def outcomeless(conn: Connection, limit: int = 100) -> list[tuple[str, str, str, datetime]]:
    """Committed records without an outcome: (scope, key, operation, created_at), oldest first.
    Seen from another transaction there must be none (see the module docstring)."""
    rows = conn.execute(
        select(
            idempotency_record.c.scope,
            idempotency_record.c.key,
            idempotency_record.c.operation,
            idempotency_record.c.created_at,
        )
        .where(idempotency_record.c.outcome.is_(None))
        .order_by(idempotency_record.c.id)
        .limit(limit)
    ).all()
    return [(r.scope, r.key, r.operation, r.created_at) for r in rows]


def complete_refused_by_key(conn: Connection, request: Request, error: KassaError) -> None:
    """Store a refusal on a record claimed inside a stored function (we only know its key)."""
    if error.code not in REPLAYABLE:
        raise LedgerInvariantBroken(f"refusal {error.code} cannot be stored for replay")
    conn.execute(
        update(idempotency_record)
        .where(
            idempotency_record.c.scope == request.key.scope,
            idempotency_record.c.key == request.key.key,
        )
        .values(outcome=error.code, detail=error.detail)
    )
    error.recorded = True
