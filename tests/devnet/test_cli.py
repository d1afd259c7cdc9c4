"""`kassa devnet up/status/fund/down` against real processes on non-default ports."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner, Result

from kassa_dev.devnet import ganache
from kassa_dev.devnet.cli import devnet_app
from kassa_dev.devnet.processes import port_is_open
from kassa_dev.devnet.stack import Devnet
from kassa_dev.devnet.testing import free_port

pytestmark = pytest.mark.chain


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    # Whatever a test leaves running is stopped by pid, even when it failed halfway.
    Devnet(path).down()


def devnet(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(devnet_app, ["--data-dir", str(data_dir), *args])


def pids(data_dir: Path) -> dict[str, int]:
    return {record.name: record.pid for record in Devnet(data_dir).processes()}


def status_rows(data_dir: Path) -> dict[str, list[str]]:
    result = devnet(data_dir, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["chain", "state", "pid", "port", "height", "final"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


@pytest.mark.slow  # three real nodes started, funded, stopped and started again
def test_up_status_fund_down_and_up_again(data_dir: Path) -> None:
    eth_port, btc_port, tron_port = free_port(), free_port(), free_port()
    up_args = [
        "up",
        f"--eth-port={eth_port}",
        f"--btc-port={btc_port}",
        f"--tron-port={tron_port}",
        "--eth-block-time=1",
        "--btc-block-interval=0.5",
        "--tron-block-interval=0.5",
    ]

    started = devnet(data_dir, *up_args)
    assert started.exit_code == 0, started.output
    assert f"http://127.0.0.1:{eth_port}" in started.stdout
    assert f"http://127.0.0.1:{btc_port}" in started.stdout
    assert f"http://127.0.0.1:{tron_port}" in started.stdout
    first_pids = pids(data_dir)
    assert set(first_pids) == {"ganache", "bitcoin", "bitcoin-miner", "tron"}
    # The bcoin API key is handed over in the environment, never on a recorded command line.
    api_key = Devnet(data_dir).endpoints().btc_api_key
    assert api_key and f"API key {api_key}" in started.stdout
    for name in ("bitcoin", "bitcoin-miner"):
        assert api_key not in (data_dir / "devnet" / f"{name}.pid").read_text()
        assert api_key not in (data_dir / "devnet" / f"{name}.log").read_text()

    # Idempotent: a second `up` finds everything running and starts nothing.
    again = devnet(data_dir, *up_args)
    assert again.exit_code == 0, again.output
    assert "already running" in again.stderr
    assert pids(data_dir) == first_pids

    rows = status_rows(data_dir)
    assert rows["ethereum"][:3] == ["running", str(first_pids["ganache"]), str(eth_port)]
    assert rows["bitcoin"][:3] == ["running", str(first_pids["bitcoin"]), str(btc_port)]
    assert rows["tron"][:3] == ["running", str(first_pids["tron"]), str(tron_port)]
    assert int(rows["bitcoin"][3]) >= 150
    assert int(rows["tron"][4]) <= int(rows["tron"][3])

    # The miner process keeps the Bitcoin chain moving on its own.
    btc_height = int(rows["bitcoin"][3])
    deadline = time.monotonic() + 10
    while int(status_rows(data_dir)["bitcoin"][3]) <= btc_height:
        assert time.monotonic() < deadline, "the regtest miner produced no block"
        time.sleep(0.2)

    recipient = Account.create().address
    funded = devnet(data_dir, "fund", recipient, "2.5", "ETH")
    assert funded.exit_code == 0, funded.output
    txid = funded.stdout.strip()
    assert txid.startswith("0x") and len(txid) == 66
    w3 = ganache.web3_for(f"http://127.0.0.1:{eth_port}")
    assert w3.eth.get_balance(recipient) == 2_500_000_000_000_000_000
    usdt = Devnet(data_dir).endpoints().usdt_erc20

    stopped = devnet(data_dir, "down")
    assert stopped.exit_code == 0, stopped.output
    for name, pid in first_pids.items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not Devnet(data_dir).manager.pid_file(name).exists()
    assert not any(port_is_open(p) for p in (eth_port, btc_port, tron_port))
    assert all(row[0] == "stopped" for row in status_rows(data_dir).values())

    # The chains persist under the data dir: the payment and the token are still there.
    restarted = devnet(data_dir, *up_args)
    assert restarted.exit_code == 0, restarted.output
    assert w3.eth.get_balance(recipient) == 2_500_000_000_000_000_000
    assert Devnet(data_dir).endpoints().usdt_erc20 == usdt
    assert int(status_rows(data_dir)["bitcoin"][3]) > btc_height


def test_fund_refuses_unknown_assets_and_bad_amounts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    unknown = devnet(data_dir, "fund", "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1", "1", "DOGE")
    assert unknown.exit_code == 1
    assert "asset must be one of" in unknown.stderr

    too_precise = devnet(data_dir, "fund", "T" * 34, "0.0000001", "TRX")
    assert too_precise.exit_code == 1
    assert "at most 6 decimal places" in too_precise.stderr


def test_fund_without_a_running_chain_says_so(tmp_path: Path) -> None:
    result = devnet(tmp_path / "data", "fund", Account.create().address, "1", "ETH")
    assert result.exit_code == 1
    assert "not running" in result.stderr
