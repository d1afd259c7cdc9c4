"""TRX and TRC-20 transfers built offline: identical to tronpy's own offline builder for the
same inputs, signer recoverable from the signature, calldata decodable."""

from __future__ import annotations

import hashlib
from typing import Any

import coincurve
import pytest
from eth_abi.abi import decode
from tronpy import Tron
from tronpy import keys as tron_keys
from tronpy.contract import Contract
from tronpy.proto import tron_pb2
from tronpy.providers import HTTPProvider

from kassa.chains.errors import InvalidTransaction
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.tx import (
    MAX_EXPIRATION_MS,
    SignedTronTransaction,
    sign_trc20_transfer,
    sign_trx_transfer,
    tron_address_for_key,
)

KEY = coincurve.PrivateKey(hashlib.sha256(b"kassa tron test key").digest())
RECIPIENT = parse_tron_address("TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH")
USDT = parse_tron_address("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")  # mainnet USDT-TRC20
REF_BLOCK_ID = "0000000003c5a1f2" + "7e4f0c3d9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d"
# Far in the future: tronpy's own sign() refuses transactions already expired by the wall
# clock, and the comparison builds below go through it.
NOW_MS = 4_102_444_800_000  # 2100-01-01
TRANSFER_ABI = [
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


def _tronpy_client() -> Any:
    # Offline builds never call the provider; a dead loopback URL makes a stray call fail fast.
    return Tron(provider=HTTPProvider("http://127.0.0.1:9"))


def _same_times(builder: Any) -> Any:
    # tronpy stamps the wall clock; pin its times to ours so the two builds are comparable.
    builder._raw_data["timestamp"] = NOW_MS
    builder._raw_data["expiration"] = NOW_MS + 60_000
    return builder


def _recovered_signer(signed: SignedTronTransaction) -> TronAddress:
    signature = bytes.fromhex(signed.payload()["signature"][0])
    public = coincurve.PublicKey.from_signature_and_message(
        signature, bytes.fromhex(signed.txid), hasher=None
    )
    return tron_address_for_key_public(public)


def tron_address_for_key_public(public: coincurve.PublicKey) -> TronAddress:
    from kassa.chains.tron.address import tron_address_for_public_key

    return tron_address_for_public_key(public.format(compressed=False))


def _raw_protobuf_hash(payload: dict[str, Any]) -> str:
    # Rebuild Transaction.raw field by field with the protobuf classes, independently of the
    # txID helper, and hash it as java-tron does.
    raw_data = payload["raw_data"]
    contract = raw_data["contract"][0]
    value = contract["parameter"]["value"]
    if contract["type"] == "TransferContract":
        inner = tron_pb2.TransferContract(
            owner_address=bytes.fromhex(value["owner_address"]),
            to_address=bytes.fromhex(value["to_address"]),
            amount=value["amount"],
        )
    else:
        inner = tron_pb2.TriggerSmartContract(
            owner_address=bytes.fromhex(value["owner_address"]),
            contract_address=bytes.fromhex(value["contract_address"]),
            data=bytes.fromhex(value["data"]),
        )
    message = tron_pb2.Transaction.raw(
        ref_block_bytes=bytes.fromhex(raw_data["ref_block_bytes"]),
        ref_block_hash=bytes.fromhex(raw_data["ref_block_hash"]),
        expiration=raw_data["expiration"],
        timestamp=raw_data["timestamp"],
    )
    entry = message.contract.add()
    entry.type = getattr(tron_pb2.Transaction.Contract.ContractType, contract["type"])
    entry.parameter.Pack(inner)
    entry.parameter.type_url = contract["parameter"]["type_url"]
    if "fee_limit" in raw_data:
        message.fee_limit = raw_data["fee_limit"]
    return hashlib.sha256(message.SerializeToString()).hexdigest()


def test_trx_transfer_equals_tronpys_offline_build() -> None:
    signed = sign_trx_transfer(
        KEY, to=RECIPIENT, amount_sun=1_500_000, ref_block_id=REF_BLOCK_ID, timestamp_ms=NOW_MS
    )
    sender = tron_address_for_key(KEY)
    reference = (
        _same_times(_tronpy_client().trx.transfer(sender.text, RECIPIENT.text, 1_500_000))
        .build(offline=True, ref_block_id=REF_BLOCK_ID)
        .sign(tron_keys.PrivateKey(KEY.secret))
        .to_json()
    )
    assert signed.payload() == reference
    assert signed.txid == reference["txID"]
    assert signed.expiration_ms == NOW_MS + 60_000
    assert signed.sender == sender
    assert _recovered_signer(signed) == sender
    assert _raw_protobuf_hash(signed.payload()) == signed.txid


def test_trc20_transfer_equals_tronpys_offline_build() -> None:
    signed = sign_trc20_transfer(
        KEY,
        token=USDT,
        to=RECIPIENT,
        amount=25_500_000,
        ref_block_id=REF_BLOCK_ID,
        timestamp_ms=NOW_MS,
        fee_limit_sun=30_000_000,
    )
    sender = tron_address_for_key(KEY)
    contract = Contract(addr=USDT.text, abi=TRANSFER_ABI, client=_tronpy_client())
    builder = contract.functions.transfer(RECIPIENT.text, 25_500_000).with_owner(sender.text)
    reference = (
        _same_times(builder.fee_limit(30_000_000))
        .build(offline=True, ref_block_id=REF_BLOCK_ID)
        .sign(tron_keys.PrivateKey(KEY.secret))
        .to_json()
    )
    assert signed.payload() == reference
    assert _recovered_signer(signed) == sender
    assert _raw_protobuf_hash(signed.payload()) == signed.txid

    value = signed.payload()["raw_data"]["contract"][0]["parameter"]["value"]
    data = bytes.fromhex(value["data"])
    assert data[:4] == bytes.fromhex("a9059cbb")
    to, amount = decode(["address", "uint256"], data[4:])
    assert bytes.fromhex(to[2:]) == RECIPIENT.evm_bytes
    assert amount == 25_500_000
    assert value["contract_address"] == USDT.hex


def test_reference_block_and_expiration() -> None:
    signed = sign_trx_transfer(
        KEY,
        to=RECIPIENT,
        amount_sun=1,
        ref_block_id=REF_BLOCK_ID.upper(),
        timestamp_ms=NOW_MS,
        expiration_ms=NOW_MS + 3_600_000,
    )
    raw_data = signed.payload()["raw_data"]
    assert raw_data["ref_block_bytes"] == REF_BLOCK_ID[12:16]
    assert raw_data["ref_block_hash"] == REF_BLOCK_ID[16:32]
    assert raw_data["expiration"] == signed.expiration_ms == NOW_MS + 3_600_000


def test_signing_is_deterministic() -> None:
    def sign() -> SignedTronTransaction:
        return sign_trx_transfer(
            KEY, to=RECIPIENT, amount_sun=5, ref_block_id=REF_BLOCK_ID, timestamp_ms=NOW_MS
        )

    assert sign() == sign()


ZERO = TronAddress.from_bytes(bytes(20))
OWN = tron_address_for_key(KEY)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"to": ZERO}, "zero address"),
        ({"to": OWN}, "its own sender"),
        ({"amount_sun": 0}, "amount_sun"),
        ({"ref_block_id": "abc"}, "64 hex"),
        ({"expiration_ms": NOW_MS}, "expiration_ms"),
        ({"expiration_ms": NOW_MS + MAX_EXPIRATION_MS + 1}, "expiration_ms"),
        ({"timestamp_ms": 0}, "timestamp_ms"),
    ],
)
def test_trx_refusals(kwargs: dict[str, Any], says: str) -> None:
    arguments: dict[str, Any] = {
        "to": RECIPIENT,
        "amount_sun": 1,
        "ref_block_id": REF_BLOCK_ID,
        "timestamp_ms": NOW_MS,
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidTransaction, match=says):
        sign_trx_transfer(KEY, **arguments)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"to": USDT}, "token contract itself"),
        ({"to": ZERO}, "zero address"),
        ({"amount": 0}, "token amount"),
        ({"fee_limit_sun": 0}, "fee_limit_sun"),
        ({"fee_limit_sun": 15_000_000_001}, "fee_limit_sun"),
    ],
)
def test_trc20_refusals(kwargs: dict[str, Any], says: str) -> None:
    arguments: dict[str, Any] = {
        "token": USDT,
        "to": RECIPIENT,
        "amount": 1,
        "ref_block_id": REF_BLOCK_ID,
        "timestamp_ms": NOW_MS,
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidTransaction, match=says):
        sign_trc20_transfer(KEY, **arguments)
