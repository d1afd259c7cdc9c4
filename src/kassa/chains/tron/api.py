"""A small typed client of java-tron's HTTP API: the reads a deposit scanner needs.

Design:
* Every call is ``POST <base>/<path>`` with a JSON body carrying ``"visible": true``, so
  addresses come back as ``T…`` Base58Check. java-tron answers HTTP 200 even for failures and
  says so in the body; this client turns the three ways a call goes wrong into typed errors:
  `TronTransportError` (no usable HTTP answer: refused, timed out, a non-200 status, not JSON),
  `TronNodeError` (the node's ``{"Error": …}`` body) and `TronUnexpectedAnswer` (JSON of a shape
  java-tron does not give). ``{}`` is java-tron's "not found" and becomes ``None``.
* Answers are decoded into frozen dataclasses with exact ``int``s: JSON numbers are read as
  ``int`` (a fraction or a float is refused), and numbers quoted as decimal strings (proto3's
  canonical JSON for 64-bit fields) are accepted. Amounts are sun or token minor units.
* Only what a scanner reads is decoded; other contract types of a transaction are kept as
  `OtherContract` with their type name, so unfamiliar transactions never stop a scan.
* Address fields are accepted in every spelling java-tron uses: ``T…``, ``41…`` hex and, for
  log addresses, the 20-byte EVM hex (a real node converts log addresses to ``T…`` when
  ``visible`` is true; the 20-byte form is what it prints otherwise).
* The solidified-block API (``/walletsolidity/*``) is served on a separate port by a
  self-hosted java-tron (8091 next to the full node's 8090); ``solidity_url`` points there and
  defaults to the full node's URL, where TronGrid and Kassa's simulator serve both.
The client is synchronous: the watcher that uses it runs in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Self

import httpx

from kassa.chains.errors import InvalidAddress
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.errors import KassaError

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "NodeInfo",
    "OtherContract",
    "TransferContract",
    "TriggerSmartContract",
    "TronApi",
    "TronApiError",
    "TronBlock",
    "TronLog",
    "TronNodeError",
    "TronTransaction",
    "TronTransactionInfo",
    "TronTransportError",
    "TronUnexpectedAnswer",
]

DEFAULT_TIMEOUT_SECONDS = 10.0

Json = object
"""A decoded JSON value, narrowed by the readers below before use."""


# ---------------------------------------------------------------------------------- errors


class TronApiError(KassaError):
    """A java-tron HTTP API call failed; ``path`` names the endpoint."""

    code = "tron_api_error"
    title = "TRON node request failed"

    def __init__(self, detail: str, *, path: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


class TronTransportError(TronApiError):
    """No usable HTTP answer: connection refused or reset, timeout, non-200 status, not JSON."""

    code = "tron_node_unreachable"
    title = "TRON node unreachable"

    def __init__(self, detail: str, *, path: str, status_code: int | None = None) -> None:
        super().__init__(detail, path=path)
        self.status_code = status_code


class TronNodeError(TronApiError):
    """The node answered ``{"Error": …}``: it could not serve the request as sent."""

    code = "tron_node_error"
    title = "TRON node refused the request"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"the node says: {message}", path=path)
        self.message = message


class TronUnexpectedAnswer(TronApiError):
    """The answer is JSON, but not of a shape java-tron gives for this endpoint."""

    code = "tron_unexpected_answer"
    title = "Unexpected answer from the TRON node"


# ---------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class TransferContract:
    """A TRX transfer. ``amount`` is sun."""

    owner: TronAddress
    to: TronAddress
    amount: int


@dataclass(frozen=True, slots=True)
class TriggerSmartContract:
    """A smart-contract call. ``call_value`` is sun sent along with the call."""

    owner: TronAddress
    contract: TronAddress
    data: bytes
    call_value: int


@dataclass(frozen=True, slots=True)
class OtherContract:
    """Any other contract type (staking, votes, TRC-10, …), known by its type name only."""

    type: str


Contract = TransferContract | TriggerSmartContract | OtherContract


@dataclass(frozen=True, slots=True)
class TronTransaction:
    txid: str
    """64 lowercase hex digits."""
    contract_ret: str | None
    """``ret[0].contractRet`` (``SUCCESS``, ``REVERT``, ``OUT_OF_ENERGY``, …); None if absent."""
    contracts: tuple[Contract, ...]
    """java-tron allows exactly one contract per transaction; kept as a tuple as printed."""


@dataclass(frozen=True, slots=True)
class TronBlock:
    number: int
    block_id: str
    """The block id (``blockID``): 8 bytes of the number, then 24 bytes of the header hash."""
    parent_id: str
    timestamp_ms: int
    """Milliseconds since the epoch (0 for the genesis block, which java-tron prints without)."""
    transactions: tuple[TronTransaction, ...]


@dataclass(frozen=True, slots=True)
class TronLog:
    address: TronAddress
    """The emitting contract."""
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class TronTransactionInfo:
    txid: str
    block_number: int
    block_timestamp_ms: int
    """The including block's timestamp (milliseconds since the epoch)."""
    receipt_result: str | None
    """``receipt.result`` of a contract call (``SUCCESS``, ``REVERT``, …); None for plain
    transfers, which have no contract result."""
    failed: bool
    """java-tron's top-level ``result: "FAILED"``."""
    logs: tuple[TronLog, ...]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    head_number: int
    head_id: str
    solid_number: int
    solid_id: str


# ---------------------------------------------------------------------------------- reading


