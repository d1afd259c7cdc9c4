"""`kassa health`: is this role able to do its work? For container healthchecks and scripts.

Every role needs the database to answer with its schema at this code's migration head (the
same as the API's `/readyz`). `--role watch --chain C` also needs the chain's watcher to be
alive: it ticked within `--stale-after` seconds and its last tick did not fail. Exit status 0
when healthy, 1 with the reason on stderr when not, 2 for bad arguments. Read-only.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer

from kassa.cli._common import database_of, fail, say, settings_of


class Role(StrEnum):
    API = "api"
    WORKER = "worker"
    WATCH = "watch"
    PAYOUT_WORKER = "payout-worker"
    MIGRATE = "migrate"


def health(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="The role to check")] = Role.API,
    chain: Annotated[str | None, typer.Option(help="With --role watch: btc, eth or tron")] = None,
    stale_after: Annotated[
        int,
        typer.Option(min=1, help="With --role watch: seconds without a tick before it is stuck"),
    ] = 120,
) -> None:
    """Check that this role can work: database and schema; a watcher's recent, clean tick."""
    from sqlalchemy import select, text
    from sqlalchemy.exc import SQLAlchemyError

    from kassa.chains.network import Chain
    from kassa.clock import DatabaseClock
    from kassa.db.migrate import current_revision, head_revision
    from kassa.deposits.tables import watcher_checkpoint

    if role is Role.WATCH and chain is None:
        fail("--role watch needs --chain (btc, eth or tron)", 2)
    watched = None
    if chain is not None:
        try:
            watched = Chain(chain)
        except ValueError:
            fail(f"unknown chain {chain!r}: btc, eth or tron", 2)
    settings = settings_of(ctx)
    with database_of(settings, pool_size=1) as database:
        try:
            with database.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current, head = current_revision(database.engine), head_revision()
        except SQLAlchemyError as error:
            fail(f"unhealthy: the database does not answer ({type(error).__name__})")
        if role is not Role.MIGRATE and current != head:
            fail(
                f"unhealthy: the database is at migration {current or '(none)'}, "
                f"this code needs {head}"
            )
        if role is Role.WATCH and watched is not None:
            with database.transaction() as conn:
                now = DatabaseClock().now(conn)
                row = conn.execute(
                    select(watcher_checkpoint).where(watcher_checkpoint.c.chain == watched.value)
                ).first()
            if row is None or row.last_tick_at is None:
                fail(f"unhealthy: the {watched.value} watcher has not ticked yet")
            if now - row.last_tick_at > timedelta(seconds=stale_after):
                age = int((now - row.last_tick_at).total_seconds())
                fail(f"unhealthy: the {watched.value} watcher last ticked {age} s ago")
            if row.last_error_at is not None and row.last_error_at >= row.last_tick_at:
                fail(f"unhealthy: the {watched.value} watcher's last tick failed: {row.last_error}")
    say(f"healthy: {role.value}" + (f" ({watched.value})" if watched else ""))
