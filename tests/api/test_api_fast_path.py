"""The API's fast path (issue 17) keeps every check: the key cache never lets a revoked key
through for longer than its TTL and never remembers a refusal; SQLite writers in one process
take turns instead of sleeping in SQLite's busy handler; every connection has TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest
import uvicorn
from sqlalchemy import event, text, update

from kassa.api import serving
from kassa.apikeys import cache as key_cache
from kassa.apikeys.tables import api_key
from kassa.db import Database, make_engine

if TYPE_CHECKING:
    from pathlib import Path

    from tests.api.conftest import Api


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lookups(api: Api) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_key" in statement:
            seen.append(statement)

    event.listen(api.db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(api.db.engine, "before_cursor_execute", count)


def test_a_key_revoked_elsewhere_is_refused_once_the_ttl_has_passed(api: Api) -> None:
    monotonic = FakeMonotonic()
    key_cache.for_engine(api.db.engine).monotonic = monotonic
    token = api.key(["accounts:read"])
    assert api.get("/v1/health", token).status_code == 200
    # Revoked by another process (`kassa keys revoke`): this process's cache is not told.
    with api.db.transaction() as conn:
        prefix = token[len("kassa_") :][:12]
        conn.execute(
            update(api_key).where(api_key.c.prefix == prefix).values(revoked_at=api.clock.now())
        )
    monotonic.now += key_cache.TTL_SECONDS / 2
    assert api.get("/v1/health", token).status_code == 200  # within the TTL: the bound
    monotonic.now += key_cache.TTL_SECONDS / 2
    api.problem(api.get("/v1/health", token), 401, "unauthenticated")
    api.problem(api.get("/v1/health", token), 401, "unauthenticated")  # and stays refused


def test_refusals_are_never_cached(api: Api, lookups: list[str]) -> None:
    # The cache's clock stands still: on a loaded machine two requests can be a TTL apart.
    key_cache.for_engine(api.db.engine).monotonic = FakeMonotonic()
    token = api.key(["accounts:read"])
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    lookups.clear()  # creating the key read it back
    for _ in range(3):
        api.problem(api.get("/v1/health", wrong), 401, "unauthenticated")
    assert len(lookups) == 3  # each asked the database
    assert api.get("/v1/health", token).status_code == 200
    assert api.get("/v1/health", token).status_code == 200
    assert len(lookups) == 4  # the live key once, then from the cache


def test_each_database_has_its_own_cache(api: Api, databases: Any) -> None:
    other = databases.new()
    try:
        assert key_cache.for_engine(other.engine) is not key_cache.for_engine(api.db.engine)
    finally:
        other.dispose()


def test_sqlite_writers_in_one_process_never_wait_in_the_busy_handler(tmp_path: Path) -> None:
    """With SQLite's busy timeout at 0, a writer that met the database's lock held by another
    thread would fail at once with "database is locked"; the turns make them queue instead."""
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.sqlite3'}", pool_size=8)

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    database = Database(engine)
    with database.transaction() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer() -> None:
        start.wait()
        try:
            for _ in range(25):
                with database.transaction() as conn:
                    conn.execute(text("UPDATE counter SET n = n + 1"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.read_only() as conn:
        total = conn.execute(text("SELECT n FROM counter")).scalar_one()
    database.dispose()
    assert errors == []
    assert total == 8 * 25


class RecordingNoDelay(serving.NoDelayHttpTools):
    seen: ClassVar[list[int]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        self.seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_every_connection_has_tcp_nodelay(unused_tcp_port: int) -> None:
    config = uvicorn.Config(
        _ok,
        host="127.0.0.1",
        port=unused_tcp_port,
        loop=serving.LOOP,
        http=RecordingNoDelay,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.01)
        for _ in range(2):
            with httpx.Client() as client:
                assert client.get(f"http://127.0.0.1:{unused_tcp_port}/").text == "ok"
    finally:
        server.should_exit = True
        thread.join()
    assert RecordingNoDelay.seen == [1, 1]


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
