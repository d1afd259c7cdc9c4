"""Transactions: java-tron JSON in and out, the protobuf bytes that are hashed, signatures.

The canonical form of a transaction is the protobuf encoding of its `raw_data`
(`protocol.Transaction.raw`, see `wire`): the txID is the sha256 of those bytes, the signature
signs the txID, and a persisted chain stores those bytes.
JSON coming in is parsed into the typed `RawTransaction` below and re-encoded; the client's
`txID` field is never trusted, exactly as on java-tron.

Only the two contract types a payment gateway sends are modelled: `TransferContract` (TRX)
and `TriggerSmartContract` (TRC-20 calls). Memo (`raw_data.data`) and `Permission_id` are part
of the hash, so a memo transaction built offline by tronpy (which leaves the memo out of its
txID) is refused with SIGERROR here as it is on a real node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import coincurve

from kassa_dev.devnet.tron.codec import (
    AddressError,
    address_from_public_key,
    parse_address,
    parse_hex,
    render_address,
    sha256,
)
from kassa_dev.devnet.tron.wire import WireError, as_bytes, as_int64, decode, encode
from kassa_dev.devnet.tron.wire import length_delimited_size as field_size

TRANSFER_CONTRACT = "TransferContract"
TRIGGER_SMART_CONTRACT = "TriggerSmartContract"
TYPE_URL_PREFIX = "type.googleapis.com/protocol."
CONTRACT_TYPE_NUMBERS = {TRANSFER_CONTRACT: 1, TRIGGER_SMART_CONTRACT: 31}
"""`Transaction.Contract.ContractType` values of the two supported contracts."""
SIGNATURE_LENGTH = 65

JsonObject = dict[str, Any]


class MalformedTransaction(ValueError):
    """The transaction cannot be read: missing fields, bad hex, an unsupported contract type."""


@dataclass(frozen=True)
class TransferCall:
    """A TRX transfer (`TransferContract`)."""

    owner: bytes
    to: bytes
    amount: int
    """Sun."""


@dataclass(frozen=True)
class TriggerCall:
    """A smart-contract call (`TriggerSmartContract`)."""

    owner: bytes
    contract: bytes
    data: bytes
    """ABI call data: 4-byte selector then the arguments."""
    call_value: int = 0
    """Sun sent along with the call."""
    call_token_value: int = 0
    token_id: int = 0


Call = TransferCall | TriggerCall


@dataclass(frozen=True)
class RawTransaction:
    """`Transaction.raw`: what the txID hashes and the signature signs."""

    call: Call
    ref_block_bytes: bytes
    """Bytes 6..8 of the reference block id (the low 16 bits of its number)."""
    ref_block_hash: bytes
    """Bytes 8..16 of the reference block id (the start of its hash)."""
    expiration: int
    """Milliseconds since the epoch."""
    timestamp: int
    """Milliseconds since the epoch (set by the builder, informational)."""
    fee_limit: int = 0
    """Sun: the most the owner pays for energy."""
    data: bytes = b""
    """The memo."""
    permission_id: int = 0
    type_url: str = ""
    """The `Any.type_url` exactly as sent (it is part of the hashed bytes)."""

    @property
    def contract_type(self) -> str:
        return TRANSFER_CONTRACT if isinstance(self.call, TransferCall) else TRIGGER_SMART_CONTRACT

    @property
    def owner(self) -> bytes:
        return self.call.owner

    def effective_type_url(self) -> str:
        return self.type_url or TYPE_URL_PREFIX + self.contract_type

    def encode(self) -> bytes:
        """The `Transaction.raw` protobuf bytes: what the txID hashes."""
        call = self.call
        if isinstance(call, TransferCall):
            inner = encode([(1, call.owner), (2, call.to), (3, call.amount)])
        else:
            inner = encode(
                [
                    (1, call.owner),
                    (2, call.contract),
                    (3, call.call_value),
                    (4, call.data),
                    (5, call.call_token_value),
                    (6, call.token_id),
                ]
            )
        parameter = encode([(1, self.effective_type_url().encode()), (2, inner)])
        contract = encode(
            [
                (1, CONTRACT_TYPE_NUMBERS[self.contract_type]),
                (2, parameter),
                (5, self.permission_id),
            ]
        )
        return encode(
            [
                (1, self.ref_block_bytes),
                (4, self.ref_block_hash),
                (8, self.expiration),
                (10, self.data),
                (11, contract),
                (14, self.timestamp),
                (18, self.fee_limit),
            ]
        )

    def to_json(self, visible: bool) -> JsonObject:
        """java-tron's JSON for `raw_data`; proto3 zero values are left out, as java-tron does."""
        call = self.call
        value: JsonObject
        if isinstance(call, TransferCall):
            value = {
                "amount": call.amount,
                "owner_address": render_address(call.owner, visible),
                "to_address": render_address(call.to, visible),
            }
        else:
            value = {
                "data": call.data.hex(),
                "owner_address": render_address(call.owner, visible),
                "contract_address": render_address(call.contract, visible),
            }
            for key, number in (
                ("call_value", call.call_value),
                ("call_token_value", call.call_token_value),
                ("token_id", call.token_id),
            ):
                if number:
                    value[key] = number
        contract: JsonObject = {
            "parameter": {"value": value, "type_url": self.effective_type_url()},
            "type": self.contract_type,
        }
        if self.permission_id:
            contract["Permission_id"] = self.permission_id
        raw: JsonObject = {"contract": [contract]}
        if self.data:
            raw["data"] = self.data.hex()
        raw["ref_block_bytes"] = self.ref_block_bytes.hex()
        raw["ref_block_hash"] = self.ref_block_hash.hex()
        raw["expiration"] = self.expiration
        if self.fee_limit:
            raw["fee_limit"] = self.fee_limit
        raw["timestamp"] = self.timestamp
        return raw


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction as broadcast: the hashed raw bytes, their decoded view, the signatures."""

    raw: RawTransaction
    raw_bytes: bytes
    signatures: tuple[bytes, ...]

    @property
    def txid(self) -> str:
        return sha256(self.raw_bytes).hex()

    @property
    def txid_bytes(self) -> bytes:
        return sha256(self.raw_bytes)

    def serialized_size(self) -> int:
        """Bytes of the `Transaction` message (raw plus signatures): what bandwidth charges."""
        return field_size(len(self.raw_bytes)) + sum(
            field_size(len(signature)) for signature in self.signatures
        )

    def to_json(self, visible: bool, contract_ret: str | None = None) -> JsonObject:
        body: JsonObject = {}
        if contract_ret is not None:
            body["ret"] = [{"contractRet": contract_ret}]
        body["signature"] = [signature.hex() for signature in self.signatures]
        body["txID"] = self.txid
        body["raw_data"] = self.raw.to_json(visible)
        body["raw_data_hex"] = self.raw_bytes.hex()
        return body


def unsigned(raw: RawTransaction) -> SignedTransaction:
    return SignedTransaction(raw=raw, raw_bytes=raw.encode(), signatures=())


def _int(source: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = source.get(key, default)
    if isinstance(value, bool) or value is None:
        raise MalformedTransaction(f"{key} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise MalformedTransaction(f"{key} must be an integer")


def _address(source: Mapping[str, Any], key: str) -> bytes:
    try:
        return parse_address(source.get(key))
    except AddressError as error:
        raise MalformedTransaction(f"{key}: {error}") from error


def _bytes(source: Mapping[str, Any], key: str, default: str | None = None) -> bytes:
    value = source.get(key, default)
    try:
        return parse_hex(value, field=key)
    except ValueError as error:
        raise MalformedTransaction(str(error)) from error


def raw_from_json(raw_data: object) -> RawTransaction:
    """Parse java-tron's JSON `raw_data`; addresses may be base58check or `41…` hex."""
    if not isinstance(raw_data, Mapping):
        raise MalformedTransaction("raw_data must be an object")
    contracts = raw_data.get("contract")
    if not isinstance(contracts, Sequence) or len(contracts) != 1:
        raise MalformedTransaction("raw_data.contract must hold exactly one contract")
    contract = contracts[0]
    if not isinstance(contract, Mapping):
        raise MalformedTransaction("raw_data.contract[0] must be an object")
    contract_type = contract.get("type")
    parameter = contract.get("parameter")
    if not isinstance(parameter, Mapping) or not isinstance(parameter.get("value"), Mapping):
        raise MalformedTransaction("contract.parameter.value is missing")
    value: Mapping[str, Any] = parameter["value"]
    type_url = parameter.get("type_url", "")
    if not isinstance(type_url, str):
        raise MalformedTransaction("contract.parameter.type_url must be a string")
    call: Call
    if contract_type == TRANSFER_CONTRACT:
        call = TransferCall(
            owner=_address(value, "owner_address"),
            to=_address(value, "to_address"),
            amount=_int(value, "amount", 0),
        )
    elif contract_type == TRIGGER_SMART_CONTRACT:
        call = TriggerCall(
            owner=_address(value, "owner_address"),
            contract=_address(value, "contract_address"),
            data=_bytes(value, "data", ""),
            call_value=_int(value, "call_value", 0),
            call_token_value=_int(value, "call_token_value", 0),
            token_id=_int(value, "token_id", 0),
        )
    else:
        raise MalformedTransaction(
            f"contract type {contract_type!r} is not supported by the Kassa TRON simulator"
        )
    return RawTransaction(
        call=call,
        ref_block_bytes=_bytes(raw_data, "ref_block_bytes"),
        ref_block_hash=_bytes(raw_data, "ref_block_hash"),
        expiration=_int(raw_data, "expiration"),
        timestamp=_int(raw_data, "timestamp", 0),
        fee_limit=_int(raw_data, "fee_limit", 0),
        data=_bytes(raw_data, "data", ""),
        permission_id=_int(contract, "Permission_id", 0),
        type_url=type_url,
    )


