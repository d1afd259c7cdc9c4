"""A small typed client of java-tron's HTTP API: the reads a deposit scanner needs, and what the
payout rail needs to price, send and follow a transaction (accounts and their bandwidth and energy,
chain parameters, constant contract calls and energy estimates, broadcast, receipts, the pool).

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
    "BroadcastResult",
    "ConstantCallResult",
    "NodeInfo",
    "OtherContract",
    "TransferContract",
    "TriggerSmartContract",
    "TronAccount",
    "TronAccountResources",
    "TronApi",
    "TronApiError",
    "TronBlock",
    "TronCallRefused",
    "TronLog",
    "TronNodeError",
    "TronReceipt",
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


class TronCallRefused(TronApiError):
    """The node would not run a contract call: its ``result.code`` (a validation error, a revert
    found by ``estimateenergy``, or ``estimateenergy`` switched off on this node)."""

    code = "tron_call_refused"
    title = "TRON node refused the contract call"

    def __init__(self, response_code: str, message: str, *, path: str) -> None:
        super().__init__(f"{response_code}: {message}", path=path)
        self.response_code = response_code
        self.message = message


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


@dataclass(frozen=True, slots=True)
class TronAccount:
    """``getaccount``: what a payout needs to know of an account."""

    address: TronAddress
    balance: int
    """Sun."""
    is_contract: bool
    create_time_ms: int


@dataclass(frozen=True, slots=True)
class TronAccountResources:
    """``wallet/getaccountresource``: the account's bandwidth and energy, usage recovered to the
    head block (java-tron applies the 24-hour recovery before answering)."""

    free_net_limit: int
    """The free daily bandwidth every account has (bytes)."""
    free_net_used: int
    net_limit: int
    """Bandwidth from staked TRX (bytes)."""
    net_used: int
    energy_limit: int
    """Energy from staked TRX."""
    energy_used: int

    @property
    def free_net_left(self) -> int:
        return max(0, self.free_net_limit - self.free_net_used)

    @property
    def net_left(self) -> int:
        return max(0, self.net_limit - self.net_used)

    @property
    def energy_left(self) -> int:
        return max(0, self.energy_limit - self.energy_used)


@dataclass(frozen=True, slots=True)
class TronReceipt:
    """``gettransactioninfobyid`` in full: where a transaction is and what it cost."""

    info: TronTransactionInfo
    fee: int
    """Sun burned in total: bandwidth, energy and account creation."""
    net_usage: int
    """Bandwidth bytes paid from free or staked bandwidth."""
    net_fee: int
    energy_usage_total: int
    energy_fee: int
    result_message: str
    """``resMessage`` as text: why a failed call failed; empty otherwise."""


@dataclass(frozen=True, slots=True)
class ConstantCallResult:
    """``triggerconstantcontract``: a contract call run on the head state without a
    transaction."""

    energy_used: int
    """The energy a transaction making this call would consume, java-tron's dynamic-energy
    penalty included."""
    energy_penalty: int
    """The part of ``energy_used`` that is the penalty of heavily used contracts."""
    output: bytes
    reverted: bool
    message: str


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """``broadcasttransaction``'s answer."""

    accepted: bool
    code: str
    """``SUCCESS`` when accepted, else java-tron's response code (``SIGERROR``,
    ``DUP_TRANSACTION_ERROR``, ``TRANSACTION_EXPIRATION_ERROR``, ``CONTRACT_VALIDATE_ERROR``, …)."""
    message: str
    """The node's reason as text."""


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


def _message(value: Json) -> str:
    """java-tron prints a ``Return.message`` (bytes) as hex of UTF-8; show it as text."""
    if not isinstance(value, str):
        return ""
    try:
        return bytes.fromhex(value).decode("utf-8")
    except ValueError:
        return value


