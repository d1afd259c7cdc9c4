"""A small typed Ethereum JSON-RPC client over httpx, for reading the chain.

Design:
* Raw JSON-RPC, no web3: the deposit scanner needs five read calls, and their answers are
  plain JSON whose numbers are hex *quantities*. `quantity` turns one into an ``int`` exactly
  (wei do not fit a float, and must never pass through one) and refuses anything that is not
  ``0x`` followed by hex digits.
* One persistent `httpx.Client`; optional extra headers carry a provider's API key.
* The same three errors as the Bitcoin client, so callers can tell what went wrong:
  `RpcError` — the node answered with an error object (``code``/``message`` as sent);
  `RpcTransportError` — no usable answer (unreachable, timeout, an HTTP error without JSON);
  `UnexpectedResponse` — valid JSON-RPC, but not shaped like the method's result. All three
  are `EthNodeError`.
* "Not found" is a ``null`` result in Ethereum (a block above the tip, an unknown receipt);
  the typed helpers return None for it.
* The payout rail adds balance, nonce, code, gas estimation, ``eth_call`` and broadcasting;
  byte strings (code, call results, raw transactions) travel as ``0x`` hex *data* and
  `data_bytes` decodes them strictly, as `quantity` does numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from kassa.chains._jsonrpc import JsonRpcClient

__all__ = [
    "EthNodeError",
    "EthRpc",
    "RpcError",
    "RpcTransportError",
    "UnexpectedResponse",
    "block_tag",
    "data_bytes",
    "quantity",
]

_QUANTITY_RE = re.compile(r"0x[0-9a-fA-F]+", re.ASCII)
_DATA_RE = re.compile(r"0x(?:[0-9a-fA-F]{2})*", re.ASCII)


class EthNodeError(Exception):
    """Talking to the Ethereum node failed; see the subclasses for how."""


class RpcError(EthNodeError):
    """The node answered the request with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class RpcTransportError(EthNodeError):
    """No usable answer: unreachable, timed out, or not a JSON-RPC response."""


class UnexpectedResponse(EthNodeError):
    """Valid JSON-RPC whose result is not shaped as the method's result should be."""


def quantity(value: object, what: str = "quantity") -> int:
    """A hex-encoded JSON-RPC quantity (``"0x1b4"``) as an exact int."""
    if not isinstance(value, str) or not _QUANTITY_RE.fullmatch(value):
        raise UnexpectedResponse(f"{what}: expected a hex quantity, got {value!r}")
    return int(value, 16)


def block_tag(block: int | str) -> str:
    """A block parameter: a height as a hex quantity, or a tag (``latest``, ``finalized``…)."""
    if isinstance(block, str):
        return block
    if type(block) is not int or block < 0:
        raise ValueError(f"a block height is a non-negative int, got {block!r}")
    return hex(block)


class EthRpc(JsonRpcClient):
    """JSON-RPC to one Ethereum node. Use as a context manager, or call `close`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        client = httpx.Client(timeout=timeout, headers=dict(headers or {}), transport=transport)
        super().__init__(url, client, transport_error=RpcTransportError, rpc_error=RpcError)

    # ------------------------------------------------------------------ typed helpers

    def chain_id(self) -> int:
        return quantity(self.call("eth_chainId"), "eth_chainId")

    def block_number(self) -> int:
        return quantity(self.call("eth_blockNumber"), "eth_blockNumber")

    def get_block(self, block: int | str, *, full: bool) -> dict[str, Any] | None:
        """The block at a height or tag, with transaction objects when `full`; None if the
        node has no such block."""
        return _optional_dict(
            self.call("eth_getBlockByNumber", block_tag(block), full), "eth_getBlockByNumber"
        )

    def get_logs(self, log_filter: Mapping[str, object]) -> list[dict[str, Any]]:
        result = self.call("eth_getLogs", dict(log_filter))
        if not isinstance(result, list) or not all(isinstance(e, dict) for e in result):
            raise UnexpectedResponse(f"eth_getLogs: expected a list of logs, got {result!r}")
        return result

    def get_transaction_receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return _optional_dict(
            self.call("eth_getTransactionReceipt", tx_hash), "eth_getTransactionReceipt"
        )

    # ------------------------------------------------------------------ payouts

    def get_transaction_by_hash(self, tx_hash: str) -> dict[str, Any] | None:
        """The transaction as the node knows it (mempool or chain); None if it does not."""
        return _optional_dict(
            self.call("eth_getTransactionByHash", tx_hash), "eth_getTransactionByHash"
        )

    def get_balance(self, address: str, block: int | str = "latest") -> int:
        """Wei held by ``address`` at a height or tag."""
        return quantity(self.call("eth_getBalance", address, block_tag(block)), "eth_getBalance")

    def get_transaction_count(self, address: str, block: int | str = "latest") -> int:
        """Transactions sent from ``address`` up to a height or tag: its next nonce there."""
        return quantity(
            self.call("eth_getTransactionCount", address, block_tag(block)),
            "eth_getTransactionCount",
        )

    def get_code(self, address: str, block: int | str = "latest") -> bytes:
        """The contract code at ``address`` (empty for an account without code)."""
        return data_bytes(self.call("eth_getCode", address, block_tag(block)), "eth_getCode")

    def estimate_gas(self, tx: Mapping[str, object], block: int | str | None = None) -> int:
        """Gas ``tx`` would use now. A call that would revert is an `RpcError`."""
        params: list[object] = [dict(tx)]
        if block is not None:
            params.append(block_tag(block))
        return quantity(self.call("eth_estimateGas", *params), "eth_estimateGas")

    def call_contract(self, tx: Mapping[str, object], block: int | str = "latest") -> bytes:
        """``eth_call``: what a read-only call returns (named so as not to hide `call`)."""
        return data_bytes(self.call("eth_call", dict(tx), block_tag(block)), "eth_call")

    def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast signed bytes; the node's answer is the transaction hash (``0x``, lower)."""
        result = self.call("eth_sendRawTransaction", "0x" + raw.hex())
        if not isinstance(result, str) or len(data_bytes(result, "eth_sendRawTransaction")) != 32:
            raise UnexpectedResponse(f"eth_sendRawTransaction: expected a hash, got {result!r}")
        return result.lower()


def data_bytes(value: object, what: str = "data") -> bytes:
    """Hex-encoded JSON-RPC data (``"0x"`` and an even number of hex digits) as bytes."""
    if isinstance(value, str) and _DATA_RE.fullmatch(value):
        return bytes.fromhex(value[2:])
    raise UnexpectedResponse(f"{what}: expected 0x-prefixed hex data, got {value!r}")


def _optional_dict(value: object, method: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UnexpectedResponse(f"{method}: expected an object, got {type(value).__name__}")
    return value
