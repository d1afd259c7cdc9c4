"""Health: `GET /v1/health` for API clients, `/healthz` and `/readyz` for load balancers.

`/v1/health` needs a key. Which database and migration the server runs on, how far each chain
watcher is behind its node (lag) with its last error, and the state of each node of a chain
with several, are operator facts: only an admin key sees them; any other key gets the status
alone.

`/healthz` (the process answers) and `/readyz` (the database answers and its schema is at this
code's migration head) need no key: load balancers and orchestrators probe them without
credentials. They say nothing more than ready or not; the reason a server is not ready goes to
its log, not to an anonymous caller.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from kassa.api.auth import AnyKey
from kassa.api.context import AppContext, Ctx
from kassa.api.openapi import problems_for
from kassa.api.schemas import HealthOut, NodeOut, WatcherOut
from kassa.apikeys.service import Scope
from kassa.db.migrate import current_revision, head_revision
from kassa.deposits.nodes import node_status
from kassa.deposits.watcher import watcher_status
from kassa.errors import KassaError

log = logging.getLogger(__name__)

REVISION_TTL_SECONDS = 10.0
"""How long `/v1/health` reports the migration it last read. Alembic's lookup costs more than
the rest of the request, the schema changes only by `kassa migrate`, and a server on a schema
that is not at its head refuses to start (and `/readyz`, which reads it every time, says so)."""

router = APIRouter(prefix="/v1", tags=["health"])
probes = APIRouter(tags=["health"])


class StatusOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


class NotReady(KassaError):
    code = "not_ready"
    title = "Not ready"


@router.get(
    "/health",
    description=(
        "Whether the server runs; with an admin key also on which database and migration, "
        "and how far each chain watcher lags."
    ),
    responses=problems_for(),
)
def health(ctx: Ctx, caller: AnyKey) -> HealthOut | StatusOut:
    if not caller.allows(Scope.ADMIN):
        return StatusOut(status="ok")
    return _internals(ctx)


def _internals(ctx: AppContext) -> HealthOut:
    with ctx.database.transaction() as conn:
        watchers = [
            WatcherOut(
                chain=w.chain.value,
                scanned_height=w.scanned_height,
                head_height=w.head_height,
                final_height=w.final_height,
                lag=w.lag,
                last_tick_at=w.last_tick_at,
                last_error=w.last_error,
                last_error_at=w.last_error_at,
            )
            for w in watcher_status(conn)
        ]
        nodes = [
            NodeOut(
                chain=n.chain.value,
                priority=n.priority,
                url=n.url,
                state=n.state,  # type: ignore[arg-type]  # the table's check constraint
                height=n.height,
                latency_ms=n.latency_ms,
                errors=n.errors,
                last_error=n.last_error,
                checked_at=n.checked_at,
            )
            for n in node_status(conn)
        ]
    return HealthOut(
        status="ok",
        database=ctx.database.dialect,
        migration=_revisions.of(ctx.database.engine),
        watchers=watchers,
        nodes=nodes,
    )


class _Revisions:
    """The migration each database is at, read at most once per `REVISION_TTL_SECONDS`."""

    def __init__(self) -> None:
        self._read: weakref.WeakKeyDictionary[Engine, tuple[str | None, float]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def of(self, engine: Engine) -> str | None:
        now = time.monotonic()
        with self._lock:
            known = self._read.get(engine)
        if known is not None and now < known[1]:
            return known[0]
        revision = current_revision(engine)
        with self._lock:
            self._read[engine] = (revision, now + REVISION_TTL_SECONDS)
        return revision


_revisions = _Revisions()


@probes.get(
    "/healthz",
    description="For load balancers, without a key: the process is alive (touches nothing).",
)
def healthz() -> StatusOut:
    return StatusOut(status="ok")


@probes.get(
    "/readyz",
    description="For load balancers, without a key: the database answers and its schema is at "
    "this server's migration head; otherwise 503 `not_ready` (the reason is in the server's log).",
    responses=problems_for("not_ready"),
)
def readyz(ctx: Ctx) -> ReadyOut:
    try:
        current = current_revision(ctx.database.engine)
    except SQLAlchemyError as error:
        log.warning("not ready: the database does not answer: %s", error)
        raise NotReady("the database does not answer") from None
    head = head_revision()
    if current != head:
        log.warning("not ready: the database is at migration %s, this code needs %s", current, head)
        raise NotReady("the database schema is not at this server's migration head")
    return ReadyOut(status="ready")