def _receipt(reader: _Reader) -> TronReceipt:
    receipt = reader.child("receipt", optional=True)
    return TronReceipt(
        info=_transaction_info(reader),
        fee=reader.integer("fee", 0),
        net_usage=receipt.integer("net_usage", 0),
        net_fee=receipt.integer("net_fee", 0),
        energy_usage_total=receipt.integer("energy_usage_total", 0),
        energy_fee=receipt.integer("energy_fee", 0),
        result_message=_message(reader.data.get("resMessage")),
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

    def _post_content(self, path: str, content: bytes) -> Json:
        """POST ``content`` exactly as given (no ``visible`` added): for a signed transaction,
        whose stored JSON must reach the node byte for byte. Errors as `post`."""
        try:
            response = self._client.post(
                f"{self.url}/{path}", content=content, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as error:
            raise TronTransportError(f"{type(error).__name__}: {error}", path=path) from error
        if response.status_code != httpx.codes.OK:
            raise TronTransportError(
                f"HTTP {response.status_code}: {response.text[:200]!r}",
                path=path,
                status_code=response.status_code,
            )
        try:
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

    # -- payouts ---------------------------------------------------------------------------

    def account(self, address: TronAddress, *, solid: bool = False) -> TronAccount | None:
        """``getaccount`` as of the head (or, with ``solid``, the solidified) block; None for an
        account that does not exist yet (never received TRX)."""
        path = "walletsolidity/getaccount" if solid else "wallet/getaccount"
        reader = self._object(path, {"address": address.text})
        if reader is None:
            return None
        found = reader.address("address")
        if found != address:
            raise TronUnexpectedAnswer(f"asked for {address}, got {found}", path=path)
        return TronAccount(
            address=found,
            balance=reader.integer("balance", 0),
            is_contract=reader.data.get("type") == "Contract",
            create_time_ms=reader.integer("create_time", 0),
        )

    def account_resources(self, address: TronAddress) -> TronAccountResources | None:
        """``wallet/getaccountresource``; None for an account that does not exist."""
        reader = self._object("wallet/getaccountresource", {"address": address.text})
        if reader is None:
            return None
        return TronAccountResources(
            free_net_limit=reader.integer("freeNetLimit", 0),
            free_net_used=reader.integer("freeNetUsed", 0),
            net_limit=reader.integer("NetLimit", 0),
            net_used=reader.integer("NetUsed", 0),
            energy_limit=reader.integer("EnergyLimit", 0),
            energy_used=reader.integer("EnergyUsed", 0),
        )

    def chain_parameters(self) -> dict[str, int]:
        """``wallet/getchainparameters`` as a mapping (``getTransactionFee``, ``getEnergyFee``,
        ``getCreateAccountFee``, …); a parameter printed without a value is 0."""
        path = "wallet/getchainparameters"
        reader = self._object(path)
        if reader is None:
            raise TronUnexpectedAnswer("no chain parameters", path=path)
        return {
            item.text("key"): item.integer("value", 0) for item in reader.items("chainParameter")
        }

    def _call_body(
        self, owner: TronAddress, contract: TronAddress, function_selector: str, parameter: bytes
    ) -> dict[str, Json]:
        return {
            "owner_address": owner.text,
            "contract_address": contract.text,
            "function_selector": function_selector,
            "parameter": parameter.hex(),
        }

    def trigger_constant(
        self, owner: TronAddress, contract: TronAddress, function_selector: str, parameter: bytes
    ) -> ConstantCallResult:
        """``wallet/triggerconstantcontract``: run ``function_selector(parameter)`` from
        ``owner`` on the head state. A revert is a result (``reverted``), not an error; a call
        the node will not run at all raises `TronCallRefused`."""
        path = "wallet/triggerconstantcontract"
        reader = self._object(path, self._call_body(owner, contract, function_selector, parameter))
        if reader is None:
            raise TronUnexpectedAnswer("empty answer", path=path)
        result = reader.child("result", optional=True)
        code = result.data.get("code")
        if code is not None and code != "SUCCESS":
            raise TronCallRefused(str(code), _message(result.data.get("message")), path=path)
        rets = reader.child("transaction", optional=True).items("ret")
        outputs = reader.hex_list("constant_result")
        return ConstantCallResult(
            energy_used=reader.integer("energy_used", 0),
            energy_penalty=reader.integer("energy_penalty", 0),
            output=outputs[0] if outputs else b"",
            reverted=bool(rets) and rets[0].data.get("ret") == "FAILED",
            message=_message(result.data.get("message")),
        )

    def estimate_energy(
        self, owner: TronAddress, contract: TronAddress, function_selector: str, parameter: bytes
    ) -> int:
        """``wallet/estimateenergy``: the energy a transaction making this call needs. Raises
        `TronCallRefused` when the call would revert or the node does not offer the estimate
        (java-tron's ``vm.estimateEnergy`` is off by default)."""
        path = "wallet/estimateenergy"
        reader = self._object(path, self._call_body(owner, contract, function_selector, parameter))
        if reader is None:
            raise TronUnexpectedAnswer("empty answer", path=path)
        result = reader.child("result", optional=True)
        if result.data.get("result") is not True:
            raise TronCallRefused(
                str(result.data.get("code", "")), _message(result.data.get("message")), path=path
            )
        return reader.integer("energy_required")

    def trc20_balance(self, contract: TronAddress, holder: TronAddress) -> int:
        """``balanceOf(holder)`` of a TRC-20 token, in its minor units, as of the head block."""
        path = "wallet/triggerconstantcontract"
        call = self.trigger_constant(
            holder, contract, "balanceOf(address)", bytes(12) + holder.evm_bytes
        )
        if call.reverted or len(call.output) != 32:
            raise TronUnexpectedAnswer(
                f"balanceOf({holder}) on {contract} did not return a uint256", path=path
            )
        return int.from_bytes(call.output, "big")

    def broadcast(self, transaction_json: str) -> BroadcastResult:
        """``wallet/broadcasttransaction`` of a signed transaction's JSON, sent as is."""
        path = "wallet/broadcasttransaction"
        reader = _Reader(self._post_content(path, transaction_json.encode()), path, "answer")
        if reader.data.get("result") is True:
            return BroadcastResult(accepted=True, code="SUCCESS", message="")
        code = reader.data.get("code")
        if not isinstance(code, str):
            raise reader.problem("code", "a response code")
        return BroadcastResult(
            accepted=False, code=code, message=_message(reader.data.get("message"))
        )

    def transaction_info(self, txid: str, *, solid: bool = False) -> TronReceipt | None:
        """``gettransactioninfobyid`` from the head (or, with ``solid``, only from solidified
        blocks); None while the transaction is in no such block."""
        path = "walletsolidity/gettransactioninfobyid" if solid else "wallet/gettransactioninfobyid"
        reader = self._object(path, {"value": txid})
        if reader is None:
            return None
        receipt = _receipt(reader)
        if receipt.info.txid != txid.lower():
            raise TronUnexpectedAnswer(f"asked for {txid}, got {receipt.info.txid}", path=path)
        return receipt

    def pending_transaction(self, txid: str) -> TronTransaction | None:
        """``wallet/gettransactionfrompending``: the transaction while it waits in the node's
        pool; None when the pool does not hold it (in a block, dropped, or never received)."""
        path = "wallet/gettransactionfrompending"
        reader = self._object(path, {"value": txid})
        return None if reader is None else _transaction(reader)