class _Reader:
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

    def child(self, key: str, *, optional: bool = False) -> _Reader:
        value = self.data.get(key)
        if value is None and optional:
            value = {}
        return _Reader(value, self.path, f"{self.where}.{key}")

    def items(self, key: str) -> list[_Reader]:
        """The objects of a list field; a missing list is empty (proto3 leaves empty lists out)."""
        value = self.data.get(key, [])
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise self.problem(key, "a list")
        return [
            _Reader(item, self.path, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)
        ]

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


def _contract(reader: _Reader) -> Contract:
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


def _transaction(reader: _Reader) -> TronTransaction:
    rets = reader.items("ret")
    contract_ret = rets[0].optional_text("contractRet") if rets else None
    raw = reader.child("raw_data")
    return TronTransaction(
        txid=reader.hex_bytes("txID", length=32).hex(),
        contract_ret=contract_ret,
        contracts=tuple(_contract(item) for item in raw.items("contract")),
    )


def _block(reader: _Reader) -> TronBlock:
    header = reader.child("block_header").child("raw_data")
    return TronBlock(
        number=header.integer("number", 0),
        block_id=reader.block_id("blockID"),
        parent_id=header.block_id("parentHash"),
        timestamp_ms=header.integer("timestamp", 0),
        transactions=tuple(_transaction(item) for item in reader.items("transactions")),
    )


def _transaction_info(reader: _Reader) -> TronTransactionInfo:
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


def _block_reference(reader: _Reader, key: str) -> tuple[int, str]:
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


# ---------------------------------------------------------------------------------- client


class TronApi:
    """The java-tron endpoints a deposit scanner reads. Close it (or use ``with``) when done."""

    def __init__(
        self,
        url: str,
        *,
        solidity_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.solidity_url = (solidity_url or url).rstrip("/")
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def post(self, path: str, body: Mapping[str, Json] | None = None) -> Json:
        """POST `body` (plus ``visible: true``) to ``<base>/<path>``; the decoded JSON answer.

        Raises `TronTransportError` without a usable answer and `TronNodeError` for an
        ``{"Error": …}`` body. ``/walletsolidity/*`` goes to `solidity_url`.
        """
        path = path.strip("/")
        base = self.solidity_url if path.startswith("walletsolidity/") else self.url
        payload = {**(body or {}), "visible": True}
        try:
            response = self._client.post(f"{base}/{path}", json=payload)
        except httpx.HTTPError as error:
            raise TronTransportError(f"{type(error).__name__}: {error}", path=path) from error
        if response.status_code != httpx.codes.OK:
            raise TronTransportError(
                f"HTTP {response.status_code}: {response.text[:200]!r}",
                path=path,
                status_code=response.status_code,
            )
        try:
            # Decimal for fractions: nothing here is a float, and a float must not slip in
            # as an int-looking value.
            data: Json = json.loads(response.content, parse_float=Decimal)
        except ValueError as error:
            raise TronTransportError(f"the answer is not JSON: {error}", path=path) from error
        if isinstance(data, Mapping) and "Error" in data:
            raise TronNodeError(str(data["Error"]), path=path)
        return data

    def _object(self, path: str, body: Mapping[str, Json] | None = None) -> _Reader | None:
        """An endpoint answering one object, or ``{}`` for "not found" (None)."""
        data = self.post(path, body)
        reader = _Reader(data, path, "answer")
        return None if not reader.data else reader

    # -- endpoints -------------------------------------------------------------------------

    def now_block(self) -> TronBlock:
        """``wallet/getnowblock``: the head block."""
        return self._required_block("wallet/getnowblock")

    def solid_now_block(self) -> TronBlock:
        """``walletsolidity/getnowblock``: the newest solidified (irreversible) block."""
        return self._required_block("walletsolidity/getnowblock")

    def _required_block(self, path: str) -> TronBlock:
        reader = self._object(path)
        if reader is None:
            raise TronUnexpectedAnswer("the node has no block at all", path=path)
        return _block(reader)

    def block_by_num(self, number: int) -> TronBlock | None:
        """``wallet/getblockbynum``; None when the node has no such block (above the head)."""
        path = "wallet/getblockbynum"
        reader = self._object(path, {"num": number})
        if reader is None:
            return None
        block = _block(reader)
        if block.number != number:
            raise TronUnexpectedAnswer(f"asked for block {number}, got {block.number}", path=path)
        return block

    def transaction_infos_by_block_num(self, number: int) -> tuple[TronTransactionInfo, ...]:
        """``wallet/gettransactioninfobyblocknum``: the receipts (with logs) of a block's
        transactions. Empty for a block without transactions, and for one the node does not
        have (java-tron answers both with ``[]``; ``{}`` for numbers below 1)."""
        path = "wallet/gettransactioninfobyblocknum"
        data = self.post(path, {"num": number})
        if isinstance(data, Mapping) and not data:
            return ()
        if not isinstance(data, list):
            raise TronUnexpectedAnswer("the answer is not a list of transaction infos", path=path)
        infos = tuple(
            _transaction_info(_Reader(item, path, f"answer[{i}]")) for i, item in enumerate(data)
        )
        for info in infos:
            if info.block_number != number:
                raise TronUnexpectedAnswer(
                    f"asked for block {number}, got the receipt of {info.txid} "
                    f"in block {info.block_number}",
                    path=path,
                )
        return infos

    def node_info(self) -> NodeInfo:
        """``wallet/getnodeinfo``: the node's head and solidified block."""
        path = "wallet/getnodeinfo"
        reader = self._object(path)
        if reader is None:
            raise TronUnexpectedAnswer("empty node info", path=path)
        head_number, head_id = _block_reference(reader, "block")
        solid_number, solid_id = _block_reference(reader, "solidityBlock")
        return NodeInfo(head_number, head_id, solid_number, solid_id)
