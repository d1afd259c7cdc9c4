"""What every `kassa` command shares: settings, the database, messages and exits.

Only `typer` and the standard library are imported at module level: `kassa --help` and every
command import this module, and a command pays for the libraries it uses itself, inside its own
body, not for everyone's.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from kassa.config import Settings
    from kassa.db import Database


def say(message: str = "") -> None:
    """A message for the operator, on stderr (stdout carries only what scripts capture)."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """The settings: KASSA_* variables over the `--config` file over defaults; flags over all."""
    from pydantic import ValidationError

    from kassa.config import load_settings

    config: Path | None = ctx.find_root().obj
    try:
        return load_settings(config, **overrides)
    except FileNotFoundError as error:
        fail(str(error), 2)
    except ValidationError as error:
        fail(f"invalid settings: {error}", 2)


@contextmanager
def database_of(settings: Settings, *, pool_size: int | None = None) -> Iterator[Database]:
    """The configured database, disposed on the way out; a Kassa error ends the command."""
    from kassa.db import Database
    from kassa.errors import KassaError

    database = Database.from_url(settings.db_url, pool_size=pool_size or settings.db_pool_size)
    try:
        yield database
    except KassaError as error:
        fail(error.detail)
    finally:
        database.dispose()


@contextmanager
def migrated_database(
    ctx: typer.Context, *, pool_size: int = 1
) -> Iterator[tuple[Settings, Database]]:
    """Settings and a small database at the code's migration head (or exit)."""
    settings = settings_of(ctx)
    with database_of(settings, pool_size=pool_size) as database:
        require_head(database)
        yield settings, database


def shown_url(url: str) -> str:
    """A database URL fit to print: the password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def require_head(database: Database) -> str:
    """The current revision, or exit: serving an old schema would corrupt money."""
    from kassa.db.migrate import current_revision, head_revision

    current, head = current_revision(database.engine), head_revision()
    if current != head:
        fail(
            f"the database {shown_url(str(database.engine.url))} is at migration "
            f"{current or '(none)'} but this Kassa needs {head}; run `kassa migrate` first"
        )
    return current or ""


def setup_logging(settings: Settings) -> None:
    """Log lines as ``[logging]`` says (`kassa.telemetry.logs`), uvicorn's included."""
    from kassa.telemetry.logs import configure

    configure(settings.logging.format, settings.logging.level)


@contextmanager
def metrics_served(settings: Settings, port: int | None) -> Iterator[None]:
    """A worker process's metrics listener (`kassa.telemetry.metrics`) while the block runs, on
    ``--metrics-port`` or else ``[metrics] port``; none when neither is set or metrics are off."""
    chosen = port or settings.metrics.port
    if chosen is None or not settings.metrics.enabled:
        yield
        return
    from kassa.telemetry.metrics import serve

    try:
        server = serve(settings.host, chosen, settings.metrics.token)
    except OSError as error:
        fail(f"cannot serve metrics on {settings.host}:{chosen}: {error}")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set `stop`, so loops finish their step instead of dying mid-way."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (mode 0600, also when it exists), in
    a directory created for its owner only (0700) when missing."""
    from kassa.db.engine import create_private_dir

    create_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        handle.write(text + "\n")
