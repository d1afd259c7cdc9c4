"""Concurrency: two payout workers on one PostgreSQL database share 40 approved payouts, on
the real local chains, while blocks are mined; each payout is paid exactly once.

Each worker is what `kassa payout-worker` runs: its own rail and node client, the same hot
key, claims with a lease under SKIP LOCKED. They run in threads of this process, truly at
the same time (the work is network and database I/O), in `kassa_dev.bench._payouts_run.WorkerPool`
(which `kassa bench payouts` runs too); the miner moves the test's clock a second per block.
What is checked comes from the chain itself, not from Kassa's tables: every block mined
during the test is read, and each destination must have received exactly one transfer, of
exactly the net amount recorded. Then the database: one confirmed transaction per payout, no
other spend, and (ETH) a nonce per transaction without a gap.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain
from kassa.deposits.addresses import match_key
from kassa.money import USD, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.tables import payout_nonce, payout_tx, payout_tx_line
from kassa_dev.bench._payouts_run import WorkerPool, chain_tip, paid_on_chain

# Not traced by coverage (pytest-cov's `no_cover`): forty payouts a chain through code the payout
# tests measure; tracing it cost CPU the whole suite shares.
pytestmark = pytest.mark.no_cover

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import DatabaseFactory
    from tests.payouts.conftest import Stage

PAYOUTS = 40
"""Enough for four claims of `batch_size` 10, so each worker claims again while the other holds
claims, signs and broadcasts (SKIP LOCKED, the shared ETH nonce and the BTC coin reservations
contended on every round, as with 100); BTC makes at least eight transactions (batches of at
most five), more than its ten coins, so batches also spend change still in flight."""
DEADLINE_SECONDS = 240

# Per chain: the payout assets (alternating), the node fixture, and worker settings. ETH mixes
# ether and USDT-ERC20 so both share one nonce sequence; BTC batches (several payouts per
# transaction, coins reserved per batch); TRON pays USDT-TRC20 (the default policy pays no TRX).
CASES: dict[Chain, tuple[tuple[str, ...], str, dict[str, Any]]] = {
    Chain.ETH: (("ETH", "USDT-ERC20"), "ganache_node", {}),
    Chain.BTC: (("BTC",), "bitcoin_node", {"btc": {"batching": True, "max_batch": 5}}),
    Chain.TRON: (("USDT-TRC20",), "tron_sim", {}),
}


# Slow: seconds each on a quiet machine (--durations), for the longest-first order under xdist.
SECONDS = {Chain.ETH: 15, Chain.TRON: 12, Chain.BTC: 8}


@pytest.mark.parametrize(
    "chain",
    [pytest.param(c, id=c.value, marks=pytest.mark.slow(seconds=SECONDS[c])) for c in CASES],
)
def test_two_workers_pay_each_of_40_payouts_exactly_once(
    chain: Chain,
    pg_databases: DatabaseFactory,
    make_stage: Callable[..., Stage],
    request: pytest.FixtureRequest,
) -> None:
    coins, node_fixture, overrides = CASES[chain]
    stage = make_stage(
        pg_databases.new(),
        chain,
        request.getfixturevalue(node_fixture),
        payout_overrides={
            "review": {
                "new_destinations": False,
                "max_count_per_day": 1000,
                "max_usd_per_day": "100000.00",
            },
            "worker": {"batch_size": 10, "retry_seconds": 1},
            **overrides,
        },
    )
    if chain is Chain.BTC:
        # Several coins in the hot wallet, so the two workers' batches can be in flight at once.
        for _ in range(9):
            stage.faucet_fund(stage.rail.hot_address(), Money.parse("0.2", asset("BTC")))
        stage.mine(2)
    start_height = chain_tip(stage.chains, chain)

    customer = stage.customer("3000.00")
    requests = [
        stage.withdraw(customer, "21.00", coins[n % len(coins)], stage.fresh_address())
        for n in range(PAYOUTS)
    ]
    assert all(r.status is RequestStatus.APPROVED for r in requests)
    ids = [r.id for r in requests]

    with WorkerPool(
        stage.db,
        stage.clock,
        stage.pricing,
        stage.settings,
        stage.chains,
        stage.signer,
        chain,
        count=2,
        mine=stage.mine,
        mine_every=0.25,
        on_block=lambda: stage.clock.advance(timedelta(seconds=1)),
    ) as pool:
        waited = pool.wait(ids, timeout_seconds=DEADLINE_SECONDS)
    assert not pool.errors, pool.errors
    assert waited.statuses == {RequestStatus.CONFIRMED.value: PAYOUTS}
    # Both workers signed: the payouts really were shared between them.
    assert all(pool.signed[w.worker_id] > 0 for w in pool.workers), dict(pool.signed)

    # The chain: each destination got exactly one transfer of exactly the recorded net amount.
    done_requests = [stage.request(r.id) for r in requests]
    paid = paid_on_chain(stage.chains, chain, start_height, [d.destination for d in done_requests])
    for done in done_requests:
        key = (match_key(chain, done.destination), done.net_native.asset.code.value)
        assert paid[key] == [done.net_native.amount], (done.destination, paid[key])

    # The database: one confirmed transaction line per payout; nothing else was ever signed.
    with stage.db.transaction() as conn:
        lines = conn.execute(
            select(payout_tx_line.c.request_id, payout_tx.c.status).join(
                payout_tx, payout_tx.c.id == payout_tx_line.c.tx_id
            )
        ).all()
        tx_count = conn.execute(select(func.count()).select_from(payout_tx)).scalar_one()
        nonce = conn.execute(select(payout_nonce.c.next_nonce)).scalars().all()
    per_request: dict[uuid.UUID, list[str]] = defaultdict(list)
    for line in lines:
        per_request[line.request_id].append(line.status)
    assert sorted(per_request) == sorted(ids)
    assert {str(i): s for i, s in per_request.items() if s != ["confirmed"]} == {}
    if chain is Chain.BTC:
        assert tx_count < PAYOUTS  # batched
    else:
        assert tx_count == PAYOUTS
    if chain is Chain.ETH:
        # Gapless nonces: the hot address sent exactly one transaction per payout.
        with EthRpc(stage.chains.eth.rpc_url or "") as rpc:
            sent = rpc.get_transaction_count(stage.rail.hot_address(), "latest")
        assert nonce == [sent]
        assert sent == PAYOUTS  # the hot key is fresh: it sent nothing else

    # The ledger: the customer paid 40 × $21, $5 each is revenue, clearing is empty.
    assert stage.available(customer) == Money.parse("2160.00", USD)
    assert stage.account_balance("house:revenue:USD") == PAYOUTS * 5_000_000
    assert stage.account_balance("clearing:payouts:USD") == 0
