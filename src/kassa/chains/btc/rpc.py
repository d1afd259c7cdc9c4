"""A small typed JSON-RPC client for Bitcoin nodes (Bitcoin Core, or bcoin through Kassa's
launcher), over httpx.

Design:
* One persistent `httpx.Client` per node; every call is one POST of a JSON-RPC request to the
  node's root. Authentication is HTTP basic auth with any user name and the node's API key as
  the password (what bcoin's ``--api-key`` and Core's ``rpcauth`` both accept).
* JSON is decoded with ``parse_float=Decimal``: a BTC amount such as ``1.23456789`` never
  becomes a binary float, and `satoshi` turns it into an exact ``int`` or refuses it. NaN and
  Infinity are refused outright; no node sends them for an amount.
* Three errors, so callers can tell what went wrong and whether retrying can help:
  `RpcError` — the node understood the request and said no (``code``/``message`` as the node
  sent them, e.g. -8 "Block height out of range"); `RpcTransportError` — nothing usable came
  back (connection refused, timeout, HTTP 401, a body that is not JSON); `UnexpectedResponse`
  — a JSON answer whose shape is not what the method returns. All three are `BtcNodeError`.
* Core answers RPC errors with HTTP 500 and a JSON body, bcoin with HTTP 200: the body is read
  first, whatever the status.
Only the calls Kassa uses have typed helpers; `call` reaches the rest.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from kassa.chains._jsonrpc import JsonRpcClient

__all__ = [
    "SATOSHI_PER_BTC",
    "BtcNodeError",
    "BtcRpc",
    "RpcError",
    "RpcTransportError",
    "UnexpectedResponse",
    "satoshi",
]

SATOSHI_PER_BTC = 100_000_000

BLOCK_HEIGHT_OUT_OF_RANGE = -8
"""Core's RPC_INVALID_PARAMETER, which ``getblockhash`` answers for a height above the tip."""


class BtcNodeError(Exception):
    """Talking to the Bitcoin node failed; see the subclasses for how."""


class RpcError(BtcNodeError):
    """The node answered the request with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class RpcTransportError(BtcNodeError):
    """No usable answer: the node is unreachable, timed out, refused the credentials, or sent
    something that is not a JSON-RPC response."""


class UnexpectedResponse(BtcNodeError):
    """The node's answer is valid JSON-RPC but not shaped as the method's result should be."""


def satoshi(value: object) -> int:
    """An exact satoshi amount from a node's BTC amount (``Decimal`` or ``int`` as decoded).

    Refuses floats (they would have rounded already), fractions of a satoshi and
    non-numbers, instead of rounding: an amount that is not exact is a bug to see.
    """
    if type(value) is int:
        return value * SATOSHI_PER_BTC
    if not isinstance(value, Decimal) or not value.is_finite():
        raise UnexpectedResponse(f"a BTC amount must be a decimal number, got {value!r}")
    sats = value * SATOSHI_PER_BTC
    if sats != sats.to_integral_value():
        raise UnexpectedResponse(f"{value} BTC is not a whole number of satoshi")
    return int(sats)


class BtcRpc(JsonRpcClient):
    """JSON-RPC to one Bitcoin node. Use as a context manager, or call `close`."""

    version = "1.0"
    refuse_constants = True
    unauthorized_hint = " (wrong API key?)"

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        user: str = "kassa",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        client = httpx.Client(
            auth=(user, api_key), timeout=timeout, transport=transport, follow_redirects=False
        )
        super().__init__(
            url.rstrip("/") + "/",
            client,
            transport_error=RpcTransportError,
            rpc_error=RpcError,
        )

    # ------------------------------------------------------------------ typed helpers

    def get_blockchain_info(self) -> dict[str, Any]:
        return _dict(self.call("getblockchaininfo"), "getblockchaininfo")

    def get_block_hash(self, height: int) -> str:
        return _str(self.call("getblockhash", height), "getblockhash")

    def get_block(self, block_hash: str) -> dict[str, Any]:
        """The block with every transaction decoded (Core's verbosity 2)."""
        return _dict(self.call("getblock", block_hash, 2), "getblock")

    def get_raw_transaction(self, txid: str) -> dict[str, Any]:
        """A decoded transaction; for confirmed ones the node needs a transaction index."""
        return _dict(self.call("getrawtransaction", txid, 1), "getrawtransaction")

    def estimate_smart_fee(self, target_blocks: int) -> Decimal | None:
        """BTC per 1000 vbytes for confirmation within `target_blocks`, or None when the node
        has no estimate (Core answers ``errors``; bcoin answers ``fee: -1``)."""
        answer = _dict(self.call("estimatesmartfee", target_blocks), "estimatesmartfee")
        # Core names the rate ``feerate``; bcoin 1.0 names it ``fee``.
        rate = answer.get("feerate", answer.get("fee"))
        if rate is None:
            return None
        if type(rate) is int:
            rate = Decimal(rate)
        if not isinstance(rate, Decimal) or not rate.is_finite():
            raise UnexpectedResponse(f"estimatesmartfee: fee rate {rate!r} is not a number")
        return rate if rate > 0 else None

    def send_raw_transaction(self, raw_hex: str) -> str:
        """Submit signed bytes (hex); the node's txid. A refusal is an `RpcError` with Core's
        codes: -25 inputs missing or spent, -26 policy or consensus rejection, -27 already in
        the chain, -22 undecodable."""
        return _str(self.call("sendrawtransaction", raw_hex), "sendrawtransaction")

    def get_tx_out(
        self, txid: str, vout: int, *, include_mempool: bool = True
    ) -> dict[str, Any] | None:
        """The unspent output ``txid:vout``, or None when it is spent (in a block, or in the
        mempool when ``include_mempool``) or never existed."""
        answer = self.call("gettxout", txid, vout, include_mempool)
        return None if answer is None else _dict(answer, "gettxout")

    def get_block_header(self, block_hash: str) -> dict[str, Any]:
        """The decoded header (``height``, ``confirmations``, ``previousblockhash``…)."""
        return _dict(self.call("getblockheader", block_hash, True), "getblockheader")


def _dict(value: object, method: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnexpectedResponse(f"{method}: expected an object, got {type(value).__name__}")
    return value


def _str(value: object, method: str) -> str:
    if not isinstance(value, str):
        raise UnexpectedResponse(f"{method}: expected a string, got {type(value).__name__}")
    return value
