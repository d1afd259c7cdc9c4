"""A `kassa watch` process killed in the middle of a catch-up scan and started again loses
nothing and doubles nothing (docs/domain.md §4: after downtime a watcher resumes from its
checkpoint; nothing is skipped and nothing is counted twice).

The watcher stores blocks in batches (``store_batch_blocks``) and credits deposits in batches
(``credit_batch``); both are small here, so the first watcher is killed in the middle of a
batch of blocks. On PostgreSQL the second is then killed in the middle of its credits, with
some batches of credits committed and others not, and a third one finishes. The first also
shows its backfill progress.

Real everything: twenty signed payments to a customer's watch-only deposit address spread over
sixty blocks, the operator's command (`kassa --config F watch --chain X`) as a subprocess on a
database built by the migrations, rates refreshed beforehand so every block time has one. The
test kills the watcher with SIGKILL while it is part-way through the blocks, starts a new one,
and checks the deposits and the ledger. Two runs cross the chains with the databases (the
watcher's logic is the same for every chain, its storage the same for every database):
bcoin regtest on a SQLite file, and ganache (native ETH and USDT-ERC20) on PostgreSQL.

The kill is made deterministic by freezing the watcher (SIGSTOP) once the checkpoint, read in
read-only snapshots, says it is far enough, and checking again before the SIGKILL: what it
committed cannot change in between. The dead watcher is often in the middle of a transaction;
its work is rolled back.

The dead watcher still holds its lease; ``lease_seconds`` of the chain's settings (a setting,
not a test hook) is short here, so the successor waits it out in seconds instead of a minute;
every deposit it records is dated after the dead lease ran out.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import coincurve
import pytest
from sqlalchemy import Connection, select

from kassa.accounts import service as accounts
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    Transaction,
    TxOut,
    build_transaction,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import NATIVE_POSITION
from kassa.clock import DatabaseClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.model import DepositStatus
from kassa.deposits.runtime import derivers
from kassa.deposits.tables import deposit, watcher_checkpoint
from kassa.ledger.accounts import get_balance
from kassa.ledger.model import TransactionKind
from kassa.ledger.tables import ledger_transaction
from kassa.money import ETH, USD, USDT_ERC20, Money
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode, GanacheNode

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

# Slow (--durations): sixty blocks, a watcher subprocess killed and restarted.
pytestmark = pytest.mark.slow(seconds=20)

LIVENESS_SECONDS = 180
"""How long a watcher process may take to show progress before the test calls it stuck: a
liveness bound, not a speed target. The suite runs in parallel workers on two cores, where a
fresh `kassa watch` process can wait many seconds for CPU before its first block."""

KASSA = Path(sys.executable).with_name("kassa")
DEPOSITS = 20
BLOCKS_PER_DEPOSIT = 3
BLOCKS = DEPOSITS * BLOCKS_PER_DEPOSIT
KILL_AT = 12
"""Kill the first watcher once it has scanned this many blocks (four deposits recorded)."""
STORE_BATCH = 5
"""Blocks per storage transaction: the checkpoint moves in steps of five."""
CREDIT_BATCH = 4
"""Deposits per credit transaction: twenty deposits take five."""
LEASE_SECONDS = 8
"""Longer than `kassa watch` takes to start (about 5 s of imports on an idle machine), so the
restarted process usually finds the dead lease still running and waits it out."""


# --------------------------------------------------------------------------- test helpers


@dataclass(frozen=True)
class Payment:
    key: tuple[str, int]
    """(txid, position): the deposit's identity."""
    amount: int
    """Minor units of the paid asset."""
    micro_usd: int
    """What it is worth at the static demo rates."""


@dataclass
class ChainSide:
    """Test helper: what the scenario needs from one chain."""

    chain: Chain
    settings: dict[str, object]
    """``[chains.<chain>]`` keys pointing `kassa watch` at the test node."""
    height: Callable[[], int]
    mine: Callable[[int], None]
    pay: Callable[[str, int], Payment]
    """Pay the k-th deposit to an address, in a block of its own."""


BTC_NET = BtcNetwork.REGTEST
BTC_FAUCET_KEY = coincurve.PrivateKey(devbtc.faucet_key().private_key)
BTC_FAUCET = p2wpkh_address_for_key(BTC_FAUCET_KEY, BTC_NET)
BTC_ELSEWHERE = p2wpkh_address_for_key(coincurve.PrivateKey(), BTC_NET).text
"""Where the test mines its blocks: nobody's coins, so the faucet's coin list stays short."""


