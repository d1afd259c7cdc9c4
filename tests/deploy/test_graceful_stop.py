"""SIGTERM (what `docker compose stop` sends) on the roles that hold leases, as real processes
on PostgreSQL and the local Ethereum node (docs/operations.md, Stopping).

- A watcher gives its chain's lease back on the way out, so a standby watcher of the same chain
  takes over at its next tick, not after the lease (set to 10 minutes here) runs out.
- A payout worker stopped mid-round finishes the payout in hand, starts no other, and releases
  the rest of its claims: another worker pays them at once instead of after their lease.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import DatabaseFactory
from tests.deploy.roles import Role, base_env, running, wait_for
from tests.payouts.conftest import Stage

from kassa.chains.network import Chain
from kassa.db import Database
from kassa.deposits.tables import watcher_checkpoint
from kassa.payouts.model import RequestStatus
from kassa.payouts.tables import payout_request
from kassa_dev.devnet.testing import GanacheNode, free_port

LONG_LEASE = "600"
"""Leases far longer than any wait below: a takeover seen here was not a lapsed lease."""


def _eth_env(database: Database, node: GanacheNode, rpc_url: str, data: Path) -> dict[str, str]:
    env = base_env(database.engine.url.render_as_string(hide_password=False), data)
    return env | {
        "KASSA_CHAINS__BTC__ENABLED": "false",
        "KASSA_CHAINS__TRON__ENABLED": "false",
        "KASSA_CHAINS__ETH__RPC_URL": rpc_url,
        "KASSA_CHAINS__ETH__USDT_CONTRACT": node.usdt_address,
        "KASSA_CHAINS__ETH__POLL_INTERVAL_SECONDS": "0.2",
        "KASSA_CHAINS__ETH__LEASE_SECONDS": LONG_LEASE,
    }


def _lease_owner(database: Database) -> str | None:
    with database.transaction() as conn:
        owner = conn.execute(
            select(watcher_checkpoint.c.lease_owner).where(watcher_checkpoint.c.chain == "eth")
        ).scalar()
    return None if owner is None else str(owner)


@pytest.mark.slow(seconds=17)
@pytest.mark.chain
@pytest.mark.postgres
def test_a_stopped_watcher_hands_its_chain_to_the_standby_at_once(
    pg_databases: DatabaseFactory, ganache_node: GanacheNode, tmp_path: Path
) -> None:
    database = pg_databases.new(pool_size=1)
    env = _eth_env(database, ganache_node, ganache_node.url, tmp_path / "data")
    with running(env, tmp_path) as roles:
        active = roles.start("watch-a", "watch", "--chain", "eth", metrics_port=free_port())
        # Its ticks are in its metrics (`--metrics-port`) once it holds the chain.
        ticks = ("kassa_worker_round_duration_seconds_count", (("loop", "watch_eth"),))
        wait_for(
            "the first watcher's lease and ticks",
            lambda: _lease_owner(database) is not None and bool(active.scrape().get(ticks)),
            [active],
        )
        first = _lease_owner(database)
        standby = roles.start("watch-b", "watch", "--chain", "eth")
        wait_for(
            "the standby to find the chain taken",
            lambda: f"the eth watcher {first} holds the lease" in standby.output(),
            [active, standby],
        )
        assert _lease_owner(database) == first

        assert active.stop() == 0
        # The standby holds the chain now, with the first watcher's lease (10 minutes) far
        # from over: the first one gave it back.
        wait_for(
            "the standby's takeover",
            lambda: _lease_owner(database) not in (None, first),
            [standby],
        )
        standby.check_alive()
        assert standby.stop() == 0
    assert _lease_owner(database) is None  # the standby gave it back too


class _GatedNode:
    """A JSON-RPC proxy in front of the node that can hold requests: a payout worker whose
    node call is held is in the middle of a payout for as long as the test wants."""

    def __init__(self, upstream: str) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.held = 0
        gated = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not gated.gate.is_set():
                    gated.held += 1
                    gated.gate.wait()
                answer = httpx.post(
                    upstream, content=body, headers={"Content-Type": "application/json"}
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                """A worker that exits drops its held connection: not the test's business."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated_node(ganache_node: GanacheNode) -> Iterator[_GatedNode]:
    node = _GatedNode(ganache_node.url)
    yield node
    node.close()


