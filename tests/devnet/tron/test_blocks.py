"""Blocks, solidity and rollback: the shapes tronpy parses and the finality a watcher relies on."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import coincurve
import pytest
from tronpy.exceptions import BlockNotFound, TransactionNotFound
from tronpy.keys import PublicKey, to_hex_address

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner


def test_solidified_height_lags_the_head_by_nineteen_blocks(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        tron = devnet.tron
        sent = await (await devnet.sign_trx(accounts.genesis_key, alice, 5_000_000)).broadcast()
        await devnet.mine()
        included = (await sent.wait(interval=0.01))["blockNumber"]

        await devnet.mine(18)
        assert await tron.get_latest_block_number() == included + 18
        assert await tron.get_latest_solid_block_number() == included - 1
        with pytest.raises(TransactionNotFound):
            await tron.get_solid_transaction_info(sent.txid)
        solid_account = await devnet.post(
            "/walletsolidity/getaccount", {"address": alice, "visible": True}
        )
        assert solid_account == {}
        assert await devnet.post("/walletsolidity/getblockbynum", {"num": included}) == {}
        assert (
            await devnet.post("/walletsolidity/gettransactioninfobyblocknum", {"num": included})
            == []
        )

        await devnet.mine()
        assert await tron.get_latest_solid_block_number() == included
        solid_info = await sent.wait(interval=0.01, solid=True)
        assert solid_info["blockNumber"] == included
        assert await devnet.post(
            "/walletsolidity/gettransactioninfobyblocknum", {"num": included}
        ) == [solid_info]
        solid_block = await devnet.post("/walletsolidity/getnowblock", {"visible": True})
        assert solid_block["block_header"]["raw_data"]["number"] == included
        solid_account = await devnet.post(
            "/walletsolidity/getaccount", {"address": alice, "visible": True}
        )
        assert solid_account["balance"] == 5_000_000
        node = await tron.get_node_info()
        assert node["solidityBlock"] == f"Num:{included},ID:{solid_block['blockID']}"

    run_devnet(scenario)


def test_block_and_transaction_shapes_match_java_tron(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        tron = devnet.tron
        genesis_block = await tron.get_block(0)
        # proto3 printing: the genesis block has number 0 and timestamp 0, so neither appears.
        assert "number" not in genesis_block["block_header"]["raw_data"]
        assert "timestamp" not in genesis_block["block_header"]["raw_data"]
        assert "transactions" not in genesis_block
        assert genesis_block["blockID"].startswith("0" * 16)

        signed = await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000)
        info = await devnet.settle(signed)
        number = info["blockNumber"]
        block = await tron.get_block(number)
        previous = await tron.get_block(number - 1)
        header = block["block_header"]["raw_data"]

        assert block["blockID"][:16] == f"{number:016x}"
        assert header["parentHash"] == previous["blockID"]
        assert header["timestamp"] == info["blockTimeStamp"]
        assert header["timestamp"] > previous["block_header"]["raw_data"]["timestamp"]
        assert header["witness_address"] == accounts.genesis
        assert header["txTrieRoot"] == signed.txid  # a single leaf is its own root
        assert await tron.get_block(block["blockID"]) == block
        (transaction,) = block["transactions"]
        assert transaction["txID"] == signed.txid
        assert transaction["ret"] == [{"contractRet": "SUCCESS"}]
        assert hashlib.sha256(bytes.fromhex(transaction["raw_data_hex"])).hexdigest() == (
            signed.txid
        )
        value = transaction["raw_data"]["contract"][0]["parameter"]["value"]
        assert value == {
            "amount": 1_000_000,
            "owner_address": accounts.genesis,
            "to_address": alice,
        }

        # The witness signature recovers to the block producer.
        signature = bytes.fromhex(block["block_header"]["witness_signature"])
        hex_block = await tron.get_block(number, visible=False)
        assert hex_block["block_header"]["raw_data"]["witness_address"] == to_hex_address(
            accounts.genesis
        )
        hex_value = hex_block["transactions"][0]["raw_data"]["contract"][0]["parameter"]["value"]
        assert hex_value["to_address"] == to_hex_address(alice)
        produced = devnet.chain.block_by_number(number)
        assert produced is not None
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature, produced.header_hash, hasher=None
        )
        signer = PublicKey(public_key.format(compressed=False)[1:])
        assert signer.to_base58check_address() == accounts.genesis

        await devnet.mine()
        empty = await tron.get_block(number + 1)
        assert "transactions" not in empty
        with pytest.raises(BlockNotFound):
            await tron.get_block(number + 2)

        infos = await devnet.post("/wallet/gettransactioninfobyblocknum", {"num": number})
        assert infos == [info]
        assert await devnet.post("/wallet/gettransactioninfobyblocknum", {"num": number + 1}) == []
        listed = await devnet.post(
            "/wallet/getblockbylimitnext", {"startNum": number - 1, "endNum": number + 1}
        )
        assert [item["blockID"] for item in listed["block"]] == [
            previous["blockID"],
            block["blockID"],
        ]
        latest = await devnet.post("/wallet/getblockbylatestnum", {"num": 2})
        assert [item["blockID"] for item in latest["block"]] == [block["blockID"], empty["blockID"]]

    run_devnet(scenario)


def test_rollback_puts_transactions_back_and_a_new_block_reincludes_them(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        sent = await (await devnet.sign_trx(accounts.genesis_key, alice, 7_000_000)).broadcast()
        await devnet.mine()
        first = await sent.wait(interval=0.01)
        number = first["blockNumber"]
        old_block = await devnet.tron.get_block(number)

        answer = await devnet.post("/debug/rollback", {"to": number - 1})
        assert answer == {"head": number - 1, "returned_to_pool": [sent.txid], "discarded": []}
        assert (await devnet.info())["pending"] == 1
        assert await devnet.balance(alice) == 0
        with pytest.raises(TransactionNotFound):
            await devnet.tron.get_transaction_info(sent.txid)
        assert await devnet.post("/wallet/getblockbyid", {"value": old_block["blockID"]}) == {}

        await devnet.mine()
        again = await sent.wait(interval=0.01)
        new_block = await devnet.tron.get_block(number)
        assert again["blockNumber"] == number
        assert new_block["blockID"] != old_block["blockID"]
        assert again["blockTimeStamp"] > first["blockTimeStamp"]
        assert await devnet.balance(alice) == 7_000_000

    run_devnet(scenario)


def test_rollback_with_discard_forgets_the_transactions(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        info = await devnet.settle(await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000))
        answer = await devnet.post(
            "/debug/rollback", {"to": info["blockNumber"] - 1, "discard": True}
        )
        assert answer["discarded"] == [info["id"]]
        await devnet.mine(3)
        assert await devnet.balance(alice) == 0
        assert await devnet.post("/wallet/gettransactionbyid", {"value": info["id"]}) == {}

    run_devnet(scenario)


def test_rollback_discards_transactions_whose_reference_block_left_the_chain(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.mine(2)
        head = await devnet.tron.get_latest_block_id()
        tx = await devnet.tron.trx.transfer(accounts.genesis, alice, 1).build(
            offline=True, ref_block_id=head
        )
        sent = await devnet.tron.broadcast(tx.sign(accounts.genesis_key))
        answer = await devnet.post("/debug/rollback", {"to": int(head[:16], 16) - 1})
        assert answer["discarded"] == [sent["txid"]]
        assert (await devnet.info())["pending"] == 0

    run_devnet(scenario)


def test_rollback_below_the_solidified_block_is_refused(run_devnet: DevnetRunner) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.mine(25)
        info = await devnet.info()
        response = await devnet.client.post("/debug/rollback", json={"to": info["solid_head"] - 1})
        assert response.status_code == 409
        assert "solidified" in response.json()["error"]
        assert (await devnet.info())["head"] == info["head"]

    run_devnet(scenario)


def test_getblock_answers_a_header_and_the_transactions_only_with_detail(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, bob = accounts.new("bob")

    async def scenario(devnet: AsyncDevnet) -> None:
        sent = await (await devnet.sign_trx(accounts.genesis_key, bob, 1_000_000)).broadcast()
        await devnet.mine()
        number = (await sent.wait(interval=0.01))["blockNumber"]
        full = await devnet.post("/wallet/getblockbynum", {"num": number, "visible": True})
        assert [tx["txID"] for tx in full["transactions"]] == [sent.txid]
        header = {key: full[key] for key in ("blockID", "block_header")}

        by_num = await devnet.post("/wallet/getblock", {"id_or_num": str(number), "visible": True})
        assert by_num == header  # no "transactions" without detail
        by_id = await devnet.post(
            "/wallet/getblock", {"id_or_num": full["blockID"], "visible": True}
        )
        assert by_id == header
        detailed = {"id_or_num": str(number), "detail": True, "visible": True}
        assert await devnet.post("/wallet/getblock", detailed) == full
        assert (
            await devnet.post("/wallet/getblock", {"visible": True}) == header
        )  # the newest block
        # Above the head there is nothing; above the solidified block, nothing solid.
        assert await devnet.post("/wallet/getblock", {"id_or_num": str(number + 1)}) == {}
        assert (
            await devnet.post(
                "/walletsolidity/getblock", {"id_or_num": str(number), "visible": True}
            )
            == {}
        )
        solid = await devnet.post("/walletsolidity/getblock", {})
        assert solid["block_header"]["raw_data"].get("number", 0) < number  # 0 is left out
        for bad in ({"id_or_num": "-1"}, {"id_or_num": "12ab"}, {"detail": "maybe"}):
            assert "Error" in await devnet.post("/wallet/getblock", bad)

    run_devnet(scenario)
