"""The JSON-RPC request both node clients share (Bitcoin Core/bcoin and Ethereum).

One primitive: POST ``{"jsonrpc", "id", "method", "params"}``, decode the answer with
``Decimal`` for every JSON fraction (an amount never becomes a binary float), and turn each way
it can fail into the chain's own error types: no answer or no JSON-RPC answer is the
`transport_error`, an ``error`` member is the `rpc_error` with the node's code and message.
Bitcoin nodes answer errors with HTTP 500 and a JSON body, so the body is read before the status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class JsonRpcClient:
    """A JSON-RPC connection to one node. Use as a context manager, or call `close`."""

    version: ClassVar[str] = "2.0"
    refuse_constants: ClassVar[bool] = False
    """Refuse NaN and Infinity in answers (JSON has no such numbers; an amount never is one)."""
    unauthorized_hint: ClassVar[str] = ""
    """Added to the error of an HTTP 401 that carries no JSON-RPC answer."""

    def __init__(
        self,
        url: str,
        client: httpx.Client,
        *,
        transport_error: Callable[[str], Exception],
        rpc_error: Callable[[str, int, str], Exception],
    ) -> None:
        self.url = url
        self._client = client
        self._next_id = 0
        self.transport_error = transport_error
        self.rpc_error = rpc_error

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

    def call(self, method: str, *params: object) -> Any:
        """Send one request and return its ``result`` (JSON with ``Decimal`` fractions)."""
        self._next_id += 1
        body = {
            "jsonrpc": self.version,
            "id": self._next_id,
            "method": method,
            "params": list(params),
        }
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as error:
            raise self.transport_error(f"{method}: {type(error).__name__}: {error}") from error
        try:
            if self.refuse_constants:
                payload = json.loads(
                    response.content, parse_float=Decimal, parse_constant=_refuse_constant
                )
            else:
                payload = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            hint = self.unauthorized_hint if response.status_code == 401 else ""
            raise self.transport_error(
                f"{method}: HTTP {response.status_code} without a JSON-RPC answer{hint}"
            ) from None
        if not isinstance(payload, dict) or not ({"result", "error"} & payload.keys()):
            raise self.transport_error(
                f"{method}: HTTP {response.status_code}, not a JSON-RPC response"
            )
        failure = payload.get("error")
        if failure is not None:
            if isinstance(failure, dict):
                code = failure.get("code")
                raise self.rpc_error(
                    method, code if type(code) is int else -1, str(failure.get("message", ""))
                )
            raise self.rpc_error(method, -1, str(failure))
        return payload.get("result")
