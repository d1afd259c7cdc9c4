"""The `Idempotency-Key` header: every POST that changes something is done once per key, and
every retry gets the first answer back, byte for byte.

The key is scoped to the calling API key. `Idempotency.respond` runs a route's work in one
transaction that starts by claiming the key (an insert, unique per scope and key): on PostgreSQL
a concurrent request with the same key waits on that insert until the first one ends, on SQLite
writers queue. The work runs inside a savepoint with the claim passed down
(`Request.claimed`), so the ledger completes the same record instead of claiming its own. Its
answer — the status and the JSON body, a refusal's problem body included — is stored on the
record in the same transaction as the effect. A retry with the same key and request gets that
stored answer (with `Idempotent-Replayed: true`) whatever the resource's state is now; the same
key with a different request is refused with `idempotency_key_reused`.

What is stored: successes and the refusals a client can act on (4xx from the work: 404, 409,
422, …). What is not: a malformed request (validation, headers, authentication: nothing ran),
and server-side failures (5xx: 502/503 from a chain node or the rate sources, bugs): the
transaction rolls back, the key is free again, and a retry does the work afresh.

The fingerprint covers the normalised request (amounts in minor units), so "12.5" and "12.50"
are the same request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import Connection

from kassa.api import problems
from kassa.api.auth import AnyKey
from kassa.api.context import AppContext
from kassa.api.errors import IdempotencyKeyRequired
from kassa.db import Database, driver
from kassa.errors import KassaError
from kassa.ledger import idempotency
from kassa.ledger.idempotency import (
    OK,
    IdempotencyKey,
    Request,
    StoredOutcome,
    StoredResponse,
)

REPLAYED_HEADER = "Idempotent-Replayed"

#: Statuses a refusal is stored with: the request was understood and the work ran.
_STORED_STATUSES = frozenset({403, 404, 409, 422})
#: The savepoint the work runs in (`Idempotency._run`).
_SAVEPOINT = "SAVEPOINT kassa_idempotent_work"
_RELEASE = "RELEASE SAVEPOINT kassa_idempotent_work"
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT kassa_idempotent_work"
#: Refusals about the key itself are never an outcome of the work.
_NEVER_STORED = frozenset({"idempotency_key_reused", "invalid_idempotency_key"})


@dataclass(frozen=True, slots=True)
class WithStatus:
    """A work's answer with a status other than the route's usual one."""

    model: BaseModel
    status: int


@dataclass(frozen=True, slots=True)
class WithResource:
    """A work's answer naming the resource it made, stored as the key's outcome with the
    answer (one write of the record instead of two)."""

    model: BaseModel
    resource_id: str


Answer = BaseModel | WithStatus | WithResource
Work = Callable[[Connection, Request], Answer]
TimedWork = Callable[[Connection, Request, datetime], Answer]
"""A work that takes the unit's time, read once for the claim."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: IdempotencyKey
    path: str
    """The request's path: the `instance` of a stored problem body."""

    def request(self, operation: str, params: Mapping[str, Any]) -> Request:
        return Request.of(self.key, f"api.{operation}", params)

    def replay(self, ctx: AppContext, request: Request) -> Response | None:
        """The stored answer to `request`, if its key has one; nothing is claimed. Routes that
        do slow preparation outside a transaction (rate locks) ask this first."""
        with ctx.database.transaction() as conn:
            stored = idempotency.lookup(conn, request)
        if stored is None or stored.response is None:
            return None
        return _replayed(stored.response)

    def respond(
        self, ctx: AppContext, request: Request, work: Work, *, status: int = 200
    ) -> Response:
        """Run `work` once for this key and answer with its model (as `status`), or with the
        answer stored by the first request that used the key."""
        return self.respond_at(ctx, request, lambda conn, req, _now: work(conn, req), status=status)

    def respond_at(
        self, ctx: AppContext, request: Request, work: TimedWork, *, status: int = 200
    ) -> Response:
        """`respond` for a work that takes the unit's time (the clock is read once)."""
        with _unit(ctx.database) as conn:
            now = ctx.clock.now(conn)
            found = idempotency.claim(conn, request, now)
            if isinstance(found, StoredOutcome):
                if found.response is not None:
                    return _replayed(found.response)
                # Claimed before answers were stored (a record from an older version): the
                # ledger replays its outcome and the answer built from it is stored now.
                return self._answer_unstored(conn, request, found, work, now, status)
            answer, outcome, resource, detail = self._run(
                conn, request.under(found), work, now, status
            )
            idempotency.finish(
                conn, found, outcome=outcome, detail=detail, response=answer, resource_id=resource
            )
        return _response(answer)

    def _run(
        self, conn: Connection, request: Request, work: TimedWork, now: datetime, status: int
    ) -> tuple[StoredResponse, str, str | None, str | None]:
        # The savepoint goes straight to the driver (SQLAlchemy's nested transaction costs a
        # compiled statement each way, on every POST). Every exception that leaves here rolls
        # the whole unit back (`_unit`), so only a stored refusal needs the savepoint undone.
        driver.command(conn, _SAVEPOINT)
        try:
            model = work(conn, request, now)
        except KassaError as error:
            if not _stored(error):
                raise
            # What a recorded refusal wrote down stands (a hold expired on the spot); nothing
            # else the work wrote before refusing stays.
            driver.command(conn, _RELEASE if error.recorded else _ROLLBACK_TO)
            body = problems.error_body(self.path, error)
            return StoredResponse(body["status"], _render(body)), error.code, None, error.detail
        driver.command(conn, _RELEASE)
        resource = model.resource_id if isinstance(model, WithResource) else None
        return _answer(model, status), OK, resource, None

    def _answer_unstored(
        self,
        conn: Connection,
        request: Request,
        stored: StoredOutcome,
        work: TimedWork,
        now: datetime,
        status: int,
    ) -> Response:
        stored.raise_if_refused()
        answer = _answer(work(conn, request, now), status)
        idempotency.store_response(conn, request, answer)
        return _response(answer)


