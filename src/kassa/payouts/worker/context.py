"""What every stage of a payout round shares: the database, the clock, the settings, this
worker's name, and the crash points of the fault-injection tests.

Fault injection for the crash tests: ``KASSA_FAULT_CRASH_AT`` = ``after_sign``,
``after_broadcast`` or ``before_confirm`` makes the process exit at once (``os._exit``, no
cleanup, like a kill -9) at that point. Never set it in production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from kassa.clock import Clock
from kassa.db import Database
from kassa.errors import KassaError
from kassa.payouts.settings import PayoutSettings

log = logging.getLogger(__name__)

CRASH_ENV = "KASSA_FAULT_CRASH_AT"
CRASH_POINTS = frozenset({"after_sign", "after_broadcast", "before_confirm"})


def crash_point_from_env() -> str | None:
    value = os.environ.get(CRASH_ENV)
    if value is None or value == "":
        return None
    if value not in CRASH_POINTS:
        raise ValueError(f"{CRASH_ENV} must be one of {sorted(CRASH_POINTS)}, got {value!r}")
    return value


class WorkerConflict(RuntimeError):
    """The books refused a step of the worker (e.g. the payout's hold was resolved by someone
    else): nothing of that step was committed; an operator must look."""


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """One worker's shared means; each stage receives it explicitly."""

    database: Database
    clock: Clock
    settings: PayoutSettings
    worker_id: str
    crash_at: str | None

    @contextmanager
    def unit(self) -> Iterator[Connection]:
        """A database transaction that rolls back on *every* error. `Database.transaction`
        commits a "recorded" refusal (so an API request's idempotency record survives); the
        worker has no such record, and a half-done settlement (transaction confirmed, hold
        not captured) must never be committed. Such a refusal surfaces as `WorkerConflict`."""
        with self.database.transaction() as conn:
            try:
                yield conn
            except KassaError as error:
                if error.recorded:
                    raise WorkerConflict(f"{type(error).__name__}: {error}") from error
                raise

    def crash(self, point: str) -> None:
        if self.crash_at == point:
            log.error("fault injection: exiting at %s", point)
            os._exit(86)