def _last(fields: list[tuple[int, int | bytes]], number: int, default: int | bytes) -> int | bytes:
    """A scalar field's value; protobuf keeps the last one when a field repeats."""
    values = [value for field, value in fields if field == number]
    return values[-1] if values else default


def raw_from_bytes(raw_bytes: bytes) -> RawTransaction:
    """Decode `Transaction.raw` protobuf bytes (persisted chains, `broadcasthex`)."""
    try:
        raw = decode(raw_bytes)
        contracts = [as_bytes(value) for number, value in raw if number == 11]
        if len(contracts) != 1:
            raise MalformedTransaction("raw_data.contract must hold exactly one contract")
        contract = decode(contracts[0])
        type_number = as_int64(_last(contract, 1, 0))
        parameter = decode(as_bytes(_last(contract, 2, b"")))
        type_url = as_bytes(_last(parameter, 1, b"")).decode()
        inner = decode(as_bytes(_last(parameter, 2, b"")))
        call: Call
        if type_number == CONTRACT_TYPE_NUMBERS[TRANSFER_CONTRACT]:
            call = TransferCall(
                owner=as_bytes(_last(inner, 1, b"")),
                to=as_bytes(_last(inner, 2, b"")),
                amount=as_int64(_last(inner, 3, 0)),
            )
        elif type_number == CONTRACT_TYPE_NUMBERS[TRIGGER_SMART_CONTRACT]:
            call = TriggerCall(
                owner=as_bytes(_last(inner, 1, b"")),
                contract=as_bytes(_last(inner, 2, b"")),
                call_value=as_int64(_last(inner, 3, 0)),
                data=as_bytes(_last(inner, 4, b"")),
                call_token_value=as_int64(_last(inner, 5, 0)),
                token_id=as_int64(_last(inner, 6, 0)),
            )
        else:
            raise MalformedTransaction(
                f"contract type {type_number} is not supported by the Kassa TRON simulator"
            )
        return RawTransaction(
            call=call,
            ref_block_bytes=as_bytes(_last(raw, 1, b"")),
            ref_block_hash=as_bytes(_last(raw, 4, b"")),
            expiration=as_int64(_last(raw, 8, 0)),
            timestamp=as_int64(_last(raw, 14, 0)),
            fee_limit=as_int64(_last(raw, 18, 0)),
            data=as_bytes(_last(raw, 10, b"")),
            permission_id=as_int64(_last(contract, 5, 0)),
            type_url=type_url,
        )
    except (WireError, UnicodeDecodeError) as error:
        raise MalformedTransaction(
            f"raw_data is not a protobuf Transaction.raw: {error}"
        ) from error