def _stored(error: KassaError) -> bool:
    return problems.status_for(error) in _STORED_STATUSES and error.code not in _NEVER_STORED


@contextmanager
def _unit(database: Database) -> Iterator[Connection]:
    """A transaction that rolls back on every exception: a claimed key must never be committed
    without its outcome (`Database.transaction` commits a recorded refusal)."""
    with database.writer_turn(), database.engine.connect() as conn, conn.begin():
        yield conn


def _answer(result: Answer, status: int) -> StoredResponse:
    if isinstance(result, WithResource):
        result = result.model
    if isinstance(result, WithStatus):
        return StoredResponse(
            result.status, _render(result.model.model_dump(mode="json", by_alias=True))
        )
    return StoredResponse(status, _render(result.model_dump(mode="json", by_alias=True)))


def _render(body: Any) -> str:
    return bytes(JSONResponse(body).body).decode()


def _media_type(answer: StoredResponse) -> str:
    return problems.PROBLEM_JSON if answer.status >= 400 else "application/json"


def _response(answer: StoredResponse) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=_media_type(answer))


def _replayed(answer: StoredResponse) -> Response:
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=_media_type(answer),
        headers={REPLAYED_HEADER: "true"},
    )


async def idempotency_dependency(
    caller: AnyKey,
    http: HttpRequest,
    header: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required: one key per intended operation (a UUID, say); retries of "
            "that operation reuse it and get the first answer back.",
        ),
    ] = None,
) -> Idempotency:
    if header is None:
        raise IdempotencyKeyRequired(
            "every POST that changes something needs an Idempotency-Key header (for example a "
            "fresh UUID); retries of the same request reuse it"
        )
    return Idempotency(IdempotencyKey(str(caller.id), header), http.url.path)


Idem = Annotated[Idempotency, Depends(idempotency_dependency)]