class ChainedPayer:
    """Test helper: pays from one mature faucet coin, each payment spending the previous
    payment's change, so many payments need one coin and no waiting for confirmations."""

    def __init__(self, node: BitcoinNode, budget: int) -> None:
        rpc = node.rpc()
        tip = rpc.height()
        utxo = min(
            (c for c in rpc.utxos(BTC_FAUCET.text) if c.spendable_at(tip) and c.value > budget),
            key=lambda c: c.height,
        )
        self.rpc = rpc
        self.coin = Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey)

    def pay(self, address: str, amount: int) -> Transaction:
        """Broadcast a payment of `amount` satoshi to `address` (vout 0), change at vout 1."""
        script = parse_btc_address(address, BTC_NET).script_pubkey
        fee = fee_for_vsize(estimate_vsize(1, [script, BTC_FAUCET.script_pubkey]), 2_000)
        change = self.coin.amount - amount - fee
        outputs = [TxOut(amount, script), TxOut(change, BTC_FAUCET.script_pubkey)]
        signed = build_transaction([self.coin], outputs).sign([BTC_FAUCET_KEY])
        assert self.rpc.send_raw_transaction(signed.serialize()) == signed.txid
        self.coin = Coin(OutPoint(signed.txid, 1), change, BTC_FAUCET.script_pubkey)
        return signed


def btc_side(node: BitcoinNode) -> ChainSide:
    rpc = node.rpc()
    payer = ChainedPayer(node, budget=10**8)

    def pay(address: str, k: int) -> Payment:
        amount = 10_000 + 1_111 * k
        tx = payer.pay(address, amount)
        rpc.generate(1, BTC_ELSEWHERE)
        # BTC at the static 60 000 USD: 1 sat = 600 micro-USD.
        return Payment((tx.txid, 0), amount, amount * 600)

    def mine(blocks: int) -> None:
        rpc.generate(blocks, BTC_ELSEWHERE)

    return ChainSide(
        Chain.BTC,
        {"rpc_url": node.url, "rpc_api_key": node.api_key, "confirmations": 1},
        rpc.height,
        mine,
        pay,
    )


