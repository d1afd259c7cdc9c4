"""The sync tronpy client against the simulator under uvicorn: TRX transfers end to end, and a
USDT transfer through tronpy's sync contract API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tronpy.tron import Transaction, TransactionRet

from kassa_dev.devnet.tron import DevnetConfig
from kassa_dev.devnet.tron.config import FeeSchedule

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, ServedDevnet

pytestmark = pytest.mark.chain

FEES = FeeSchedule()
GENESIS_HEX = "4123334ca708234b4b32a49893eae4a1420aeb16ca"


def _size_of(tron: Any, txid: str) -> int:
    """Bandwidth bytes java-tron charges: the serialized `Transaction` (raw data and one
    65-byte signature, each with its protobuf tag and length) plus the result allowance."""
    raw = bytes.fromhex(tron.get_transaction(txid)["raw_data_hex"])
    raw_field = 1 + len(_varint(len(raw))) + len(raw)
    signature_field = 1 + 1 + 65
    return raw_field + signature_field + FEES.result_size_allowance


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_trx_transfer_built_online_creates_the_recipient_and_burns_the_creation_fee(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))
    before = tron.get_account(genesis)["balance"]

    signed = tron.trx.transfer(genesis, alice, 25_000_000).build().sign(genesis_key)
    sent = signed.broadcast()
    assert sent["result"] is True
    assert sent.txid == signed.txid
    devnet.mine()
    info = sent.wait(timeout=5, interval=0.02)

    # A new account: no free bandwidth; java-tron burns the flat 0.1 TRX getCreateAccountFee
    # instead of the bytes, plus the 1 TRX creation fee of the transfer itself.
    net_fee = FEES.create_account_bandwidth_fee
    assert info["receipt"] == {"net_fee": net_fee}
    assert info["fee"] == net_fee + FEES.account_create_fee == 1_100_000
    assert info["blockNumber"] == tron.get_latest_block_number()
    assert tron.get_account(alice)["balance"] == 25_000_000
    assert tron.get_account(genesis)["balance"] == before - 25_000_000 - info["fee"]
    assert tron.get_transaction(sent.txid)["ret"] == [{"contractRet": "SUCCESS"}]


def test_second_transfer_to_an_existing_account_uses_free_bandwidth(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice_key, alice = accounts.new("alice")
    tron.trx.transfer(genesis, alice, 10_000_000).build().sign(genesis_key).broadcast()
    devnet.mine()

    sent = tron.trx.transfer(alice, genesis, 1_000_000).build().sign(alice_key).broadcast()
    devnet.mine()
    info = sent.wait(timeout=5, interval=0.02)

    size = _size_of(tron, sent.txid)
    assert info["receipt"] == {"net_usage": size}
    assert "fee" not in info
    assert tron.get_account(alice)["balance"] == 9_000_000
    assert tron.get_bandwidth(alice) == FEES.free_bandwidth - size


def test_offline_build_with_the_solid_block_reference_is_accepted(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))
    reference = tron.get_latest_solid_block_id()

    signed = (
        tron.trx.transfer(genesis, alice, 3_000_000)
        .build(offline=True, ref_block_id=reference)
        .sign(genesis_key)
    )
    sent = TransactionRet(tron.broadcast(signed), client=tron)
    devnet.mine()

    assert sent.wait(timeout=5, interval=0.02)["id"] == signed.txid
    assert tron.get_account_balance(alice) == 3


def test_node_built_transfer_from_createtransaction_is_accepted(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))

    built = httpx.post(
        f"{devnet.url}/wallet/createtransaction",
        json={"owner_address": genesis, "to_address": alice, "amount": 2_000_000, "visible": True},
    ).json()
    assert built["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"] == genesis
    signature = genesis_key.sign_msg_hash(bytes.fromhex(built["txID"])).hex()
    answer = httpx.post(
        f"{devnet.url}/wallet/broadcasttransaction", json={**built, "signature": [signature]}
    ).json()
    assert answer == {"result": True, "txid": built["txID"]}
    devnet.mine()
    assert tron.get_account_balance(alice) == 2

    refused = httpx.post(
        f"{devnet.url}/wallet/createtransaction",
        json={"owner_address": alice, "to_address": genesis, "amount": 10**12, "visible": True},
    ).json()
    assert "balance is not sufficient" in refused["Error"]


def test_signweight_lists_the_owner_key_in_hex_for_tronpy(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))
    built = tron.trx.transfer(genesis, alice, 1).build()

    weight = tron.get_sign_weight(built)
    assert weight["permission"]["keys"] == [{"address": GENESIS_HEX, "weight": 1}]
    assert weight["result"] == {"code": "NOT_ENOUGH_PERMISSION"}
    assert tron.get_sign_weight(built.sign(genesis_key))["current_weight"] == 1


def test_block_timer_includes_transactions_without_debug_mining(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0.1))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))
    start = tron.get_latest_block_number()

    sent = tron.trx.transfer(genesis, alice, 1_000_000).build().sign(genesis_key).broadcast()
    info = sent.wait(timeout=5, interval=0.05)

    assert info["blockNumber"] > start
    deadline = time.monotonic() + 5
    while tron.get_latest_block_number() < info["blockNumber"] + 2:
        assert time.monotonic() < deadline, "the timer stopped producing blocks"
        time.sleep(0.05)


def test_transaction_from_json_round_trip_broadcasts(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    genesis_key, genesis = accounts.genesis_key, accounts.genesis
    alice = accounts.address(accounts.key("alice"))
    signed = tron.trx.transfer(genesis, alice, 1_000_000).build().sign(genesis_key)

    again = Transaction.from_json(signed.to_json(), client=tron)
    assert again.broadcast()["txid"] == signed.txid


def test_usdt_transfer_with_the_sync_contract_api(
    serve_devnet: Callable[[DevnetConfig], ServedDevnet], accounts: Accounts
) -> None:
    devnet = serve_devnet(DevnetConfig(block_interval=0))
    tron = devnet.tron
    _, alice = accounts.new("alice")
    usdt = tron.get_contract(devnet.info()["usdt_contract"])
    assert usdt.name == "TetherToken"

    sent = (
        usdt.functions.transfer(alice, 4_200_000)
        .with_owner(accounts.genesis)
        .fee_limit(30_000_000)
        .build()
        .sign(accounts.genesis_key)
        .broadcast()
    )
    devnet.mine()

    assert sent.result(timeout=5, interval=0.02) is True
    assert usdt.functions.balanceOf(alice) == 4_200_000
    assert tron.get_transaction_info(sent.txid)["log"][0]["data"] == f"{4_200_000:064x}"
