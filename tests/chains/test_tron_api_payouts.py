"""The reads and the broadcast the TRON payout rail uses, against Kassa's java-tron simulator.

The session simulator makes a block every 0.5 s and is shared, so every test uses fresh
addresses and never assumes block numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import coincurve
import httpx
import pytest

from kassa.chains.tron.address import TronAddress, parse_tron_address, tron_address_for_public_key
from kassa.chains.tron.api import TronApi, TronCallRefused
from kassa.chains.tron.tx import sign_trx_transfer, tron_address_for_key
from kassa.money import TRX, Money
from kassa_dev.devnet.testing import TronNode

TRANSFER = "transfer(address,uint256)"


def new_address() -> TronAddress:
    return tron_address_for_public_key(coincurve.PrivateKey().public_key.format(compressed=False))


def transfer_parameter(to: TronAddress, amount: int) -> bytes:
    return bytes(12) + to.evm_bytes + amount.to_bytes(32, "big")


@pytest.fixture
def tron_api(tron_sim: TronNode) -> Iterator[TronApi]:
    with TronApi(tron_sim.url) as api:
        yield api


def test_accounts_resources_and_chain_parameters(tron_sim: TronNode, tron_api: TronApi) -> None:
    fresh = new_address()
    assert tron_api.account(fresh) is None
    assert tron_api.account_resources(fresh) is None

    txid = tron_sim.faucet().fund(fresh.text, Money(3_000_000, TRX))
    account = tron_api.account(fresh)
    assert account is not None
    assert (account.address, account.balance, account.is_contract) == (fresh, 3_000_000, False)
    assert account.create_time_ms > 0
    assert tron_api.account(fresh, solid=True) is None  # its block is not solidified yet

    parameters = tron_api.chain_parameters()
    assert parameters["getTransactionFee"] == 1_000
    assert parameters["getEnergyFee"] == 420
    assert parameters["getCreateAccountFee"] == 100_000
    assert parameters["getCreateNewAccountFeeInSystemContract"] == 1_000_000
    resources = tron_api.account_resources(fresh)
    assert resources is not None
    assert resources.free_net_limit == parameters["getFreeNetLimit"] == resources.free_net_left
    assert (resources.net_left, resources.energy_left) == (0, 0)  # nothing staked

    # The transfer that created it burnt java-tron's flat creation fees, not its bytes.
    receipt = tron_api.transaction_info(txid)
    assert receipt is not None
    assert (receipt.fee, receipt.net_fee, receipt.net_usage) == (1_100_000, 100_000, 0)
    assert tron_api.transaction_info(txid, solid=True) is None

    contract = tron_api.account(parse_tron_address(tron_sim.usdt_contract))
    assert contract is not None and contract.is_contract


def test_energy_estimates_agree_and_a_reverting_call_says_so(
    tron_sim: TronNode, tron_api: TronApi
) -> None:
    token = parse_tron_address(tron_sim.usdt_contract)
    holder = parse_tron_address(tron_sim.genesis_address)
    parameter = transfer_parameter(new_address(), 1_000_000)

    assert tron_api.trc20_balance(token, holder) > 1_000_000
    call = tron_api.trigger_constant(holder, token, TRANSFER, parameter)
    assert not call.reverted
    assert call.output == (1).to_bytes(32, "big")  # transfer() returned true
    assert call.energy_used > 0
    assert tron_api.estimate_energy(holder, token, TRANSFER, parameter) == call.energy_used

    empty = new_address()  # holds no tokens: the transfer reverts
    reverted = tron_api.trigger_constant(empty, token, TRANSFER, parameter)
    assert reverted.reverted
    assert "REVERT" in reverted.message
    with pytest.raises(TronCallRefused, match="REVERT") as refused:
        tron_api.estimate_energy(empty, token, TRANSFER, parameter)
    assert refused.value.response_code == "CONTRACT_EXE_ERROR"
    assert tron_api.trc20_balance(token, empty) == 0


def test_broadcast_sends_the_stored_json_and_reads_the_refusal(
    tron_sim: TronNode, tron_api: TronApi
) -> None:
    key = coincurve.PrivateKey()
    tron_sim.faucet().fund(tron_address_for_key(key).text, Money(3_000_000, TRX))
    head = tron_api.now_block()
    signed = sign_trx_transfer(
        key,
        to=new_address(),
        amount_sun=1_000_000,
        ref_block_id=head.block_id,
        timestamp_ms=head.timestamp_ms,
    )

    # raw_data changed after signing: the signature no longer matches.
    tampered = signed.payload()
    tampered["raw_data"]["contract"][0]["parameter"]["value"]["amount"] = 1_500_000
    refused = tron_api.broadcast(json.dumps(tampered))
    assert not refused.accepted
    assert refused.code == "SIGERROR"
    assert "signature" in refused.message  # hex-decoded text, not hex

    sent = tron_api.broadcast(signed.json_text)
    assert (sent.accepted, sent.code) == (True, "SUCCESS")
    again = tron_api.broadcast(signed.json_text)
    assert (again.accepted, again.code) == (False, "DUP_TRANSACTION_ERROR")
    httpx.post(f"{tron_sim.url}/debug/mine", json={"blocks": 1}, timeout=10).raise_for_status()
    receipt = tron_api.transaction_info(signed.txid)
    assert receipt is not None and receipt.info.txid == signed.txid
    assert tron_api.pending_transaction(signed.txid) is None  # in a block, not in the pool
