"""The built-in TRC-20 USDT through tronpy's contract API: transfers, logs, reverts, energy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tronpy.abi import trx_abi
from tronpy.exceptions import TvmError, ValidationError
from tronpy.keys import to_hex_address

from kassa_dev.devnet.tron.config import FeeSchedule

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner

FEES = FeeSchedule()
TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def _word(address: str) -> str:
    """A TRON address as a 32-byte log topic: the 20-byte EVM address, left-padded."""
    return "00" * 12 + str(to_hex_address(address))[2:]


def test_transfer_emits_the_transfer_log_and_burns_energy(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        genesis = accounts.genesis
        trx_before = await devnet.balance(genesis)
        usdt_before = await devnet.usdt_balance(genesis)

        signed = await devnet.sign_usdt(accounts.genesis_key, alice, 12_345_678)
        sent = await signed.broadcast()
        await devnet.mine()
        info = await sent.wait(interval=0.01)

        assert await sent.result(interval=0.01) is True
        assert info["receipt"]["result"] == "SUCCESS"
        assert info["receipt"]["energy_usage_total"] == 29_650  # a new holder
        assert info["receipt"]["energy_fee"] == 29_650 * FEES.energy_price
        assert info["contract_address"] == devnet.usdt_address
        assert info["log"] == [
            {
                "address": devnet.usdt_address[2:],
                "topics": [TRANSFER_TOPIC, _word(genesis), _word(alice)],
                "data": f"{12_345_678:064x}",
            }
        ]
        assert await devnet.usdt_balance(alice) == 12_345_678
        assert await devnet.usdt_balance(genesis) == usdt_before - 12_345_678
        assert await devnet.balance(genesis) == trx_before - info["fee"]

        # The recipient now holds USDT: the next transfer to it writes a nonzero slot.
        again = await devnet.settle(await devnet.sign_usdt(accounts.genesis_key, alice, 1))
        assert again["receipt"]["energy_usage_total"] == 14_650

    run_devnet(scenario)


def test_views_answer_through_constant_calls(run_devnet: DevnetRunner, accounts: Accounts) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        usdt = await devnet.usdt()
        assert await usdt.functions.name() == "Tether USD"
        assert await usdt.functions.symbol() == "USDT"
        assert await usdt.functions.decimals() == 6
        supply = await usdt.functions.totalSupply()
        assert await usdt.functions.balanceOf(accounts.genesis) == supply == 10**15
        assert (
            await devnet.tron.get_estimated_energy(
                accounts.genesis,
                devnet.usdt_address,
                "transfer(address,uint256)",
                trx_abi.encode_single("(address,uint256)", [accounts.genesis, 1]).hex(),
            )
            == 14_650
        )

    run_devnet(scenario)


def test_transfer_over_the_token_balance_is_included_reverted_and_charged(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    alice_key, alice = accounts.new("alice")
    _, bob = accounts.new("bob")

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.fund(alice, sun=50_000_000, usdt=1_000_000)
        trx_before = await devnet.balance(alice)

        signed = await devnet.sign_usdt(alice_key, bob, 2_000_000)
        sent = await signed.broadcast()
        await devnet.mine()
        info = await sent.wait(interval=0.01)

        assert info["result"] == "FAILED"
        assert info["receipt"]["result"] == "REVERT"
        assert bytes.fromhex(info["resMessage"]).decode() == "REVERT opcode executed"
        assert "log" not in info
        assert info["fee"] > 0
        assert await devnet.balance(alice) == trx_before - info["fee"]
        assert await devnet.usdt_balance(alice) == 1_000_000
        assert await devnet.usdt_balance(bob) == 0
        transaction = await devnet.tron.get_transaction(signed.txid)
        assert transaction["ret"] == [{"contractRet": "REVERT"}]
        with pytest.raises(TvmError, match="transfer amount exceeds balance"):
            await sent.result(interval=0.01)

    run_devnet(scenario)


def test_tiny_fee_limit_runs_out_of_energy_and_burns_the_limit(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        usdt_before = await devnet.usdt_balance(accounts.genesis)
        signed = await devnet.sign_usdt(accounts.genesis_key, alice, 5, fee_limit=1_000_000)
        info = await devnet.settle(signed)

        energy_limit = 1_000_000 // FEES.energy_price
        assert info["result"] == "FAILED"
        assert info["receipt"]["result"] == "OUT_OF_ENERGY"
        assert info["receipt"]["energy_usage_total"] == energy_limit
        assert info["receipt"]["energy_fee"] == energy_limit * FEES.energy_price
        assert info["fee"] == info["receipt"]["energy_fee"]  # bandwidth came from the free quota
        assert await devnet.usdt_balance(alice) == 0
        assert await devnet.usdt_balance(accounts.genesis) == usdt_before
        transaction = await devnet.tron.get_transaction(signed.txid)
        assert transaction["ret"] == [{"contractRet": "OUT_OF_ENERGY"}]

    run_devnet(scenario)


def test_energy_is_bounded_by_the_trx_balance_too(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    alice_key, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        # 2 TRX pays for under 5 000 energy: far less than a transfer needs.
        await devnet.fund(alice, sun=2_000_000, usdt=10)
        info = await devnet.settle(await devnet.sign_usdt(alice_key, accounts.genesis, 10))

        assert info["receipt"]["result"] == "OUT_OF_ENERGY"
        assert info["receipt"]["energy_usage_total"] == 2_000_000 // FEES.energy_price
        assert await devnet.balance(alice) == 2_000_000 - info["fee"]
        assert await devnet.usdt_balance(alice) == 10

    run_devnet(scenario)


def test_constant_call_of_an_overdrawn_transfer_raises_tvm_error(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, nobody = accounts.new("nobody")

    async def scenario(devnet: AsyncDevnet) -> None:
        # tronpy passes java-tron's hex message through and appends the decoded reason.
        revert_hex = b"REVERT opcode executed".hex()
        with pytest.raises(TvmError, match=f"{revert_hex}: transfer amount exceeds balance"):
            await devnet.tron.trigger_constant_contract(
                nobody,
                devnet.usdt_address,
                "transfer(address,uint256)",
                trx_abi.encode_single("(address,uint256)", [accounts.genesis, 1]).hex(),
            )

    run_devnet(scenario)


def test_calls_to_an_unknown_contract_are_refused(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, not_a_contract = accounts.new("not-a-contract")

    async def scenario(devnet: AsyncDevnet) -> None:
        assert await devnet.post("/wallet/getcontract", {"value": not_a_contract}) == {}
        usdt = await devnet.usdt()
        builder = await usdt.functions.transfer(accounts.genesis, 1)
        builder._raw_data["contract"][0]["parameter"]["value"]["contract_address"] = to_hex_address(
            not_a_contract
        )
        signed = (await builder.with_owner(accounts.genesis).build()).sign(accounts.genesis_key)
        with pytest.raises(ValidationError, match="No contract or not a valid smart contract"):
            await signed.broadcast()
        with pytest.raises(ValidationError, match="No contract"):
            await devnet.tron.trigger_constant_contract(
                accounts.genesis, not_a_contract, "balanceOf(address)", "00" * 32
            )

    run_devnet(scenario)
