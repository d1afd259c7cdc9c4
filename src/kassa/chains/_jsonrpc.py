"""The JSON-RPC request both node clients share (Bitcoin Core/bcoin and Ethereum).

One primitive: POST ``{"jsonrpc", "id", "method", "params"}``, decode the answer with
``Decimal`` for every JSON fraction (an amount never becomes a binary float), and turn each way
it can fail into the chain's own error types: no answer or no JSON-RPC answer is the
`transport_error`, an ``error`` member is the `rpc_error` with the node's code and message.
Bitcoin nodes answer errors with HTTP 500 and a JSON body, so the body is read before the status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

_REFUSE = object()


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
        self._batches: bool | None = None
        """Whether the node answers JSON-RPC batches; None until one was sent."""

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
        return self._result(method, self._answer(method, params))

    def _answer(self, method: str, params: Sequence[object]) -> dict[str, Any]:
        """The JSON-RPC answer object of one request (its result or its error)."""
        self._next_id += 1
        body = {
            "jsonrpc": self.version,
            "id": self._next_id,
            "method": method,
            "params": list(params),
        }
        status, payload = self._post(method, body)
        if not isinstance(payload, dict) or not ({"result", "error"} & payload.keys()):
            raise self.transport_error(f"{method}: HTTP {status}, not a JSON-RPC response")
        return payload

    def batch(
        self, calls: Sequence[tuple[str, Sequence[object]]], *, return_errors: bool = False
    ) -> list[Any]:
        """Send several requests in one JSON-RPC batch (one HTTP round trip) and return their
        results in order. A failed one raises its `rpc_error` as `call` would (after the answer
        was read whole), or with ``return_errors`` takes that error's place in the list. A
        node that refuses batches (its answer is not a list) gets the requests one by one from
        then on."""
        if len(calls) <= 1 or self._batches is False:
            return [self._single(method, params, return_errors) for method, params in calls]
        first = self._next_id + 1
        self._next_id += len(calls)
        body = [
            {"jsonrpc": self.version, "id": first + i, "method": method, "params": list(params)}
            for i, (method, params) in enumerate(calls)
        ]
        what = f"batch of {len(calls)} ({calls[0][0]}…)"
        status, payload = self._post(
            what, body, not_json=None if self._batches is None else _REFUSE
        )
        if not isinstance(payload, list):
            if self._batches is None:
                self._batches = False  # not a batch answer: this node does not take batches
                return [self._single(method, params, return_errors) for method, params in calls]
            raise self.transport_error(f"{what}: HTTP {status}, not a JSON-RPC batch response")
        self._batches = True
        by_id: dict[int, dict[str, Any]] = {}
        for answer in payload:
            if not isinstance(answer, dict) or not ({"result", "error"} & answer.keys()):
                raise self.transport_error(f"{what}: HTTP {status}, not a JSON-RPC batch response")
            key = answer.get("id")
            if type(key) is int:
                by_id[key] = answer
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            answer = by_id.get(first + i)
            if answer is None:
                raise self.transport_error(f"{what}: no answer to {method} (id {first + i})")
            try:
                results.append(self._result(method, answer))
            except Exception as error:  # only the node's own error: `_result` raises nothing else
                if not return_errors:
                    raise
                results.append(error)
        return results

    def _single(self, method: str, params: Sequence[object], return_errors: bool) -> Any:
        answer = self._answer(method, params)
        if not return_errors:
            return self._result(method, answer)
        try:
            return self._result(method, answer)
        except Exception as error:  # only the node's own error: `_result` raises nothing else
            return error

    def _post(self, what: str, body: object, *, not_json: object = _REFUSE) -> tuple[int, Any]:
        """POST `body`; the HTTP status and the decoded JSON answer (any shape), or the
        `transport_error` — also for an answer that is not JSON, unless `not_json` is given
        to stand for it (a proxy refusing a first batch with an HTML error page)."""
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as error:
            raise self.transport_error(f"{what}: {type(error).__name__}: {error}") from error
        try:
            if self.refuse_constants:
                payload = json.loads(
                    response.content, parse_float=Decimal, parse_constant=_refuse_constant
                )
            else:
                payload = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            if not_json is not _REFUSE and response.status_code != 401:
                return response.status_code, not_json
            hint = self.unauthorized_hint if response.status_code == 401 else ""
            raise self.transport_error(
                f"{what}: HTTP {response.status_code} without a JSON-RPC answer{hint}"
            ) from None
        return response.status_code, payload

    def _result(self, method: str, payload: dict[str, Any]) -> Any:
        failure = payload.get("error")
        if failure is not None:
            if isinstance(failure, dict):
                code = failure.get("code")
                raise self.rpc_error(
                    method, code if type(code) is int else -1, str(failure.get("message", ""))
                )
            raise self.rpc_error(method, -1, str(failure))
        return payload.get("result")
