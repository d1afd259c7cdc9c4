"""A minimal JSON-RPC call over httpx, for devnet bootstrap, readiness probes and the faucet.

Deliberately tiny and private to `kassa_dev.devnet`: Kassa's real chain clients live in
`kassa.chains`; this only drives the local nodes (mining, deploying, funding).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["JsonRpcError", "json_rpc"]


class JsonRpcError(RuntimeError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


def json_rpc(
    url: str,
    method: str,
    params: list[Any] | None = None,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """POST one JSON-RPC request; return its `result` or raise :class:`JsonRpcError`."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    response = httpx.post(url, json=body, auth=auth, timeout=timeout)
    # Bitcoin-style nodes answer RPC errors with HTTP 500 and a JSON body; read that body first.
    try:
        payload = response.json()
    except ValueError:
        response.raise_for_status()
        raise
    if not isinstance(payload, dict):
        raise JsonRpcError(method, -32700, f"unexpected response {payload!r}")
    error = payload.get("error")
    if error:
        if isinstance(error, dict):
            raise JsonRpcError(method, int(error.get("code", -1)), str(error.get("message", "")))
        raise JsonRpcError(method, -1, str(error))
    return payload.get("result")