def eth_side(node: GanacheNode) -> ChainSide:
    w3 = node.web3()
    faucet = node.faucet()

    def pay(address: str, k: int) -> Payment:
        # Instamine: each payment is mined in a block of its own. Native ETH and USDT-ERC20
        # alternate (ETH at the static 3000 USD, USDT at par).
        if k % 2 == 0:
            wei = (k + 1) * 10**15
            txid = faucet.fund(address, Money(wei, ETH))
            return Payment((txid, NATIVE_POSITION), wei, (k + 1) * 3_000_000)
        micro_usdt = (k + 1) * 1_000_000
        txid = faucet.fund(address, Money(micro_usdt, USDT_ERC20))
        return Payment((txid, 0), micro_usdt, micro_usdt)

    def mine(blocks: int) -> None:
        for _ in range(blocks):
            w3.provider.make_request(cast(Any, "evm_mine"), [])

    return ChainSide(
        Chain.ETH,
        {
            "rpc_url": node.url,
            "usdt_contract": node.usdt_address,
            "finality": "confirmations",
            "confirmations": 1,
        },
        lambda: int(w3.eth.block_number),
        mine,
        pay,
    )


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_config(path: Path, *, db_url: str, side: ChainSide, start_height: int) -> Path:
    """The operator's TOML for one watcher on the test node (no devnet state dir)."""
    section = {
        **side.settings,
        "start_height": start_height,
        "poll_interval_seconds": 0.2,
        "lease_seconds": LEASE_SECONDS,
        "store_batch_blocks": STORE_BATCH,
        "credit_batch": CREDIT_BATCH,
        "prefetch_blocks": 10,  # killed while a thread fetches ahead too
    }
    lines = [
        "devnet = false",
        f"data_dir = {toml_value(path.parent)}",
        f"database_url = {toml_value(db_url)}",
        "",
        "[pricing]",
        # bcoin dates regtest blocks up to a minute or so ahead of the wall clock.
        "history_tolerance_seconds = 3600",
    ]
    for chain in Chain:
        lines += ["", f"[chains.{chain.value}]"]
        if chain is side.chain:
            lines += [f"{key} = {toml_value(value)}" for key, value in section.items()]
        else:
            lines.append("enabled = false")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class WatchProcess:
    """Test helper: one `kassa watch` subprocess, its output in a file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, config: Path, chain: Chain, name: str) -> WatchProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KASSA_")}
        log = config.with_name(f"{name}.log")
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own console script, fixed argv
                [str(KASSA), "--config", str(config), "watch", "--chain", chain.value],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return cls(process, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the watcher exited with {self.process.returncode}:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def processes() -> Iterator[list[WatchProcess]]:
    started: list[WatchProcess] = []
    yield started
    for watch in started:
        watch.stop()


def deposit_credits(db: Database) -> collections.Counter[uuid.UUID]:
    """How many ledger deposit transactions name each deposit."""
    with db.transaction() as conn:
        rows = conn.execute(
            select(ledger_transaction.c.metadata_json).where(
                ledger_transaction.c.kind == TransactionKind.DEPOSIT.value
            )
        ).all()
    return collections.Counter(uuid.UUID(json.loads(row[0])["deposit_id"]) for row in rows)


def credited_count(conn: Connection, customer_id: uuid.UUID) -> int:
    found = records.for_account(conn, customer_id)
    return sum(d.status is DepositStatus.CREDITED for d in found)


def kill_when(
    db: Database, chain: Chain, watch: WatchProcess, ready: Callable[[Connection, int | None], bool]
) -> int:
    """SIGKILL the watcher as soon as `ready` holds; returns the checkpoint height then.

    The checkpoint is polled in read-only snapshots (no lock: a watcher that fetches the next
    blocks while it stores the last ones commits batch after batch and would win every race
    for a lock). Once `ready` holds, the watcher is frozen with SIGSTOP, wherever it is (often
    inside a transaction, which the kill rolls back), `ready` is checked again on what it had
    committed by then, which can no longer change, and it is killed."""
    deadline = time.monotonic() + LIVENESS_SECONDS
    while True:
        watch.check_alive()
        assert time.monotonic() < deadline, f"the watcher made no progress:\n{watch.output()}"
        with db.read_only() as conn:
            height = _checkpoint_height(conn, chain)
            if height is not None and ready(conn, height):
                watch.process.send_signal(signal.SIGSTOP)
                break
        # Slow while the process is still importing (the polls would take CPU from it), fast
        # once it scans: a block takes it a few milliseconds.
        time.sleep(0.05 if height is None else 0.005)
    with db.read_only() as conn:
        height = _checkpoint_height(conn, chain)
        assert height is not None and ready(conn, height)
    watch.process.send_signal(signal.SIGKILL)
    watch.process.wait(10)
    return height


def _checkpoint_height(conn: Connection, chain: Chain) -> int | None:
    height = conn.execute(
        select(watcher_checkpoint.c.height).where(watcher_checkpoint.c.chain == chain.value)
    ).scalar_one_or_none()
    return None if height is None else int(height)


# --------------------------------------------------------------------------- the scenario


def kill_and_restart(
    db: Database,
    side: ChainSide,
    workdir: Path,
    processes: list[WatchProcess],
    *,
    kill_mid_credit: bool,
) -> None:
    chain = side.chain
    start = side.height() + 1
    config = write_config(
        workdir / "kassa.toml",
        db_url=db.engine.url.render_as_string(hide_password=False),
        side=side,
        start_height=start,
    )
    settings = load_settings(config)
    clock = DatabaseClock()
    with db.transaction() as conn:
        now = clock.now(conn)
        customer = accounts.create(conn, external_id="catch-up", now=now, request=None)
        address, _ = addresses.get_or_create(
            conn, customer.id, derivers(settings.chains)[chain], now
        )
    # What the worker would have stored while the watcher was down: rates at the block times.
    refreshed = PricingService(db, clock, settings.pricing).refresh()
    assert {Symbol.BTC, Symbol.ETH, Symbol.USDT} <= refreshed.samples.keys()

    # Twenty payments, each in its own block with two empty ones after it: sixty blocks.
    sent: dict[tuple[str, int], Payment] = {}
    for k in range(DEPOSITS):
        payment = side.pay(address.address, k)
        sent[payment.key] = payment
        side.mine(BLOCKS_PER_DEPOSIT - 1)
    last = side.height()
    assert last == start + BLOCKS - 1

    first = WatchProcess.start(config, chain, "watch-1")
    processes.append(first)
    killed_at = kill_when(
        db, chain, first, lambda conn, height: height is not None and height >= start + KILL_AT - 1
    )
    assert killed_at < last, "the watcher had scanned every block before it could be killed"
    # The checkpoint only ever stood at the end of a batch of blocks.
    assert (killed_at - start + 1) % STORE_BATCH == 0
    # A catch-up of sixty blocks says so, with its rate and the time left.
    assert f"{chain} backfill: {BLOCKS} block(s) behind the node" in first.output()
    assert "blocks/s, about" in first.output() and " left" in first.output()

    with db.transaction() as conn:
        dead = conn.execute(select(watcher_checkpoint)).one()
        before = records.for_account(conn, customer.id)
    assert dead.lease_owner is not None and dead.lease_until is not None  # never released
    assert dead.height == killed_at  # the block in flight, if any, left nothing behind
    # Part-way: the payments of the scanned blocks are recorded; a full batch of final ones
    # may have been credited during the scan, each once.
    assert 0 < len(before) < DEPOSITS
    assert {d.block_height for d in before} <= set(range(start, killed_at + 1))
    assert all(d.credit_count <= 1 for d in before)
    credited_first = sum(d.status is DepositStatus.CREDITED for d in before)

    if kill_mid_credit:
        # The second watcher is killed between two of its batches of credits.
        second = WatchProcess.start(config, chain, "watch-2")
        processes.append(second)
        kill_when(
            db, chain, second, lambda conn, _: credited_count(conn, customer.id) > credited_first
        )
        with db.transaction() as conn:
            part = credited_count(conn, customer.id)
        assert credited_first < part < DEPOSITS, part

    third = WatchProcess.start(config, chain, "watch-3")
    processes.append(third)
    deadline = time.monotonic() + LIVENESS_SECONDS
    while True:
        third.check_alive()
        with db.transaction() as conn:
            found = records.for_account(conn, customer.id)
        if len(found) == DEPOSITS and all(d.status is DepositStatus.CREDITED for d in found):
            break
        assert time.monotonic() < deadline, f"not all credited in time:\n{third.output()}"
        time.sleep(0.1)
    time.sleep(0.6)  # a few more ticks: nothing may change any more
    third.process.send_signal(signal.SIGTERM)
    assert third.process.wait(20) == 0, third.output()

    with db.transaction() as conn:
        after = records.for_account(conn, customer.id)
        balance = get_balance(conn, customer.ledger_account_id).posted
        rows = conn.execute(select(deposit.c.id, deposit.c.created_at)).all()
        final = conn.execute(select(watcher_checkpoint)).one()
    # Nothing lost, nothing doubled: one deposit per payment, with the amount paid.
    assert {(d.txid, d.position): d.amount for d in after} == {
        key: p.amount for key, p in sent.items()
    }
    assert len(rows) == DEPOSITS
    assert all(d.status is DepositStatus.CREDITED and d.credit_count == 1 for d in after)
    assert {(d.txid, d.position): d.usd_amount for d in after} == {
        key: p.micro_usd for key, p in sent.items()
    }
    assert deposit_credits(db) == collections.Counter({d.id: 1 for d in after})
    assert len({d.credit_transaction_id for d in after}) == DEPOSITS
    assert balance == Money(sum(p.micro_usd for p in sent.values()), USD)
    # The deposits recorded before the kill are the same rows, untouched by the restart.
    assert {d.id for d in before} <= {d.id for d in after}
    # The successor respected the dead watcher's lease: it recorded nothing before it ran out.
    earlier = {d.id for d in before}
    recorded_later = [created for deposit_id, created in rows if deposit_id not in earlier]
    assert recorded_later and min(recorded_later) >= dead.lease_until
    assert final.height >= last and final.lease_owner is None  # stopped cleanly: released


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_btc_watcher_killed_mid_scan_and_restarted_loses_nothing_and_doubles_nothing(
    databases: DatabaseFactory,
    bitcoin_node: BitcoinNode,
    tmp_path: Path,
    processes: list[WatchProcess],
) -> None:
    side = btc_side(bitcoin_node)
    kill_and_restart(databases.new(pool_size=2), side, tmp_path, processes, kill_mid_credit=False)


@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_an_eth_watcher_killed_mid_scan_then_mid_credit_loses_nothing_and_doubles_nothing(
    databases: DatabaseFactory,
    ganache_node: GanacheNode,
    tmp_path: Path,
    processes: list[WatchProcess],
) -> None:
    side = eth_side(ganache_node)
    kill_and_restart(databases.new(pool_size=2), side, tmp_path, processes, kill_mid_credit=True)
