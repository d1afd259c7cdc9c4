"""``X-Request-Id``: one id per API request, in its answer and in every log line it causes.

A caller's own id is kept when it is sane (1 to 64 letters, digits, ``.``, ``_``, ``:`` or
``-``), so a proxy's or client's id can be followed through Kassa's logs; anything else (too
long, control characters, quotes, a header injection attempt) is replaced by a fresh id and is
neither logged nor echoed. The answer always carries the id used.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.telemetry.logs import request_bound

HEADER = "X-Request-Id"
_HEADER_KEY = HEADER.lower().encode()
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id_of(raw: bytes | None) -> str:
    """The caller's id when it is sane, else a new one."""
    if raw is not None and _SANE.fullmatch(raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex


class RequestId:
    """ASGI middleware: pick the request's id, bind it to the log context, echo it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == _HEADER_KEY), None)
        request_id = request_id_of(incoming)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER_KEY]
                headers.append((_HEADER_KEY, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with request_bound(request_id, scope):
            await self.app(scope, receive, send_with_id)
