"""Background work: expiring holds whose time has come, refreshing USD rates, delivering
webhooks (`kassa.webhooks`: the fan-out of new events and the sender), the daily reconciliation,
and writing yesterday's activity report into the data directory (`kassa.reports.daily`).

Each loop runs in its own thread on its own interval. Each batch of expiries is its own short
transaction, so a large backlog never holds one long transaction (or SQLite's writer lock) open.
The loops survive errors: they log them and try again at the next tick, because a worker that
dies silently leaves funds reserved forever and rates going stale. Each round is timed and a
failed one counted (`kassa.telemetry.metrics`), so a loop that keeps failing shows in the
process's metrics and fires ``KassaWorkerRoundErrors``.
"""

from __future__ import annotations

import logging
import threading

from kassa.clock import Clock, DatabaseClock
from kassa.config import Settings
from kassa.db import Database
from kassa.ledger.holds import expire_due_holds
from kassa.pricing.service import PricingService
from kassa.reports.daily import write_daily_activity
from kassa.spending import activations
from kassa.telemetry.metrics import timed_round
from kassa.webhooks.runtime import start_senders

log = logging.getLogger(__name__)

BATCH_SIZE = 500


def sweep_expired_holds(database: Database, clock: Clock, *, batch_size: int = BATCH_SIZE) -> int:
    """Expire every hold that is due now (activations whose window ended are refunded this way),
    then record the activations' new status; return how many holds were expired."""
    total = 0
    while True:
        with database.transaction() as conn:
            expired = expire_due_holds(conn, now=clock.now(conn), limit=batch_size)
        total += len(expired)
        if len(expired) < batch_size:
            break
    while True:
        with database.transaction() as conn:
            settled = activations.settle_resolved(conn, now=clock.now(conn), limit=batch_size)
        if settled < batch_size:
            return total


def sweep_forever(
    database: Database, clock: Clock, interval_seconds: float, stop: threading.Event
) -> None:
    """Sweep now and then every `interval_seconds` until `stop` is set."""
    log.info("hold-expiry worker started (every %ss)", interval_seconds)
    while not stop.is_set():
        try:
            with timed_round("hold_sweep"):
                count = sweep_expired_holds(database, clock)
        except Exception:
            log.exception("hold sweep failed; retrying in %ss", interval_seconds)
        else:
            if count:
                log.info("expired %d hold(s)", count)
            else:
                log.debug("no holds due")
        stop.wait(interval_seconds)
    log.info("hold-expiry worker stopped")


def refresh_rates_forever(
    pricing: PricingService, interval_seconds: float, stop: threading.Event
) -> None:
    """Refresh every rate now and then every `interval_seconds` until `stop` is set.

    A refresh that finds no rate for a symbol stores nothing for it (and logs why), so the last
    good rate ages out instead of being repeated: valuations then wait rather than use it.
    """
    log.info("rate refresher started (every %ss)", interval_seconds)
    while not stop.is_set():
        try:
            with timed_round("rate_refresh"):
                result = pricing.refresh()
        except Exception:
            log.exception("rate refresh failed; retrying in %ss", interval_seconds)
        else:
            log.debug(
                "rates refreshed: %s",
                ", ".join(f"{s} {r.bid}/{r.ask}" for s, r in result.samples.items()) or "none",
            )
        stop.wait(interval_seconds)
    log.info("rate refresher stopped")


def reconcile_daily_forever(
    settings: Settings, database: Database, clock: Clock, stop: threading.Event
) -> None:
    """Once a day after ``[reconciliation] at``, reconcile the day before into the data
    directory (`kassa.reports.reconciliation.daily`); look again every check interval."""
    from kassa.reports.reconciliation.daily import run_if_due
    from kassa.reports.reconciliation.run import reconciler_for

    config = settings.reconciliation
    log.info("daily reconciliation after %s UTC into %s", config.at, settings.data_dir)

    def progress(message: str) -> None:
        log.info("reconciliation: %s", message)

    # The first look comes one interval after the start, not at once: a worker started and
    # stopped at once (a restart, a short job) does not begin a long run.
    while not stop.wait(config.check_interval_seconds):
        try:
            with timed_round("reconciliation"):
                with database.transaction() as conn:
                    now = clock.now(conn)
                written = run_if_due(
                    lambda: reconciler_for(settings.chains, database, clock, progress),
                    settings.data_dir,
                    now,
                    config.at,
                )
        except Exception:
            log.exception(
                "daily reconciliation failed; retrying in %ss", config.check_interval_seconds
            )
        else:
            if written:
                log.info("reconciliation written to %s", ", ".join(map(str, written)))


def daily_reports_forever(
    database: Database, clock: Clock, settings: Settings, stop: threading.Event
) -> None:
    """Every ``[reports] daily_check_seconds``: write yesterday's activity report if it is not
    there yet, and record its ``report.ready`` event (both idempotent)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.reports.time_zone)
    interval = settings.reports.daily_check_seconds
    log.info("daily report writer started (every %ss, days in %s)", interval, zone.key)
    while not stop.is_set():
        try:
            with timed_round("daily_report"):
                done = write_daily_activity(database, clock, settings.data_dir, zone)
        except Exception:
            log.exception("daily report failed; retrying in %ss", interval)
        else:
            if done.written or done.event_recorded:
                log.info("daily activity report for %s ready: %s", done.day, done.html_path)
        stop.wait(interval)
    log.info("daily report writer stopped")


def run_worker(
    settings: Settings,
    stop: threading.Event,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> None:
    """The worker loops (holds, rates, webhooks) with their own database unless one is shared
    (as `kassa up` does)."""
    owned = database is None
    db = database or Database.from_url(settings.db_url, pool_size=3)
    the_clock = clock or DatabaseClock()
    pricing = PricingService(db, the_clock, settings.pricing)
    refresher = threading.Thread(
        target=refresh_rates_forever,
        args=(pricing, settings.pricing.refresh_interval_seconds, stop),
        name="kassa-rates",
        daemon=True,
    )
    refresher.start()
    senders = start_senders(db, the_clock, settings.webhook_settings, stop)
    threads = [refresher]
    if settings.reconciliation.daily:
        reconciler = threading.Thread(
            target=reconcile_daily_forever,
            args=(settings, db, the_clock, stop),
            name="kassa-reconciliation",
            daemon=True,
        )
        reconciler.start()
        threads.append(reconciler)
    if settings.reports.daily:
        reporter = threading.Thread(
            target=daily_reports_forever,
            args=(db, the_clock, settings, stop),
            name="kassa-daily-report",
            daemon=True,
        )
        reporter.start()
        threads.append(reporter)
    try:
        sweep_forever(db, the_clock, settings.hold_sweep_interval_seconds, stop)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=settings.pricing.request_timeout_seconds * 3)
        for sender in senders:
            sender.join(timeout=settings.webhooks.timeout_seconds * 2)
        if owned:
            db.dispose()
