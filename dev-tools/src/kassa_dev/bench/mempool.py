"""`kassa bench mempool`: from a transaction entering the node's mempool to ``deposit.seen``.

On a fresh local bcoin regtest node and a ganache node with its miner paused, with a SQLite
database, a `MempoolTracker` per chain runs as the watcher runs it (its own thread, every
``--interval`` seconds). The benchmark broadcasts ``--payments`` payments per chain to watched
deposit addresses, one at a time at a random moment of the tracker's cycle, and measures, for
each, the time from the node's accepting it (its ``sendrawtransaction`` /
``eth_sendTransaction`` answering) to the ``deposit.seen`` event being in the outbox, and to
its webhook reaching a local receiver (the webhook sender runs with the product's defaults: it
polls the outbox every second). Side by side, the baseline: the same figures with the tracker's
interval set to the block watcher's default poll (2 s), which is what a tracker run inside the
watcher's tick would give at best. Nothing is mined: the figures are pool-only.

Run it as ``python -m kassa_dev.bench.mempool`` (or ``kassa bench mempool``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import coincurve
from sqlalchemy import select

from kassa.accounts import service as customers
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.mempool import BtcMempool
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    TxOut,
    build_transaction,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.eth.mempool import EthMempool
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain, EthNetwork
from kassa.chains.scanning import MempoolSource
from kassa.clock import DatabaseClock
from kassa.db import Database
from kassa.db.engine import make_engine
from kassa.db.migrate import upgrade
from kassa.deposits import addresses
from kassa.deposits.derive import HdDeriver
from kassa.deposits.mempool import MempoolConfig, MempoolTracker
from kassa.deposits.tables import deposit
from kassa.events.tables import event
from kassa.webhooks import endpoints
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    start_bitcoin_node,
    start_ganache_node,
)

MNEMONIC = "abandon " * 11 + "about"
BASELINE_INTERVAL = 2.0
"""The block watcher's default poll (`[chains.*] poll_interval_seconds`)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kassa bench mempool", description=__doc__)
    parser.add_argument("--payments", type=int, default=10, help="per chain and run")
    parser.add_argument("--interval", type=float, default=0.5, help="the tracker's pass, s")
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="kassa-bench-mempool-"))
    print(f"starting bcoin and ganache in {work}", flush=True)
    with start_bitcoin_node(work / "btc") as btc_node, start_ganache_node(work / "eth") as eth:
        web3 = eth.web3()
        web3.provider.make_request("miner_stop", [])  # type: ignore[arg-type]
        results: dict[tuple[str, float], tuple[list[float], list[float]]] = {}
        for interval in (options.interval, BASELINE_INTERVAL):
            for chain in (Chain.BTC, Chain.ETH):
                database = Database(make_engine(f"sqlite:///{work}/{chain}-{interval}.sqlite3"))
                upgrade(database.engine)
                payees = _addresses(database, chain, options.payments)
                source = _source(chain, btc_node, eth)
                pay = _payer(chain, btc_node, eth)
                results[(chain.value, interval)] = _run(
                    database, source, chain, interval, payees, pay
                )
                database.engine.dispose()
    print(f"\nfrom the node accepting a payment ({options.payments} per run):")
    print(f"{'chain':6} {'tracker':>8} {'to':8} {'median':>8} {'p90':>8} {'max':>8}")
    for (chain_name, interval), (seen, hooks) in results.items():
        for what, seconds in (("seen", seen), ("webhook", hooks)):
            ordered = sorted(seconds)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            print(
                f"{chain_name:6} {interval:>7.1f}s {what:8} {statistics.median(ordered):>7.3f}s "
                f"{p90:>7.3f}s {ordered[-1]:>7.3f}s"
            )
    for chain_name in ("btc", "eth"):
        fast = statistics.median(results[(chain_name, options.interval)][0])
        slow = statistics.median(results[(chain_name, BASELINE_INTERVAL)][0])
        print(f"{chain_name}: seen median {fast:.3f}s vs baseline {slow:.3f}s ({slow / fast:.1f}x)")
    return 0


def _addresses(database: Database, chain: Chain, count: int) -> list[str]:
    network = BtcNetwork.REGTEST if chain is Chain.BTC else EthNetwork(ganache.CHAIN_ID)
    deriver = HdDeriver(parse_account_key(dev_account_xpub(MNEMONIC, network), network))
    clock = DatabaseClock()
    found = []
    with database.transaction() as conn:
        for n in range(count):
            now = clock.now(conn)
            account = customers.create(conn, external_id=f"pool-{n}", now=now, request=None)
            address, _ = addresses.get_or_create(conn, account.id, deriver, now)
            found.append(address.address)
    return found


