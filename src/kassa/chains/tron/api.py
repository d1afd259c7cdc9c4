"""A small typed client of java-tron's HTTP API: the reads a deposit scanner needs, and what the
payout rail needs to price, send and follow a transaction (accounts and their bandwidth and energy,
chain parameters, constant contract calls and energy estimates, broadcast, receipts, the pool).

Design:
* Every call is ``POST <base>/<path>`` with a JSON body carrying ``"visible": true``, so
  addresses come back as ``T…`` Base58Check. java-tron answers HTTP 200 even for failures and
  says so in the body; this client turns the three ways a call goes wrong into typed errors
  (`kassa.chains.tron.api_errors`): `TronTransportError` (no usable HTTP answer: refused, timed
  out, a non-200 status, not JSON), `TronNodeError` (the node's ``{"Error": …}`` body) and
  `TronUnexpectedAnswer` (JSON of a shape java-tron does not give). ``{}`` is java-tron's "not
  found" and becomes ``None``.
* Answers are decoded strictly (`kassa.chains.tron.api_decode`) into the frozen dataclasses of
  `kassa.chains.tron.api_model`, with exact ``int``s: amounts are sun or token minor units.
* The solidified-block API (``/walletsolidity/*``) is served on a separate port by a
  self-hosted java-tron (8091 next to the full node's 8090); ``solidity_url`` points there and
  defaults to the full node's URL, where TronGrid and Kassa's simulator serve both.
The client is synchronous: the watcher that uses it runs in a worker thread.

Every name of the errors and the model is importable from here too, where callers find them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Self

import httpx

from kassa.chains.tron.address import TronAddress
from kassa.chains.tron.api_decode import (
    Json,
    Reader,
    decode_block,
    decode_block_reference,
    decode_message,
    decode_receipt,
    decode_transaction,
    decode_transaction_info,
)
from kassa.chains.tron.api_errors import (
    TronApiError,
    TronCallRefused,
    TronNodeError,
    TronTransportError,
    TronUnexpectedAnswer,
)
from kassa.chains.tron.api_model import (
    BroadcastResult,
    ConstantCallResult,
    NodeInfo,
    OtherContract,
    TransferContract,
    TriggerSmartContract,
    TronAccount,
    TronAccountResources,
    TronBlock,
    TronLog,
    TronReceipt,
    TronTransaction,
    TronTransactionInfo,
)

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
        self._headers_only = True
        """Whether the node serves ``getblock`` (current java-tron and TronGrid do); a node
        that answered it with 404 is asked for whole blocks where a header would do."""
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
        return self._answer(path, lambda: self._client.post(f"{base}/{path}", json=payload))

    def _post_content(self, path: str, content: bytes) -> Json:
        """POST ``content`` exactly as given (no ``visible`` added): for a signed transaction,
        whose stored JSON must reach the node byte for byte. Errors as `post`."""
        return self._answer(
            path,
            lambda: self._client.post(
                f"{self.url}/{path}", content=content, headers={"Content-Type": "application/json"}
            ),
        )

    @staticmethod
    def _answer(path: str, send: Callable[[], httpx.Response]) -> Json:
        """The decoded JSON answer of the request ``send`` makes, or the typed error of why
        there is none (see `post`)."""
        try:
            response = send()
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

    def _object(self, path: str, body: Mapping[str, Json] | None = None) -> Reader | None:
        """An endpoint answering one object, or ``{}`` for "not found" (None)."""
        data = self.post(path, body)
        reader = Reader(data, path, "answer")
        return None if not reader.data else reader

    # -- endpoints -------------------------------------------------------------------------

    def now_block(self) -> TronBlock:
        """The head block's header (its ``transactions`` are empty)."""
        return self._required_block("wallet")

    def solid_now_block(self) -> TronBlock:
        """The newest solidified (irreversible) block's header (its ``transactions`` are
        empty)."""
        return self._required_block("walletsolidity")

    def block_header(self, number: int) -> TronBlock | None:
        """Block ``number``'s header (its ``transactions`` are empty); None when the node
        has no such block."""
        return _numbered(self._header("wallet", number), number, "wallet/getblock")

    def _required_block(self, api: str) -> TronBlock:
        reader = self._header(api, None)
        if reader is None:
            raise TronUnexpectedAnswer("the node has no block at all", path=f"{api}/getblock")
        return decode_block(reader)

    def _header(self, api: str, number: int | None) -> Reader | None:
        """``<api>/getblock`` without ``detail``: a block's id and header and none of its
        transactions, a few hundred bytes where a mainnet block is hundreds of kilobytes.
        ``number`` None asks for the newest block. A node without ``getblock`` answers 404:
        from then on it is asked ``getnowblock`` / ``getblockbynum`` instead."""
        if self._headers_only:
            body: dict[str, Json] = {"detail": False}
            if number is not None:
                body["id_or_num"] = str(number)
            try:
                return self._object(f"{api}/getblock", body)
            except TronTransportError as error:
                if error.status_code != httpx.codes.NOT_FOUND:
                    raise
                self._headers_only = False
        if number is None:
            return self._object(f"{api}/getnowblock")
        return self._object(f"{api}/getblockbynum", {"num": number})

    def block_by_num(self, number: int) -> TronBlock | None:
        """``wallet/getblockbynum``; None when the node has no such block (above the head)."""
        path = "wallet/getblockbynum"
        return _numbered(self._object(path, {"num": number}), number, path)

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
            decode_transaction_info(Reader(item, path, f"answer[{i}]"))
            for i, item in enumerate(data)
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
        head_number, head_id = decode_block_reference(reader, "block")
        solid_number, solid_id = decode_block_reference(reader, "solidityBlock")
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
            raise TronCallRefused(str(code), decode_message(result.data.get("message")), path=path)
        rets = reader.child("transaction", optional=True).items("ret")
        outputs = reader.hex_list("constant_result")
        return ConstantCallResult(
            energy_used=reader.integer("energy_used", 0),
            energy_penalty=reader.integer("energy_penalty", 0),
            output=outputs[0] if outputs else b"",
            reverted=bool(rets) and rets[0].data.get("ret") == "FAILED",
            message=decode_message(result.data.get("message")),
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
                str(result.data.get("code", "")),
                decode_message(result.data.get("message")),
                path=path,
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
        reader = Reader(self._post_content(path, transaction_json.encode()), path, "answer")
        if reader.data.get("result") is True:
            return BroadcastResult(accepted=True, code="SUCCESS", message="")
        code = reader.data.get("code")
        if not isinstance(code, str):
            raise reader.problem("code", "a response code")
        return BroadcastResult(
            accepted=False, code=code, message=decode_message(reader.data.get("message"))
        )

    def transaction_info(self, txid: str, *, solid: bool = False) -> TronReceipt | None:
        """``gettransactioninfobyid`` from the head (or, with ``solid``, only from solidified
        blocks); None while the transaction is in no such block."""
        path = "walletsolidity/gettransactioninfobyid" if solid else "wallet/gettransactioninfobyid"
        reader = self._object(path, {"value": txid})
        if reader is None:
            return None
        receipt = decode_receipt(reader)
        if receipt.info.txid != txid.lower():
            raise TronUnexpectedAnswer(f"asked for {txid}, got {receipt.info.txid}", path=path)
        return receipt

    def pending_transaction(self, txid: str) -> TronTransaction | None:
        """``wallet/gettransactionfrompending``: the transaction while it waits in the node's
        pool; None when the pool does not hold it (in a block, dropped, or never received)."""
        path = "wallet/gettransactionfrompending"
        reader = self._object(path, {"value": txid})
        return None if reader is None else decode_transaction(reader)


def _numbered(reader: Reader | None, number: int, path: str) -> TronBlock | None:
    """The block in a by-number answer (None for "not found"), refused when it is another."""
    if reader is None:
        return None
    block = decode_block(reader)
    if block.number != number:
        raise TronUnexpectedAnswer(f"asked for block {number}, got {block.number}", path=path)
    return block
