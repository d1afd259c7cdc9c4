"""Crash tests: a worker killed mid-payout, restarted, pays exactly once (real ganache chain).

The crash is a real process death: `kassa payout-worker --once` runs in a subprocess with
``KASSA_FAULT_CRASH_AT`` set, and exits on the spot (``os._exit``, no cleanup) right after
the signed bytes were stored, right after the broadcast was recorded, or right before the
confirmation would be recorded. Another worker then finishes the job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kassa.chains.eth.rpc import EthRpc
from kassa.money import USD, Money
from kassa.payouts.model import RequestStatus

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

# Slow (--durations): payout worker subprocesses killed and restarted.
pytestmark = pytest.mark.slow


def _worker_process(stage: Stage, tmp_path: Path, crash_at: str | None) -> int:
    env = {
        **os.environ,
        "KASSA_DATA_DIR": str(tmp_path),
        "KASSA_DATABASE_URL": stage.db.engine.url.render_as_string(hide_password=False),
        "KASSA_DEVNET": "false",
        "KASSA_CHAINS__BTC__ENABLED": "false",
        "KASSA_CHAINS__TRON__ENABLED": "false",
        "KASSA_CHAINS__ETH__RPC_URL": stage.chains.eth.rpc_url or "",
        "KASSA_CHAINS__ETH__USDT_CONTRACT": stage.chains.eth.usdt_contract or "",
        "KASSA_CHAINS__ETH__FINALITY": "confirmations",
        "KASSA_CHAINS__ETH__CONFIRMATIONS": "1",
        "KASSA_PRICING__HISTORY_TOLERANCE_SECONDS": "3600",
        "KASSA_SIGNER_ETH_KEY": stage.key.secret.hex(),
    }
    env.pop("KASSA_FAULT_CRASH_AT", None)
    if crash_at is not None:
        env["KASSA_FAULT_CRASH_AT"] = crash_at
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(Path(sys.executable).parent / "kassa"), "payout-worker", "--once", "--name", "w"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if crash_at is None:
        assert done.returncode == 0, done.stderr[-2000:]
    else:  # killed at that point (86), or why not
        assert done.returncode == 86, done.stderr[-3000:]
    return done.returncode


def _sent_from_hot(stage: Stage) -> int:
    with EthRpc(stage.chains.eth.rpc_url or "") as rpc:
        return rpc.get_transaction_count(stage.rail.hot_address(), "pending")


@pytest.mark.parametrize("crash_at", ["after_sign", "after_broadcast", "before_confirm"])
def test_killed_worker_restarts_and_pays_exactly_once(
    eth_stage: Stage, tmp_path: Path, crash_at: str
) -> None:
    stage = eth_stage
    customer = stage.customer("100.00")
    destination = stage.fresh_address()
    request = stage.withdraw(customer, "25.00", "ETH", destination)

    if crash_at == "before_confirm":
        assert _worker_process(stage, tmp_path, None) == 0  # signed and broadcast
        stage.mine(2)
    assert _worker_process(stage, tmp_path, crash_at) == 86  # killed at that point

    expected = {
        "after_sign": RequestStatus.SIGNED,
        "after_broadcast": RequestStatus.BROADCAST,
        "before_confirm": RequestStatus.BROADCAST,
    }[crash_at]
    assert stage.status(request.id) is expected
    assert _sent_from_hot(stage) == (0 if crash_at == "after_sign" else 1)

    stage.pay(stage.worker("restarted"), request.id)

    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    assert _sent_from_hot(stage) == 1  # exactly one payment left the hot wallet
    assert [tx.status for tx in stage.txs()] == ["confirmed"]
    assert stage.received(destination, done.net_native.asset) == done.net_native.amount
    assert stage.available(customer) == Money.parse("75.00", USD)
    assert stage.account_balance("house:revenue:USD") == 5_000_000
    assert stage.account_balance("clearing:payouts:USD") == 0