def _source(chain: Chain, btc: BitcoinNode, eth: GanacheNode) -> MempoolSource:
    if chain is Chain.BTC:
        rpc = BtcRpc(btc.url, btc.api_key)
        return BtcMempool(BtcScanner(rpc, BtcNetwork.REGTEST, confirmations=1))
    return EthMempool(EthRpc(eth.url), usdt_contract=eth.usdt_address)


def _payer(chain: Chain, btc: BitcoinNode, eth: GanacheNode) -> Callable[[str], str]:
    if chain is Chain.ETH:
        web3 = eth.web3()
        payer = ganache.dev_account(0).address

        def pay_eth(address: str) -> str:
            tx = {"from": payer, "to": address, "value": 10**15}
            return "0x" + web3.eth.send_transaction(tx).hex().removeprefix("0x")  # type: ignore[arg-type]

        return pay_eth
    key = coincurve.PrivateKey(devbtc.faucet_key().private_key)
    faucet = p2wpkh_address_for_key(key, BtcNetwork.REGTEST)
    rpc = btc.rpc()
    spent: set[tuple[str, int]] = set()

    def pay_btc(address: str) -> str:
        tip = rpc.height()
        utxo = next(
            c
            for c in sorted(rpc.utxos(faucet.text), key=lambda c: c.height)
            if c.spendable_at(tip) and (c.txid, c.vout) not in spent
        )
        spent.add((utxo.txid, utxo.vout))
        coin = Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey)
        script = parse_btc_address(address, BtcNetwork.REGTEST).script_pubkey
        fee = fee_for_vsize(estimate_vsize(1, [script, faucet.script_pubkey]), 2_000)
        outputs = [TxOut(100_000, script), TxOut(utxo.value - 100_000 - fee, faucet.script_pubkey)]
        signed = build_transaction([coin], outputs).sign([key])
        return rpc.send_raw_transaction(signed.serialize())

    return pay_btc


def _run(
    database: Database,
    source: MempoolSource,
    chain: Chain,
    interval: float,
    payees: list[str],
    pay: Callable[[str], str],
) -> tuple[list[float], list[float]]:
    """Per payment: seconds to ``deposit.seen`` in the outbox, and to its webhook."""
    tracker = MempoolTracker(
        database, DatabaseClock(), source, MempoolConfig(chain, interval_seconds=interval)
    )
    settings = WebhookSettings().with_loopback()
    stop = threading.Event()
    seen, hooks = [], []
    rng = random.Random(len(payees))  # noqa: S311 - timing jitter, not a secret
    with _receiver() as (url, arrivals):
        _endpoint(database, url, settings)
        sender = Sender(database, DatabaseClock(), settings)
        threads = [
            threading.Thread(target=tracker.run_forever, args=(stop,), daemon=True),
            threading.Thread(target=sender.run_forever, args=(stop,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            for address in payees:
                # Arrivals at a random moment of the tracker's cycle, as real payments come.
                time.sleep(rng.uniform(0, interval))
                txid = pay(address)
                accepted = time.monotonic()
                while _seen_event(database, txid) is None:
                    time.sleep(0.01)
                seen.append(time.monotonic() - accepted)
                while txid not in arrivals:
                    time.sleep(0.01)
                hooks.append(arrivals[txid] - accepted)
                print(
                    f"  {chain} every {interval}s: seen {seen[-1]:.3f}s, webhook {hooks[-1]:.3f}s",
                    flush=True,
                )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    return seen, hooks


def _endpoint(database: Database, url: str, settings: WebhookSettings) -> None:
    with database.transaction() as conn:
        endpoints.create(
            conn,
            url=url,
            event_types=["deposit.seen"],
            description="bench receiver",
            customer_account_id=None,
            actor="kassa-bench",
            now=DatabaseClock().now(conn),
            policy=AddressPolicy.of(settings),
        )


@contextmanager
def _receiver() -> Iterator[tuple[str, dict[str, float]]]:
    """A local webhook receiver: txid → when its ``deposit.seen`` arrived (monotonic)."""
    arrivals: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            arrived = time.monotonic()
            txid = json.loads(body).get("data", {}).get("txid")
            if isinstance(txid, str):
                arrivals.setdefault(txid, arrived)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", arrivals
    finally:
        server.shutdown()
        server.server_close()


def _seen_event(database: Database, txid: str) -> object:
    with database.transaction() as conn:
        deposit_id = conn.execute(
            select(deposit.c.id).where(deposit.c.txid == txid)
        ).scalar_one_or_none()
        if deposit_id is None:
            return None
        return conn.execute(
            select(event.c.id).where(
                event.c.subject_id == str(deposit_id), event.c.type == "deposit.seen"
            )
        ).scalar_one_or_none()


if __name__ == "__main__":
    raise SystemExit(main())