def _claims(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    with database.transaction() as conn:
        rows = conn.execute(
            select(
                payout_request.c.id,
                payout_request.c.status,
                payout_request.c.claimed_by,
                payout_request.c.lease_until,
                payout_request.c.next_attempt_at,
            ).where(payout_request.c.id.in_(ids))
        ).all()
    for row in rows:
        if row.claimed_by is None:
            assert row.lease_until is None and row.next_attempt_at is None, row
    return {row.id: (str(row.status), row.claimed_by) for row in rows}


@pytest.mark.slow(seconds=17)
@pytest.mark.chain
@pytest.mark.postgres
def test_a_payout_worker_stopped_mid_round_releases_what_it_did_not_start(
    pg_databases: DatabaseFactory,
    ganache_node: GanacheNode,
    gated_node: _GatedNode,
    tmp_path: Path,
) -> None:
    database = pg_databases.new(pool_size=3)
    stage = Stage(database, Chain.ETH, ganache_node)
    try:
        stage.fund_hot()  # 10 ETH
        env = _eth_env(database, ganache_node, gated_node.url, tmp_path / "data") | {
            "KASSA_CHAINS__ETH__FINALITY": "confirmations",
            "KASSA_CHAINS__ETH__CONFIRMATIONS": "1",
            "KASSA_PRICING__HISTORY_TOLERANCE_SECONDS": "3600",
            "KASSA_SIGNER_ETH_KEY": stage.key.secret.hex(),
            "KASSA_PAYOUTS__WORKER__POLL_INTERVAL_SECONDS": "0.2",
            "KASSA_PAYOUTS__WORKER__LEASE_SECONDS": LONG_LEASE,
            # A held node call must not time out: the payout would wait instead of finishing.
            "KASSA_PAYOUTS__WORKER__NODE_TIMEOUT_SECONDS": "120",
            "KASSA_PAYOUTS__FEE_QUOTES__TIMEOUT_SECONDS": "60",
            "KASSA_PAYOUTS__HOT_WALLET_LOW": '{"ETH": "1.5"}',
        }
        with running(env, tmp_path) as roles:
            worker = roles.start(
                "payout-worker", "payout-worker", "--name", "w-stop", metrics_port=free_port()
            )
            _ready(worker)
            # Frozen while both payouts are made, so that one round claims both; from then on
            # its node calls wait, so the payout it starts stays in hand.
            worker.process.send_signal(signal.SIGSTOP)
            customer = stage.customer("100.00")
            ids = [
                stage.withdraw(customer, "20.00", "ETH", stage.fresh_address()).id for _ in range(2)
            ]
            gated_node.gate.clear()
            worker.process.send_signal(signal.SIGCONT)
            wait_for(
                "both payouts claimed and the first one's node call held",
                lambda: (
                    gated_node.held > 0
                    and all(claim == "w-stop" for _status, claim in _claims(database, ids).values())
                ),
                [worker],
            )
            worker.process.send_signal(signal.SIGTERM)
            # The handler runs as soon as the signal interrupts the held read; only then may
            # the node answer (otherwise the round could run on before the stop is seen).
            time.sleep(1.0)
            gated_node.gate.set()
            assert worker.stop() == 0, worker.output()
        claims = _claims(database, ids)
        # The payout in hand (either: they were made at the same instant) was finished, signed
        # and broadcast; the other was not started and is free for any worker now, without
        # waiting for the 10-minute lease.
        finished = [i for i in ids if claims[i][0] in ("signed", "broadcast")]
        assert len(finished) == 1, claims
        (untouched,) = set(ids) - set(finished)
        assert claims[untouched] == ("approved", None), claims
        assert "released 1 claimed payout(s) on the way out" in worker.output()
        stage.pay(stage.worker("next"), *ids)
        assert {stage.status(i) for i in ids} == {RequestStatus.CONFIRMED}
    finally:
        stage.close()


def _ready(worker: Role) -> None:
    """The worker has run a round and serves the hot wallet's balance as its node reports it,
    with its threshold (its metrics listener, `--metrics-port`)."""

    def ready() -> bool:
        seen = worker.scrape()
        rounds = seen.get(
            ("kassa_worker_round_duration_seconds_count", (("loop", "payout_round"),))
        )
        balance = seen.get(("kassa_hot_wallet_balance", (("asset", "ETH"), ("chain", "eth"))))
        threshold = seen.get(
            ("kassa_hot_wallet_low_threshold", (("asset", "ETH"), ("chain", "eth")))
        )
        return bool(rounds) and balance == 10.0 and threshold == 1.5

    wait_for("the payout worker's first round in its metrics", ready, [worker])
