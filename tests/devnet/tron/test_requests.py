"""Request handling: both address spellings, GET, unreadable input, accounts and parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tronpy.keys import to_hex_address

from kassa_dev.devnet.tron.config import FeeSchedule

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner


def test_accounts_answer_in_the_spelling_asked_for(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.fund(alice, sun=3_000_000)
        visible = await devnet.post("/wallet/getaccount", {"address": alice, "visible": True})
        hex_form = await devnet.post("/wallet/getaccount", {"address": to_hex_address(alice)})
        assert visible["address"] == alice
        assert hex_form["address"] == to_hex_address(alice)
        assert visible["balance"] == hex_form["balance"] == 3_000_000
        assert (
            visible["create_time"]
            == (await devnet.tron.get_latest_block())["block_header"]["raw_data"]["timestamp"]
        )
        assert visible["owner_permission"]["keys"] == [{"address": alice, "weight": 1}]
        assert await devnet.tron.get_account_permission(alice)

        usdt = await devnet.post(
            "/wallet/getaccount", {"address": devnet.usdt_address, "visible": True}
        )
        assert usdt["type"] == "Contract"
        resource = await devnet.tron.get_account_resource(accounts.genesis)
        assert resource["freeNetLimit"] == 600
        assert await devnet.tron.get_energy(accounts.genesis) == 0
        assert await devnet.post("/wallet/getaccountresource", {"address": alice + "x"}) == {
            "Error": "class java.lang.IllegalArgumentException : address: invalid address "
            f"'{alice}x'"
        }

    run_devnet(scenario)


def test_chain_parameters_state_the_fee_schedule(run_devnet: DevnetRunner) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        parameters = {
            item["key"]: item["value"] for item in await devnet.tron.get_chain_parameters()
        }
        fees = FeeSchedule()
        assert parameters["getEnergyFee"] == fees.energy_price == 420
        assert parameters["getTransactionFee"] == fees.bandwidth_price == 1_000
        assert parameters["getCreateNewAccountFeeInSystemContract"] == 1_000_000
        assert parameters["getFreeNetLimit"] == 600

    run_devnet(scenario)


def test_get_requests_and_unreadable_bodies(run_devnet: DevnetRunner) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        by_get = (await devnet.client.get("/wallet/getblockbynum?num=1&visible=true")).json()
        assert by_get["block_header"]["raw_data"]["number"] == 1
        assert (await devnet.client.get("/wallet/getnowblock")).json()["blockID"]

        bad_json = await devnet.client.post("/wallet/getblockbynum", content=b"{not json")
        assert bad_json.status_code == 200
        assert "not JSON" in bad_json.json()["Error"]
        bad_number = await devnet.post("/wallet/getblockbynum", {"num": "one"})
        assert "num must be an integer" in bad_number["Error"]

        mine = await devnet.client.post("/debug/mine", json={"blocks": -1})
        assert mine.status_code == 400
        advance = await devnet.client.post("/debug/mine", json={"advance_seconds": "soon"})
        assert advance.status_code == 400
        assert (await devnet.client.post("/debug/mine", json={"blocks": 0})).json()["mined"] == []

    run_devnet(scenario)


def test_trigger_smart_contract_builds_a_signable_call(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        parameter = "00" * 12 + to_hex_address(alice)[2:] + f"{250:064x}"
        built = await devnet.post(
            "/wallet/triggersmartcontract",
            {
                "owner_address": accounts.genesis,
                "contract_address": devnet.usdt_address,
                "function_selector": "transfer(address,uint256)",
                "parameter": parameter,
                "fee_limit": 40_000_000,
                "visible": True,
            },
        )
        transaction = built["transaction"]
        assert built["result"] == {"result": True}
        assert transaction["raw_data"]["fee_limit"] == 40_000_000
        signature = accounts.genesis_key.sign_msg_hash(bytes.fromhex(transaction["txID"]))
        answer = await devnet.post(
            "/wallet/broadcasttransaction", {**transaction, "signature": [signature.hex()]}
        )
        assert answer["result"] is True
        await devnet.mine()
        assert await devnet.usdt_balance(alice) == 250

        unknown = await devnet.post(
            "/wallet/triggersmartcontract",
            {"owner_address": accounts.genesis, "contract_address": alice, "data": "00"},
        )
        assert unknown["result"]["code"] == "CONTRACT_VALIDATE_ERROR"

    run_devnet(scenario)
