"""One reconciliation run: the four legs, then the breaks stored with their lifecycle.

The database is read in one transaction (legs 1, 2, and what leg 3 and 4 compare with), the
nodes are asked with no transaction open, and the breaks, the run and its event are written in
a last, short transaction. A chain whose node fails is left out of this run (its breaks keep
their status) and said so in the summary's notes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kassa.chains.network import Chain
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.runtime import ChainNotConfigured
from kassa.deposits.settings import ChainsSettings
from kassa.reports.reconciliation import chain_leg, ledger_leg, records_leg, solvency, store
from kassa.reports.reconciliation.chain_reader import ChainReader, build_reader
from kassa.reports.reconciliation.model import Findings, Outcome, Progress, quiet

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        readers: Mapping[Chain, ChainReader],
        *,
        hot_addresses: Mapping[Chain, str] | None = None,
        progress: Progress = quiet,
        listed: int | None = None,
    ) -> None:
        """`listed` caps the open breaks the outcome lists (all of them when None); the table
        keeps every one, and the summary counts them in ``open_break_count``."""
        self.database = database
        self.listed = listed
        self.clock = clock
        self.readers = readers
        self.hot_addresses = dict(hot_addresses or {})
        self.progress = progress

    def run(self, trigger: str = "cli") -> Outcome:
        found = Findings()
        try:
            return self._run(found, trigger)
        finally:
            found.close()

    def _run(self, found: Findings, trigger: str) -> Outcome:
        finals: dict[Chain, int] = {}
        for chain, reader in sorted(self.readers.items()):
            try:
                finals[chain] = reader.final_height()
            except Exception as error:  # a node down must not stop the other legs
                log.warning("reconciliation: the %s node did not answer: %s", chain, error)
                found.notes.append(f"{chain.value}: the node did not answer ({error})")
        with self.database.transaction() as conn:
            started_at = self.clock.now(conn)
            ledger_leg.check(conn, found, self.progress)
            records_leg.check(conn, found, self.progress)
            books = solvency.gather(conn)
            views = {
                chain: chain_leg.gather(conn, chain, final, self.hot_addresses)
                for chain, final in finals.items()
            }
        held: dict[str, int] = defaultdict(int)
        chains: dict[str, Any] = {}
        for chain, view in views.items():
            try:
                seen = chain_leg.observe(self.readers[chain], view, self.progress)
            except Exception as error:
                log.warning("reconciliation: reading %s failed: %s", chain, error)
                found.notes.append(f"{chain.value}: reading the chain failed ({error})")
                continue
            chain_leg.compare(view, seen, found)
            for code, amount in seen.deposit_coins().items():
                held[code] += amount
            for code, amount in seen.hot.items():
                held[code] += amount
            chains[chain.value] = {
                "final_height": view.final_height,
                "deposits_checked_at": view.height,
                "deposit_addresses": len(view.addresses),
                "confirmed_payouts": len(view.payouts),
            }
            if chain is Chain.BTC:
                found.notes.append(
                    "btc: a Bitcoin node keeps no address index, so BTC deposits are checked "
                    "output by output (a payment the watcher never recorded is not seen here)"
                )
        self.progress("solvency: liabilities against the coins held")
        every_chain = bool(self.readers) and len(chains) == len(self.readers)
        if not every_chain:
            found.notes.append(
                "solvency: not every chain was read, so coverage counts only the coins read "
                "and raises no break"
            )
        coverage = solvency.assess(books, held, found, judge=every_chain)
        summary: dict[str, Any] = {
            "trigger": trigger,
            "started_at": started_at.isoformat(),
            "chains": chains,
            "solvency": coverage,
            "notes": found.notes,
            "checked": sorted(f"{leg.value}:{chain or '*'}" for leg, chain in found.checked),
        }
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            outcome = store.apply(
                conn,
                found,
                run_id=uuid.uuid4(),
                started_at=started_at,
                now=now,
                trigger=trigger,
                summary=summary,
            )
            outcome.summary["open_break_count"] = store.count_open(conn)
            outcome.summary["open_breaks"] = store.open_breaks(conn, limit=self.listed)
        self.progress(
            f"done: {outcome.new} new, {outcome.persisting} persisting, {outcome.resolved} "
            f"resolved; coverage {coverage['coverage']}"
        )
        return outcome

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()


def reconciler_for(
    chains: ChainsSettings,
    database: Database,
    clock: Clock,
    progress: Progress | None = None,
    *,
    hot_addresses: Mapping[Chain, str] | None = None,
) -> Reconciler:
    """Reconciliation over the enabled chains whose node is configured, read through the same
    adapters as the watchers; the hot wallets are the ones the payout worker has used (plus
    `hot_addresses`)."""
    readers: dict[Chain, ChainReader] = {}
    for chain in chains.enabled():
        try:
            readers[chain] = build_reader(chains, chain)
        except ChainNotConfigured:
            continue
    return Reconciler(
        database, clock, readers, hot_addresses=hot_addresses, progress=progress or quiet
    )


BREAK_COLUMNS = (
    "class",
    "leg",
    "chain",
    "asset",
    "object_id",
    "expected",
    "actual",
    "difference",
    "status",
    "first_seen_at",
    "last_seen_at",
    "detail",
)


def as_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"


def breaks_csv(breaks: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=BREAK_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in breaks:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in BREAK_COLUMNS})
    return out.getvalue()


def write_files(directory: Path, day: str, summary: Mapping[str, Any]) -> tuple[Path, Path]:
    """``reconciliation-<day>.json`` (the summary with its open breaks) and ``.csv`` (the
    breaks), written whole then moved into place."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = (
        directory / f"reconciliation-{day}.json",
        directory / f"reconciliation-{day}.csv",
    )
    texts = (as_json(summary), breaks_csv(list(summary.get("open_breaks", []))))
    for path, text in zip(paths, texts, strict=True):
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_text(text)
        partial.replace(path)
    return paths
