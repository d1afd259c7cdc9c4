"""The composition root: every long-lived part of Kassa is built here, from `Settings`.

The API app (`kassa.api.app.create_app`), the `kassa` commands and the benchmarks all get their
clock, pricing service, policy, payout service, watchers and workers from this module, so each is
built one way only. Nothing here holds state of its own beyond what it builds: a `Services` is
made per process (or per app) and handed around.

The devnet is a plug-in (`kassa.plugins.devnet`): with ``devnet = true`` the clock is the
development tools' scenario clock and the chains' endpoints come from the running local chains;
otherwise the database's clock and the configured nodes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from kassa.clock import Clock, DatabaseClock
from kassa.config import Settings
from kassa.db import Database
from kassa.pricing.service import PricingService

if TYPE_CHECKING:
    from kassa.chains.network import Chain
    from kassa.deposits.derive import HdDeriver
    from kassa.deposits.watcher import Watcher
    from kassa.payouts.requests import Payouts
    from kassa.payouts.worker import PayoutWorker
    from kassa.policy import Policy
    from kassa.reports.reconciliation.run import Reconciler

Echo = Callable[[str], None]


def clock_of(settings: Settings) -> Clock:
    """The devnet runs on the scenario clock (an operator may move it); else the database's."""
    if settings.devnet:
        from kassa.plugins import devnet

        return devnet().clock()
    return DatabaseClock()


def with_devnet(
    settings: Settings, echo: Echo, *, start: bool = False, hot_wallets: bool = False
) -> Settings:
    """On the devnet, `settings` with the local chains' endpoints and development keys filled in
    (started first with ``start``; payout hot wallets unlocked with ``hot_wallets``); off it,
    `settings` unchanged. Raises `kassa.plugins.DevnetUnavailable`."""
    if not settings.devnet:
        return settings
    from kassa.plugins import devnet

    chains = devnet()
    if start:
        chains.up(settings, echo)
    return chains.connect(settings, echo, hot_wallets=hot_wallets)


def reconciler_of(
    settings: Settings,
    database: Database,
    clock: Clock,
    progress: Echo | None = None,
    *,
    hot_addresses: dict[Chain, str] | None = None,
) -> Reconciler:
    """Reconciliation over the enabled chains whose node is configured."""
    from kassa.reports.reconciliation.run import reconciler_for

    return reconciler_for(settings.chains, database, clock, progress, hot_addresses=hot_addresses)


def pricing_of(settings: Settings, database: Database, clock: Clock) -> PricingService:
    return PricingService(database, clock, settings.pricing)


def policy_of(settings: Settings) -> Policy:
    """The refund and withdrawal policy: the configured preset or file with its overrides."""
    return settings.policy.load()


class Services:
    """Kassa's parts for one process, built on first use from one settings, database and clock."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        clock: Clock,
        *,
        pricing: PricingService | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        if pricing is not None:
            self.pricing = pricing

    @cached_property
    def pricing(self) -> PricingService:
        return pricing_of(self.settings, self.database, self.clock)

    @cached_property
    def policy(self) -> Policy:
        return policy_of(self.settings)

    @cached_property
    def payouts(self) -> Payouts:
        """Refund and withdrawal requests under the configured policy."""
        from kassa.payouts.fee_quotes import FeeQuotes
        from kassa.payouts.requests import Payouts

        return Payouts(
            database=self.database,
            clock=self.clock,
            pricing=self.pricing,
            policy=self.policy,
            settings=self.settings.payouts,
            chains=self.settings.chains,
            fee_quotes=FeeQuotes(self.settings.payouts, self.settings.chains),
        )

    def close(self) -> None:
        """Close the node clients the parts built here opened (live fee quotes); the database
        stays the caller's to dispose."""
        payouts = self.__dict__.get("payouts")
        if payouts is not None and payouts.fee_quotes is not None:
            payouts.fee_quotes.close()

    @cached_property
    def derivers(self) -> dict[Chain, HdDeriver]:
        """Deposit-address derivers of the enabled chains; a bad key fails here, at start."""
        from kassa.deposits.runtime import derivers

        return derivers(self.settings.chains)

    def watcher(self, chain: Chain) -> Watcher:
        """The chain's deposit watcher (raises `deposits.runtime.ChainNotConfigured`)."""
        from kassa.deposits.runtime import build_watcher

        return build_watcher(self.settings.chains, chain, self.database, self.clock, self.pricing)

    def payout_worker(
        self, *, worker_id: str | None = None
    ) -> tuple[PayoutWorker, dict[Chain, str]]:
        """The payout worker with every rail that can be built; the other chains and why not."""
        from kassa.payouts.runtime import build_rails, build_worker
        from kassa.payouts.signer import load_local_signer

        settings = self.settings
        signer = load_local_signer(
            settings.signer, settings.chains.enabled(), data_dir=settings.data_dir
        )
        rails, skipped = build_rails(settings.chains, settings.payouts, signer)
        worker = build_worker(
            self.database, self.clock, self.pricing, settings.payouts, rails, worker_id=worker_id
        )
        return worker, skipped

    def start_background(self, stop: threading.Event, echo: Echo) -> list[threading.Thread]:
        """Everything but the API, each in a thread until `stop`: the worker (hold expiry, rate
        refresh), one watcher per enabled chain whose node is known, and the payout worker.
        Says which chains are watched and pay out, and why the others do not."""
        from kassa.deposits.runtime import ChainNotConfigured
        from kassa.worker import run_worker

        threads = [
            threading.Thread(
                target=run_worker,
                args=(self.settings, stop),
                kwargs={"database": self.database, "clock": self.clock},
                name="kassa-worker",
                daemon=True,
            )
        ]
        for chain in self.settings.chains.enabled():
            try:
                watcher = self.watcher(chain)
            except ChainNotConfigured as error:
                echo(f"not watching {chain}: {error}")
                continue
            threads.append(
                threading.Thread(
                    target=watcher.run_forever,
                    args=(stop, self.settings.chains.of(chain).poll_interval_seconds),
                    name=f"kassa-watch-{chain}",
                    daemon=True,
                )
            )
        worker, skipped = self.payout_worker()
        for chain, reason in skipped.items():
            echo(f"not paying out on {chain}: {reason}")
        for chain, rail in worker.rails.items():
            echo(f"paying out on {chain} from {rail.hot_address()}")
        threads.append(
            threading.Thread(
                target=worker.run_forever, args=(stop,), name="kassa-payouts", daemon=True
            )
        )
        for thread in threads:
            thread.start()
        return threads
