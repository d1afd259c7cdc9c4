"""The gate every request passes before FastAPI sees it: who is calling, how big and how deep
the body is, all decided before the body is parsed.

FastAPI reads and parses a route's JSON body while it resolves the route's parameters, before
any dependency (the API key check included) has run. Left to itself, an anonymous caller could
make the server hold a body of any size in memory, and a deeply nested JSON array could exhaust
the C stack of the parser. So this ASGI middleware, in front of the app:

1. authenticates every request under ``/v1/`` from its ``Authorization`` header alone and
   refuses an unknown, revoked or missing key with the 401 problem at once, without reading a
   byte of the body; the key it found is handed to the routes in the ASGI scope
   (`api_key_of`), so a request is authenticated once. A key found live is taken from
   `kassa.apikeys.cache` for a couple of seconds after (no query, no thread hop); refusals
   always come from the database;
2. refuses a body whose ``Content-Length`` exceeds ``max_body_bytes`` with 413
   ``payload_too_large`` before reading it, and counts a body sent without a length (chunked)
   as it arrives, refusing it as soon as the count passes the limit;
3. refuses a JSON body nested deeper than `MAX_JSON_DEPTH` with 422 ``body_too_deep`` before
   any parser recurses into it (our request bodies are at most four levels deep); the
   console's urlencoded forms, which no JSON parser reads, are not scanned;
4. replays the body it read to the app unchanged.

`pin_recursion_limit` keeps the interpreter's recursion limit at its default in the server
process: ``py_ecc`` (imported with the Ethereum libraries) raises it to 100 000 on import, which
turns a recursion that would end in a clean ``RecursionError`` into a crash of the process.
"""

from __future__ import annotations

import re
import sys

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.api import problems
from kassa.apikeys import cache as key_cache
from kassa.apikeys import service as apikeys
from kassa.apikeys.errors import Unauthenticated
from kassa.apikeys.service import ApiKey
from kassa.db import Database
from kassa.errors import InvalidRequest, KassaError

MAX_JSON_DEPTH = 32
"""Arrays and objects nested in a request body; ours nest four deep, so 32 is ample."""

RECURSION_LIMIT = 1000
"""CPython's default recursion limit, which the server process keeps."""

GUARDED_PREFIX = "/v1/"
"""Every route under it needs an API key."""

CONSOLE_PREFIX = "/console/"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

_SCOPE_KEY = "kassa.api_key"
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.?)*+"?|[\[{]|[\]}]', re.DOTALL)
"""A whole string (an unterminated one runs to the end), an opening or a closing bracket.

The string alternative is possessive and always matches from its quote on, so the scan is
linear in the body's length whatever the body holds."""


class PayloadTooLarge(KassaError):
    code = "payload_too_large"
    title = "Payload too large"


class BodyTooDeep(InvalidRequest):
    code = "body_too_deep"
    title = "Body nested too deeply"


def pin_recursion_limit() -> None:
    """Import what raises the recursion limit, then set it back to `RECURSION_LIMIT`.

    ``kassa.chains.eth.tx`` imports the Ethereum libraries, and through them ``py_ecc``, which
    raises the limit when it is first imported. Importing it here, once, before serving means no
    request later imports it for the first time and raises the limit mid-run.
    """
    import kassa.chains.eth.tx  # noqa: F401 - imported for its side effect, then undone

    sys.setrecursionlimit(RECURSION_LIMIT)


def api_key_of(request: Request) -> ApiKey | None:
    """The key `RequestGuard` authenticated this request with (None outside ``/v1/``)."""
    key = request.scope.get(_SCOPE_KEY)
    return key if isinstance(key, ApiKey) else None


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when arrays and objects in `body` nest deeper than `limit` (strings skipped)."""
    depth = 0
    for token in _JSON_TOKENS.finditer(body):
        opener = token.group()
        if opener in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif opener in (b"]", b"}"):
            depth -= 1
    return False


class RequestGuard:
    """ASGI middleware: authenticate, bound the body, then hand over to `app` (see module)."""

    def __init__(self, app: ASGIApp, *, database: Database, max_body_bytes: int) -> None:
        self.app = app
        self.database = database
        self.max_body_bytes = max_body_bytes
        self.keys = key_cache.for_engine(database.engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The three headers the guard reads, in one pass over the raw list (the first of each).
        authorization = content_length = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == b"content-length":
                content_length = value if content_length is None else content_length
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
        try:
            if scope["path"].startswith(GUARDED_PREFIX):
                token = bearer_token((authorization or b"").decode("latin-1"))
                key = self.keys.get(token)
                if key is None:
                    key = await run_in_threadpool(self._authenticate, token)
                scope[_SCOPE_KEY] = key
            self._check_declared_length(content_length or b"")
            body = await self._read_body(receive)
            if not _console_form(scope, content_type or b"") and json_depth_exceeds(
                body, MAX_JSON_DEPTH
            ):
                raise BodyTooDeep(
                    f"the request body nests arrays and objects more than {MAX_JSON_DEPTH} deep"
                )
        except KassaError as error:
            await _refuse(scope, receive, send, error)
            return
        await self.app(scope, _replay(body, receive), send)

    def _authenticate(self, token: str) -> ApiKey:
        """The live key of `token`: from the key cache, else from the database (in a read-only
        unit: on SQLite it reads a snapshot without queueing for the write lock)."""
        with self.database.read_only() as conn:
            key = apikeys.authenticate(conn, token)
        self.keys.remember(token, key)
        return key

    def _check_declared_length(self, declared: bytes) -> None:
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, refused as soon as it passes the limit (declared length or not)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; the app sees the disconnect when it asks.
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body exceeds the limit of {self.max_body_bytes} bytes")


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer …`` header's value, else `Unauthenticated`."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API key as 'Authorization: Bearer kassa_…'")
    return token.strip()


def _console_form(scope: Scope, content_type: bytes) -> bool:
    """A form posted to the console: no JSON parser ever reads it (the console parses its
    urlencoded forms flat, `kassa.api.console.web.read_form`), so an operator's text may hold
    any number of brackets."""
    media_type = content_type.decode("latin-1").partition(";")[0].strip().lower()
    return scope["path"].startswith(CONSOLE_PREFIX) and media_type == FORM_MEDIA_TYPE


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the body read once, then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, error: KassaError) -> None:
    response: Response = problems.error_response(Request(scope), error)
    # The body may be unread (a refused key, a body too large): the connection is not worth
    # keeping for the rest of it.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
