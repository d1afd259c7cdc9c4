"""The payout worker: approved refunds and withdrawals reach the chain exactly once.

One round (`PayoutWorker.run_once`) does two things:

1. **Advance what is in flight** (`inflight`). Every stored transaction that is signed or
   broadcast is asked about: a signed one the node does not know is (re)broadcast with the
   *same bytes*; a final one is settled (hold captured, payout and actual fee booked); a failed
   one (a reverted token transfer) fails its payouts and books the fee that was burnt; a dead
   one (proven never to be included) frees its spend identity and sends its payouts back to
   ``approved`` to be signed anew — but only when no other version of the same spend (a fee
   bump) is still alive; a stuck one gets a replacement with a higher fee that spends the same
   identity (same ETH nonce, same BTC inputs).
2. **Execute approved payouts** (`execution`). Claim a batch of approved requests with a lease
   (`claims`; SKIP LOCKED on PostgreSQL, so several workers never claim the same row); for each
   (or, for BTC with batching, each group) estimate the fee from the chain, price it at a
   payout-time rate lock, re-price the net amount under the policy's network-fee mode
   (`pricing`), fail cleanly when nothing or only dust would be left, check the hot wallet
   (short → the payout *waits* with the reason), then in one database transaction allocate the
   spend identity, sign, and store the signed bytes with the request moved to ``signed``
   (`signing`). Only after that commit is anything broadcast (`broadcast`).

Why this is exactly-once: a payout is signed only while its request row is ``approved`` and
claimed by this worker (checked under a row lock in the signing transaction); the signed bytes
and spend identity are committed before the broadcast; after a crash the next round finds the
``signed``/``broadcast`` transaction and rebroadcasts the same bytes (a node treats them as the
same transaction); something new is signed only after the chain proves the old one dead.

Money: see `settlement` (the hold, ``clearing:payouts:USD`` and the network-fee account).
Crash points for the fault-injection tests: see `context` (``KASSA_FAULT_CRASH_AT``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from kassa.assets import Chain
from kassa.clock import Clock
from kassa.db import Database
from kassa.payouts import hot_balances
from kassa.payouts.rails.base import Rail
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.worker import claims, execution, inflight
from kassa.payouts.worker.context import WorkerContext, crash_point_from_env
from kassa.payouts.worker.report import RoundReport
from kassa.pricing.service import PricingService
from kassa.telemetry.metrics import timed_round

log = logging.getLogger(__name__)


@dataclass
class PayoutWorker:
    """Runs payout rounds; see the module docstring. One instance per worker process."""

    database: Database
    clock: Clock
    pricing: PricingService
    settings: PayoutSettings
    rails: Mapping[Chain, Rail]
    worker_id: str = field(default_factory=lambda: f"payout-worker:{uuid.uuid4().hex[:12]}")
    crash_at: str | None = field(default_factory=crash_point_from_env)

    @property
    def _context(self) -> WorkerContext:
        return WorkerContext(
            self.database, self.clock, self.settings, self.worker_id, self.crash_at
        )

    def run_once(self, stop: threading.Event | None = None) -> RoundReport:
        """One round; once ``stop`` is set it starts no further payout (what is in flight is
        still advanced: that only asks the chain and books what it says)."""
        report = RoundReport()
        self.advance_in_flight(report)
        self.execute_approved(report, stop)
        self.check_hot_wallets()
        return report

    def check_hot_wallets(self) -> None:
        """``hot_wallet.low`` / ``recovered`` for the assets `[payouts] hot_wallet_low` lists."""
        thresholds = self.settings.hot_wallet_thresholds()
        if thresholds:
            hot_balances.check(self.database, self.clock, thresholds, self.rails)

    def run_forever(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` (SIGTERM): the payout in hand is finished, the rest of the
        round's claims are released, so another worker can pay them at once rather than after
        their lease (`claims.release_all`)."""
        interval = self.settings.worker.poll_interval_seconds
        try:
            while not stop.is_set():
                try:
                    with timed_round("payout_round") as this_round:
                        report = self.run_once(stop)
                        if report.errors:
                            this_round.failed()
                except Exception:  # a round must never kill the worker; the next one retries
                    log.exception("payout round failed")
                    report = RoundReport()
                if report.idle:
                    stop.wait(interval)
        finally:
            try:
                claims.release_all(self._context)
            except Exception:  # the database may be what is going away
                log.exception("could not release this worker's claims; they lapse with their lease")

    def advance_in_flight(self, report: RoundReport) -> None:
        inflight.advance_in_flight(self._context, self.rails, report)

    def execute_approved(self, report: RoundReport, stop: threading.Event | None = None) -> None:
        execution.execute_approved(self._context, self.pricing, self.rails, report, stop)
