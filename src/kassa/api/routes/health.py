"""GET /v1/health — any valid key; says which database and migration this server runs on."""

from __future__ import annotations

from fastapi import APIRouter

from kassa.api.auth import AnyKey
from kassa.api.context import Ctx
from kassa.api.schemas import HealthOut
from kassa.db.migrate import current_revision

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health")
def health(ctx: Ctx, _caller: AnyKey) -> HealthOut:
    return HealthOut(
        status="ok",
        database=ctx.database.dialect,
        migration=current_revision(ctx.database.engine),
    )