def signed_from_json(body: Mapping[str, Any]) -> SignedTransaction:
    """A broadcast body: `{raw_data, signature: [hex…], txID?, raw_data_hex?}`.

    The txID is recomputed from `raw_data`. When the client also sends `raw_data_hex` it must
    encode the same transaction: a client that changed one but not the other has signed
    something other than what it shows.
    """
    raw = raw_from_json(body.get("raw_data"))
    raw_bytes = raw.encode()
    sent_hex = body.get("raw_data_hex")
    if sent_hex is not None and _bytes(body, "raw_data_hex") != raw_bytes:
        raise TamperedTransaction("raw_data_hex does not encode raw_data")
    signatures = body.get("signature") or []
    if not isinstance(signatures, Sequence) or isinstance(signatures, str):
        raise MalformedTransaction("signature must be a list of hex strings")
    decoded = tuple(parse_signature(signature) for signature in signatures)
    return SignedTransaction(raw=raw, raw_bytes=raw_bytes, signatures=decoded)


def signed_from_bytes(transaction_bytes: bytes) -> SignedTransaction:
    """A whole `protocol.Transaction` in protobuf bytes (`broadcasthex`). The raw data keeps
    the sender's exact bytes: they are what was hashed and signed."""
    try:
        fields = decode(transaction_bytes)
        raw_bytes = as_bytes(_last(fields, 1, b""))
        signatures = tuple(as_bytes(value) for number, value in fields if number == 2)
    except WireError as error:
        raise MalformedTransaction(f"not a protobuf Transaction: {error}") from error
    return SignedTransaction(
        raw=raw_from_bytes(raw_bytes), raw_bytes=raw_bytes, signatures=signatures
    )


class TamperedTransaction(MalformedTransaction):
    """The presented transaction differs from the bytes that were signed."""


def parse_signature(value: object) -> bytes:
    try:
        return parse_hex(value, field="signature")
    except ValueError as error:
        raise MalformedTransaction(str(error)) from error


def recover_signer(message_hash: bytes, signature: bytes) -> bytes | None:
    """The address whose key made `signature` over `message_hash`, or None if unrecoverable.

    TRON signatures are 65 bytes `r ‖ s ‖ v`; wallets write `v` as 0/1 or as 27/28.
    """
    if len(signature) != SIGNATURE_LENGTH:
        return None
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        return None
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), message_hash, hasher=None
        )
    except Exception:  # coincurve raises ValueError or a bare Exception for bad input
        return None
    return address_from_public_key(public_key.format(compressed=False))
