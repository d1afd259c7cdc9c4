"""The node's checks on broadcast, each as tronpy reports it: signatures, txID, TAPOS,
expiration, duplicates, balances and bandwidth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tronpy.exceptions import (
    BadSignature,
    TaposError,
    TransactionError,
    TransactionNotFound,
    UnknownError,
    ValidationError,
)
from tronpy.proto import tron_pb2

if TYPE_CHECKING:
    from tests.devnet.tron.conftest import Accounts, AsyncDevnet, DevnetRunner


async def _offline_transfer(
    devnet: AsyncDevnet, owner: str, to: str, amount: int, *, memo: str | None = None
) -> Any:
    builder = devnet.tron.trx.transfer(owner, to, amount)
    if memo is not None:
        builder = builder.memo(memo)
    reference = await devnet.tron.get_latest_solid_block_id()
    return await builder.build(offline=True, ref_block_id=reference)


def test_signature_by_another_key_is_a_sigerror(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    mallory_key, mallory = accounts.new("mallory")

    async def scenario(devnet: AsyncDevnet) -> None:
        # Built offline: an online build would already refuse the key (tronpy checks the
        # permission keys from getsignweight before signing).
        tx = await _offline_transfer(devnet, accounts.genesis, mallory, 1_000_000)
        tx.sign(mallory_key)
        with pytest.raises(BadSignature, match=f"is signed by {mallory} but it is not contained"):
            await devnet.tron.broadcast(tx)
        assert (await devnet.info())["pending"] == 0

    run_devnet(scenario)


def test_raw_data_changed_after_signing_is_a_sigerror_naming_the_txid(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        signed = await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000)
        signed._raw_data["contract"][0]["parameter"]["value"]["amount"] = 900_000_000
        with pytest.raises(BadSignature, match="raw_data was changed after signing"):
            await signed.broadcast()
        assert await devnet.balance(alice) == 0

    run_devnet(scenario)


def test_raw_data_hex_that_does_not_encode_raw_data_is_refused(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        small = await devnet.sign_trx(accounts.genesis_key, alice, 1)
        large = await devnet.sign_trx(accounts.genesis_key, alice, 2)
        body = small.to_json()
        body["raw_data_hex"] = (await devnet.post("/wallet/getsignweight", large.to_json()))[
            "transaction"
        ]["transaction"]["raw_data_hex"]
        answer = await devnet.post("/wallet/broadcasttransaction", body)
        assert answer["code"] == "SIGERROR"
        assert "raw_data_hex does not encode raw_data" in bytes.fromhex(answer["message"]).decode()

    run_devnet(scenario)


def test_missing_and_extra_signatures_are_sigerrors(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        unsigned = await _offline_transfer(devnet, accounts.genesis, alice, 1)
        with pytest.raises(BadSignature, match="miss sig"):
            await devnet.tron.broadcast(unsigned)
        twice = unsigned.sign(accounts.genesis_key).sign(accounts.genesis_key)
        with pytest.raises(BadSignature, match="Signature count is 2"):
            await devnet.tron.broadcast(twice)

    run_devnet(scenario)


def test_transaction_expired_against_the_head_block_time(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        signed = await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000)
        # tronpy's transactions expire 60 s after they are built; move the chain past that.
        await devnet.mine(1, advance_seconds=120)
        with pytest.raises(TransactionError, match="transaction expired"):
            await signed.broadcast()

    run_devnet(scenario)


def test_expiration_more_than_a_day_ahead_is_refused(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        builder = devnet.tron.trx.transfer(accounts.genesis, alice, 1).expiration(25 * 3_600_000)
        signed = (await builder.build()).sign(accounts.genesis_key)
        with pytest.raises(TransactionError, match="transaction expired"):
            await signed.broadcast()

    run_devnet(scenario)


def test_pending_transaction_that_expires_before_a_block_is_dropped(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        sent = await (await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000)).broadcast()
        assert (await devnet.info())["pending"] == 1
        mined = await devnet.mine(1, advance_seconds=120)

        assert mined["pending"] == 0
        with pytest.raises(TransactionNotFound):
            await sent.wait(timeout=0.1, interval=0.02)
        assert await devnet.balance(alice) == 0

    run_devnet(scenario)


def test_reference_block_not_on_this_chain_is_a_tapos_error(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        solid_id = await devnet.tron.get_latest_solid_block_id()
        foreign = solid_id[:16] + "ab" * 24  # right number, another chain's hash
        tx = await devnet.tron.trx.transfer(accounts.genesis, alice, 1).build(
            offline=True, ref_block_id=foreign
        )
        with pytest.raises(TaposError, match="Tapos check error"):
            await devnet.tron.broadcast(tx.sign(accounts.genesis_key))
        future = f"{2**16 - 1:016x}" + solid_id[16:]  # a block number not reached yet
        tx = await devnet.tron.trx.transfer(accounts.genesis, alice, 2).build(
            offline=True, ref_block_id=future
        )
        with pytest.raises(TaposError):
            await devnet.tron.broadcast(tx.sign(accounts.genesis_key))

    run_devnet(scenario)


def test_duplicate_broadcast_is_refused_pending_and_mined(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        signed = await devnet.sign_trx(accounts.genesis_key, alice, 1_000_000)
        await signed.broadcast()
        with pytest.raises(UnknownError) as pending_dup:
            await signed.broadcast()
        assert pending_dup.value.args[1] == "DUP_TRANSACTION_ERROR"
        await devnet.mine()
        with pytest.raises(UnknownError, match="dup transaction"):
            await signed.broadcast()
        assert await devnet.balance(alice) == 1_000_000

    run_devnet(scenario)


def test_insufficient_trx_and_missing_owner_are_contract_validate_errors(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    alice_key, alice = accounts.new("alice")
    ghost_key, ghost = accounts.new("ghost")

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.fund(alice, sun=10_000_000)
        overdraft = await devnet.sign_trx(alice_key, accounts.genesis, 10_000_001)
        with pytest.raises(ValidationError, match="balance is not sufficient"):
            await overdraft.broadcast()

        # The pool counts too: each transfer fits alone, the second not after the first.
        await (await devnet.sign_trx(alice_key, accounts.genesis, 6_000_000)).broadcast()
        with pytest.raises(ValidationError, match="balance is not sufficient"):
            await (await devnet.sign_trx(alice_key, accounts.genesis, 4_000_001)).broadcast()

        never_funded = await _offline_transfer(devnet, ghost, alice, 1)
        with pytest.raises(ValidationError, match="no OwnerAccount"):
            await devnet.tron.broadcast(never_funded.sign(ghost_key))

    run_devnet(scenario)


def test_no_free_bandwidth_and_no_trx_for_it_is_a_bandwidth_error(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    alice_key, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        await devnet.fund(alice, sun=100_000)  # 0.1 TRX: less than one paid transaction
        for amount in (1, 2):  # two transfers fit in the 600 free bytes
            await devnet.settle(await devnet.sign_trx(alice_key, accounts.genesis, amount))
        third = await devnet.sign_trx(alice_key, accounts.genesis, 3)
        with pytest.raises(UnknownError) as refused:
            await third.broadcast()
        assert refused.value.args[1] == "BANDWITH_ERROR"

        # A day later the free bandwidth has recovered. The chain clock is then a day ahead
        # of the wall clock tronpy builds with, so the expiration is set past it.
        await devnet.mine(1, advance_seconds=86_400)
        assert "freeNetUsed" not in await devnet.post("/wallet/getaccountnet", {"address": alice})
        builder = devnet.tron.trx.transfer(alice, accounts.genesis, 3)
        later = (await builder.expiration(86_400_000 + 60_000).build()).sign(alice_key)
        info = await devnet.settle(later)
        assert "fee" not in info
        assert info["receipt"]["net_usage"] > 0


def test_memo_is_part_of_the_txid(run_devnet: DevnetRunner, accounts: Accounts) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        # tronpy's offline txID leaves the memo out, so a real node refuses the signature.
        offline = await _offline_transfer(devnet, accounts.genesis, alice, 1, memo="order 42")
        with pytest.raises(BadSignature):
            await devnet.tron.broadcast(offline.sign(accounts.genesis_key))

        builder = devnet.tron.trx.transfer(accounts.genesis, alice, 1).memo("order 42")
        online = (await builder.build()).sign(accounts.genesis_key)
        info = await devnet.settle(online)
        stored = await devnet.tron.get_transaction(info["id"])
        assert bytes.fromhex(stored["raw_data"]["data"]).decode() == "order 42"

    run_devnet(scenario)


def test_broadcasthex_takes_protobuf_bytes(run_devnet: DevnetRunner, accounts: Accounts) -> None:
    _, alice = accounts.new("alice")

    async def scenario(devnet: AsyncDevnet) -> None:
        signed = await devnet.sign_trx(accounts.genesis_key, alice, 7)
        raw_hex = (await devnet.post("/wallet/getsignweight", signed.to_json()))["transaction"][
            "transaction"
        ]["raw_data_hex"]
        message = tron_pb2.Transaction(
            raw_data=tron_pb2.Transaction.raw.FromString(bytes.fromhex(raw_hex)),
            signature=[bytes.fromhex(signed.to_json()["signature"][0])],
        )
        answer = await devnet.post(
            "/wallet/broadcasthex", {"transaction": message.SerializeToString().hex()}
        )
        assert answer["result"] is True
        assert answer["txid"] == signed.txid

    run_devnet(scenario)


def test_unsupported_contract_types_are_refused_not_ignored(
    run_devnet: DevnetRunner, accounts: Accounts
) -> None:
    async def scenario(devnet: AsyncDevnet) -> None:
        builder = devnet.tron.trx.freeze_balance(accounts.genesis, 1_000_000)
        body = {
            "raw_data": {
                **builder._raw_data,
                "ref_block_bytes": "0000",
                "ref_block_hash": "00" * 8,
            },
            "signature": [],
        }
        answer = await devnet.post("/wallet/broadcasttransaction", body)
        assert answer["code"] == "OTHER_ERROR"
        assert "FreezeBalanceV2Contract" in bytes.fromhex(answer["message"]).decode()
        weight = await devnet.post("/wallet/getsignweight", body)
        assert "not supported" in weight["Error"]

    run_devnet(scenario)
