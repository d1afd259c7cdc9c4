"""Decoding java-tron's JSON answers into `kassa.chains.tron.api_model`, strictly.

Why strict: a payout is priced and a deposit credited from these figures, so a value of a shape
java-tron does not give is refused (`TronUnexpectedAnswer`, naming the endpoint and the field)
rather than guessed at:
* JSON numbers are read as ``int`` (a fraction or a float is refused; the client parses
  fractions as `Decimal` so none slips in looking like an int), and numbers quoted as decimal
  strings (proto3's canonical JSON for 64-bit fields) are accepted. A missing number is 0 and a
  missing list is empty: proto3 leaves both out.
* Address fields are accepted in every spelling java-tron uses: ``T…``, ``41…`` hex and, for
  log addresses, the 20-byte EVM hex (a real node converts log addresses to ``T…`` when
  ``visible`` is true; the 20-byte form is what it prints otherwise).
* Only what a scanner reads is decoded; other contract types of a transaction become
  `OtherContract` with their type name, so unfamiliar transactions never stop a scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kassa.chains.errors import InvalidAddress
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api_errors import TronUnexpectedAnswer
from kassa.chains.tron.api_model import (
    Contract,
    OtherContract,
    TransferContract,
    TriggerSmartContract,
    TronBlock,
    TronLog,
    TronReceipt,
    TronTransaction,
    TronTransactionInfo,
)

__all__ = [
    "Json",
    "Reader",
    "decode_block",
    "decode_block_reference",
    "decode_message",
    "decode_receipt",
    "decode_transaction",
    "decode_transaction_info",
]

Json = object
"""A decoded JSON value, narrowed by the readers below before use."""


class Reader:
    """Typed access to one JSON object of one endpoint's answer; shape errors name both."""

    def __init__(self, data: Json, path: str, where: str) -> None:
        if not isinstance(data, Mapping):
            raise TronUnexpectedAnswer(f"{where} is not a JSON object", path=path)
        self.data: Mapping[str, Json] = data
        self.path = path
        self.where = where

    def problem(self, key: str, expected: str) -> TronUnexpectedAnswer:
        value = repr(self.data.get(key))[:80]
        return TronUnexpectedAnswer(
            f"{self.where}.{key} should be {expected}, not {value}", path=self.path
        )

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key)
        if value is None and default is not None:
            # proto3 JSON leaves zero numbers out: a missing number is 0.
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
            return int(value)
        raise self.problem(key, "an integer")

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self.problem(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def hex_bytes(self, key: str, *, length: int | None = None) -> bytes:
        value = self.data.get(key, "")
        if not isinstance(value, str):
            raise self.problem(key, "hex")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise self.problem(key, "hex") from None
        if length is not None and len(raw) != length:
            raise self.problem(key, f"{length} bytes of hex")
        return raw

    def block_id(self, key: str) -> str:
        return self.hex_bytes(key, length=32).hex()

    def address(self, key: str) -> TronAddress:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self.problem(key, "a TRON address")
        try:
            return parse_tron_address(value)
        except InvalidAddress:
            raise self.problem(key, "a TRON address") from None

    def log_address(self, key: str) -> TronAddress:
        value = self.data.get(key)
        # Without `visible` java-tron prints a log's address as the 20-byte EVM address.
        if isinstance(value, str) and len(value) == 40:
            try:
                return TronAddress.from_bytes(bytes.fromhex(value))
            except ValueError:
                raise self.problem(key, "a contract address") from None
        return self.address(key)

    def child(self, key: str, *, optional: bool = False) -> Reader:
        value = self.data.get(key)
        if value is None and optional:
            value = {}
        return Reader(value, self.path, f"{self.where}.{key}")

    def items(self, key: str) -> list[Reader]:
        """The objects of a list field; a missing list is empty (proto3 leaves empty lists out)."""
        value = self.data.get(key, [])
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise self.problem(key, "a list")
        return [Reader(item, self.path, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)]

    def hex_list(self, key: str) -> tuple[bytes, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise self.problem(key, "a list of hex strings")
        out = []
        for item in value:
            if not isinstance(item, str):
                raise self.problem(key, "a list of hex strings")
            try:
                out.append(bytes.fromhex(item))
            except ValueError:
                raise self.problem(key, "a list of hex strings") from None
        return tuple(out)


def _contract(reader: Reader) -> Contract:
    kind = reader.text("type")
    if kind not in ("TransferContract", "TriggerSmartContract"):
        return OtherContract(kind)
    value = reader.child("parameter").child("value")
    if kind == "TransferContract":
        return TransferContract(
            owner=value.address("owner_address"),
            to=value.address("to_address"),
            amount=value.integer("amount", 0),
        )
    return TriggerSmartContract(
        owner=value.address("owner_address"),
        contract=value.address("contract_address"),
        data=value.hex_bytes("data"),
        call_value=value.integer("call_value", 0),
    )


def decode_transaction(reader: Reader) -> TronTransaction:
    rets = reader.items("ret")
    contract_ret = rets[0].optional_text("contractRet") if rets else None
    raw = reader.child("raw_data")
    return TronTransaction(
        txid=reader.hex_bytes("txID", length=32).hex(),
        contract_ret=contract_ret,
        contracts=tuple(_contract(item) for item in raw.items("contract")),
    )


def decode_block(reader: Reader) -> TronBlock:
    header = reader.child("block_header").child("raw_data")
    return TronBlock(
        number=header.integer("number", 0),
        block_id=reader.block_id("blockID"),
        parent_id=header.block_id("parentHash"),
        timestamp_ms=header.integer("timestamp", 0),
        transactions=tuple(decode_transaction(item) for item in reader.items("transactions")),
    )


def decode_transaction_info(reader: Reader) -> TronTransactionInfo:
    receipt = reader.child("receipt", optional=True)
    result = reader.optional_text("result")
    return TronTransactionInfo(
        txid=reader.hex_bytes("id", length=32).hex(),
        block_number=reader.integer("blockNumber", 0),
        block_timestamp_ms=reader.integer("blockTimeStamp", 0),
        receipt_result=receipt.optional_text("result"),
        failed=result == "FAILED",
        logs=tuple(
            TronLog(
                address=log.log_address("address"),
                topics=log.hex_list("topics"),
                data=log.hex_bytes("data"),
            )
            for log in reader.items("log")
        ),
    )


def decode_message(value: Json) -> str:
    """java-tron prints a ``Return.message`` (bytes) as hex of UTF-8; show it as text."""
    if not isinstance(value, str):
        return ""
    try:
        return bytes.fromhex(value).decode("utf-8")
    except ValueError:
        return value


def decode_receipt(reader: Reader) -> TronReceipt:
    receipt = reader.child("receipt", optional=True)
    return TronReceipt(
        info=decode_transaction_info(reader),
        fee=reader.integer("fee", 0),
        net_usage=receipt.integer("net_usage", 0),
        net_fee=receipt.integer("net_fee", 0),
        energy_usage_total=receipt.integer("energy_usage_total", 0),
        energy_fee=receipt.integer("energy_fee", 0),
        result_message=decode_message(reader.data.get("resMessage")),
    )


def decode_block_reference(reader: Reader, key: str) -> tuple[int, str]:
    """getnodeinfo's ``"Num:<n>,ID:<64 hex>"``."""
    text = reader.text(key)
    number, sep, block_id = text.partition(",ID:")
    if not (sep and number.startswith("Num:") and number[4:].isdigit()):
        raise reader.problem(key, '"Num:<n>,ID:<block id>"')
    try:
        if len(bytes.fromhex(block_id)) != 32:
            raise ValueError(block_id)
    except ValueError:
        raise reader.problem(key, '"Num:<n>,ID:<block id>"') from None
    return int(number[4:]), block_id.lower()
