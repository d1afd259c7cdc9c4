"""GET /v1/health — any valid key; says which database and migration this server runs on, and
how far each chain watcher is behind its node (lag) and its last error."""

from __future__ import annotations

from fastapi import APIRouter

from kassa.api.auth import AnyKey
from kassa.api.context import Ctx
from kassa.api.openapi import problems_for
from kassa.api.schemas import HealthOut, WatcherOut
from kassa.db.migrate import current_revision
from kassa.deposits.watcher import watcher_status

router = APIRouter(prefix="/v1", tags=["health"])


@router.get(
    "/health",
    description=(
        "Whether the server runs, on which database and migration, "
        "and how far each chain watcher lags."
    ),
    responses=problems_for(),
)
def health(ctx: Ctx, _caller: AnyKey) -> HealthOut:
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
    return HealthOut(
        status="ok",
        database=ctx.database.dialect,
        migration=current_revision(ctx.database.engine),
        watchers=watchers,
    )
