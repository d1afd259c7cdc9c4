"""The run-time energy price (`POST /debug/energy-price`): reported by `getchainparameters` at
once, charged from the next block on, kept across a rollback and replayed after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kassa_dev.devnet.tron import DevnetConfig

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner

NEW_HOLDER_ENERGY = 29_650


async def _energy_fee(devnet: AsyncDevnet) -> int:
    parameters = await devnet.tron.get_chain_parameters()
    return int(next(item["value"] for item in parameters if item["key"] == "getEnergyFee"))


def test_a_raised_energy_price_is_reported_charged_and_replayed(
    run_devnet: DevnetRunner, accounts: Accounts, tmp_path: Path
) -> None:
    config = DevnetConfig(block_interval=0, state_file=tmp_path / "tron.json")
    _, alice = accounts.new("alice")
    _, bob = accounts.new("bob")
    seen: dict[str, Any] = {}

    async def before(devnet: AsyncDevnet) -> None:
        cheap = await devnet.settle(await devnet.sign_usdt(accounts.genesis_key, alice, 5))
        assert cheap["receipt"]["energy_fee"] == NEW_HOLDER_ENERGY * 420
        # Broadcast at the old price, mined at the new one: the block charges what it charges.
        pending = await (await devnet.sign_usdt(accounts.genesis_key, bob, 7)).broadcast()
        head = (await devnet.info())["head"]

        changed = await devnet.post("/debug/energy-price", {"energy_price": 840})

        assert changed == {"energy_price": 840, "from_block": head + 1}
        assert await _energy_fee(devnet) == 840
        assert (await devnet.info())["energy_price"] == 840
        await devnet.mine()
        dear = await pending.wait(timeout=2, interval=0.01)
        assert dear["receipt"]["energy_fee"] == NEW_HOLDER_ENERGY * 840
        assert dear["blockNumber"] == head + 1
        # A rollback past the change keeps the price: it applies from the next block again.
        await devnet.post("/debug/rollback", {"to": head, "discard": True})
        assert await _energy_fee(devnet) == 840
        again = await devnet.settle(await devnet.sign_usdt(accounts.genesis_key, bob, 7))
        assert again["receipt"]["energy_fee"] == NEW_HOLDER_ENERGY * 840
        seen.update(info=await devnet.info(), cheap=cheap["id"], again=again)

    async def after(devnet: AsyncDevnet) -> None:
        # Every block replays at the price it was charged at, to the same head.
        assert (await devnet.info())["head_id"] == seen["info"]["head_id"]
        assert await _energy_fee(devnet) == 840
        assert await devnet.tron.get_transaction_info(seen["again"]["id"]) == seen["again"]
        cheap = await devnet.tron.get_transaction_info(seen["cheap"])
        assert cheap["receipt"]["energy_fee"] == NEW_HOLDER_ENERGY * 420

    run_devnet(before, config)
    run_devnet(after, config)


def test_an_energy_price_must_be_a_positive_integer(run_devnet: DevnetRunner) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        for bad in (0, -5, "cheap", None):
            response = await devnet.client.post("/debug/energy-price", json={"energy_price": bad})
            assert response.status_code == 400, bad
        assert await _energy_fee(devnet) == 420

    run_devnet(scenario)
