"""The state file: a devnet survives restarts, and refuses a file that is not its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kassa_dev.devnet.tron import DevnetConfig, create_app
from kassa_dev.devnet.tron.persistence import StateFileError

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner


def test_chain_balances_receipts_and_pool_survive_a_restart(
    run_devnet: DevnetRunner, accounts: Accounts, tmp_path: Path
) -> None:
    config = DevnetConfig(block_interval=0, state_file=tmp_path / "tron.json")
    alice_key, alice = accounts.new("alice")
    seen: dict[str, Any] = {}

    async def before(devnet: AsyncDevnet) -> None:
        await devnet.fund(alice, sun=20_000_000, usdt=3_000_000)
        info = await devnet.settle(await devnet.sign_usdt(alice_key, accounts.genesis, 1_000_000))
        await devnet.mine(25, advance_seconds=30)
        pending = await (await devnet.sign_trx(alice_key, accounts.genesis, 1)).broadcast()
        seen.update(
            info=info,
            pending=pending.txid,
            debug=await devnet.info(),
            trx=await devnet.balance(alice),
            usdt=await devnet.usdt_balance(alice),
            block=await devnet.tron.get_block(info["blockNumber"]),
        )

    async def after(devnet: AsyncDevnet) -> None:
        debug = await devnet.info()
        for key in ("head", "head_id", "solid_head", "solid_head_id", "pending"):
            assert debug[key] == seen["debug"][key]
        # The advanced clock is part of the state: restarting does not rewind chain time.
        assert debug["chain_time_ms"] >= seen["debug"]["chain_time_ms"]
        assert await devnet.tron.get_transaction_info(seen["info"]["id"]) == seen["info"]
        assert await devnet.tron.get_block(seen["info"]["blockNumber"]) == seen["block"]
        assert await devnet.balance(alice) == seen["trx"]
        assert await devnet.usdt_balance(alice) == seen["usdt"]
        await devnet.mine()
        assert (await devnet.tron.get_transaction_info(seen["pending"]))["blockNumber"] == (
            debug["head"] + 1
        )

    run_devnet(before, config)
    run_devnet(after, config)


def test_rollback_is_persisted(run_devnet: DevnetRunner, tmp_path: Path) -> None:
    config = DevnetConfig(block_interval=0, state_file=tmp_path / "tron.json")
    heads: list[str] = []

    async def before(devnet: AsyncDevnet) -> None:
        await devnet.mine(5)
        await devnet.post("/debug/rollback", {"to": 3})
        heads.append((await devnet.info())["head_id"])

    async def after(devnet: AsyncDevnet) -> None:
        assert (await devnet.info())["head_id"] == heads[0]

    run_devnet(before, config)
    run_devnet(after, config)


def test_state_file_is_compact_and_written_by_rename(
    run_devnet: DevnetRunner, tmp_path: Path
) -> None:
    path = tmp_path / "tron.json"

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.mine(50)

    run_devnet(scenario, DevnetConfig(block_interval=0, state_file=path))
    assert [item.name for item in tmp_path.iterdir()] == ["tron.json"]  # no temporary left
    document = json.loads(path.read_text())
    assert len(document["blocks"]) == 51  # blocks 1..51; the genesis is rebuilt
    assert all(isinstance(block, int) for block in document["blocks"])  # empty: a timestamp


def test_a_file_from_another_genesis_or_an_edited_file_is_refused(
    run_devnet: DevnetRunner, tmp_path: Path
) -> None:
    path = tmp_path / "tron.json"

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.mine(3)

    run_devnet(scenario, DevnetConfig(block_interval=0, state_file=path))
    with pytest.raises(StateFileError, match="written for genesis"):
        create_app(DevnetConfig(block_interval=0, state_file=path, genesis_key=b"\x01" * 32))

    document = json.loads(path.read_text())
    document["blocks"][1] += 1  # one block's timestamp changes its id and every later one
    path.write_text(json.dumps(document))
    with pytest.raises(StateFileError, match="replay ended at"):
        create_app(DevnetConfig(block_interval=0, state_file=path))

    path.write_text("{not json")
    with pytest.raises(StateFileError, match="unreadable"):
        create_app(DevnetConfig(block_interval=0, state_file=path))
