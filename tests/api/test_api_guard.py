"""The request guard: the key is checked before the body is read, bodies are bounded in size
and nesting, and a request is authenticated once (issue 13, items 6, 7 and 10)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from kassa.api.guard import MAX_JSON_DEPTH, json_depth_exceeds
from kassa.apikeys import service as apikeys
from kassa.apikeys.cache import for_engine
from kassa.config import Settings
from kassa.spending.usage import MAX_BATCH_EVENTS, MAX_DESCRIPTION_LENGTH, MAX_EVENT_AMOUNT

if TYPE_CHECKING:
    from tests.api.conftest import Api

LIMIT = Settings().max_body_bytes


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_no_account(api: Api, external_id: str) -> None:
    api.problem(api.get(f"/v1/accounts/{external_id}"), 404, "account_not_found")


def post_raw(api: Api, path: str, content: Any, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return api.client.post(path, content=content, headers=headers)


# -- nesting depth -------------------------------------------------------------------------


def test_a_body_nested_deeper_than_the_cap_is_refused_with_a_key(api: Api) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        response = post_raw(api, "/v1/accounts", nested(depth), token=api.admin)
        body = api.problem(response, 422, "body_too_deep")
        assert str(MAX_JSON_DEPTH) in body["detail"]
    deep = '{"external_id": "deep", "x": ' + nested(MAX_JSON_DEPTH) + "}"
    api.problem(post_raw(api, "/v1/accounts", deep, token=api.admin), 422, "body_too_deep")
    assert_no_account(api, "deep")


def test_a_body_at_the_cap_reaches_the_route(api: Api) -> None:
    response = post_raw(api, "/v1/accounts", nested(MAX_JSON_DEPTH), token=api.admin)
    api.problem(response, 422, "validation_error")


def test_brackets_inside_strings_do_not_count(api: Api) -> None:
    api.account("u1", funds="10")
    description = '[{"' * 150 + '\\"[[['
    batch = {"events": [{"event_id": "e1", "amount": api.usd("1"), "description": description}]}
    response = api.post("/v1/accounts/u1/usage", batch)
    assert response.status_code == 200, response.text[:500]


def test_the_depth_scan_sees_through_escapes_and_unterminated_strings() -> None:
    assert not json_depth_exceeds(b'{"a": "\\"[[[[", "b": [[1]]}', 3)
    assert json_depth_exceeds(b'{"a": "\\\\", "b": [[1]]}', 2)
    assert not json_depth_exceeds(b'["' + b"[" * 100, 1)
    assert not json_depth_exceeds(b'"\\' + b'"\\' * 1000, 0)


# -- body size -------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413(api: Api) -> None:
    body = json.dumps({"external_id": "big", "padding": "x" * LIMIT})
    response = post_raw(api, "/v1/accounts", body, token=api.admin)
    body_out = api.problem(response, 413, "payload_too_large")
    assert str(LIMIT) in body_out["detail"]
    assert_no_account(api, "big")


def test_a_chunked_body_over_the_limit_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"external_id": "big", "padding": "'
        for _ in range(LIMIT // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = post_raw(api, "/v1/accounts", chunks(), token=api.admin)
    assert "content-length" not in response.request.headers
    api.problem(response, 413, "payload_too_large")
    assert_no_account(api, "big")


def test_a_chunked_body_under_the_limit_is_served(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"external_id": '
        yield b'"chunked"}'

    response = post_raw(api, "/v1/accounts", chunks(), token=api.admin)
    assert response.status_code == 201, response.text


def test_the_largest_usage_batch_fits_the_default_limit(api: Api) -> None:
    api.account("u1", funds="1000000000")
    amount = MAX_EVENT_AMOUNT.format()
    events = [
        {
            "event_id": f"{index:04d}".ljust(128, "e"),
            "amount": api.usd(amount),
            "description": "d" * MAX_DESCRIPTION_LENGTH,
        }
        for index in range(MAX_BATCH_EVENTS)
    ]
    body = json.dumps({"events": events}, indent=2)
    assert len(body.encode()) <= LIMIT
    response = post_raw(api, "/v1/accounts/u1/usage", body, token=api.admin)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["charged_events"] == MAX_BATCH_EVENTS


# -- authentication before the body ------------------------------------------------------------


def test_an_unauthenticated_body_is_refused_without_being_read(api: Api) -> None:
    """Driven at the ASGI interface: the refusal comes before the app asks for the body."""
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"[" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for authorization in (None, f"Bearer {api.admin[:-3]}xyz"):
        reads.clear()
        sent.clear()
        headers = [(b"host", b"testserver"), (b"content-length", b"30000000")]
        if authorization is not None:
            headers.append((b"authorization", authorization.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/accounts",
            "raw_path": b"/v1/accounts",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
        assert sent[0]["status"] == 401
        assert json.loads(sent[1]["body"])["code"] == "unauthenticated"
        assert reads == []


def test_an_unauthenticated_oversized_body_is_401(api: Api) -> None:
    response = post_raw(api, "/v1/accounts", "x" * (LIMIT + 1))
    api.problem(response, 401, "unauthenticated")


def test_unknown_routes_and_methods_need_a_key_too(api: Api) -> None:
    api.problem(api.client.get("/v1/no-such-route"), 401, "unauthenticated")
    api.problem(api.client.delete("/v1/health"), 401, "unauthenticated")
    api.problem(api.get("/v1/no-such-route"), 404, "not_found")


def test_a_request_is_authenticated_once(api: Api) -> None:
    """At most one key lookup per request: the first looks the key up, the second finds it in
    the key cache (`kassa.apikeys.cache`). The cache's clock stands still: on a loaded machine
    the two requests may be further apart than its TTL."""
    lookups: list[str] = []
    cache = for_engine(api.db.engine)
    running, frozen = cache.monotonic, cache.monotonic()
    cache.monotonic = lambda: frozen

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_key" in statement:
            lookups.append(statement)

    event.listen(api.db.engine, "before_cursor_execute", count)
    try:
        assert api.get("/v1/health").status_code == 200
        assert api.post("/v1/accounts", {"external_id": "once"}).status_code == 201
    finally:
        event.remove(api.db.engine, "before_cursor_execute", count)
        cache.monotonic = running
    assert len(lookups) == 1


def test_a_revoked_key_is_answered_as_an_unknown_one(api: Api) -> None:
    token = api.key(["accounts:read"])
    prefix = token[len("kassa_") :][:12]
    unknown = "kassa_" + "Z" * 12 + token[len("kassa_") + 12 :]
    with api.db.transaction() as conn:
        apikeys.revoke_key(conn, prefix, api.clock.now())
    revoked = api.problem(api.get("/v1/health", token), 401, "unauthenticated")
    missing = api.problem(api.get("/v1/health", unknown), 401, "unauthenticated")
    assert revoked["detail"] == missing["detail"]
    assert prefix not in revoked["detail"]
