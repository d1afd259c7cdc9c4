"""JSON logs with a request id, from a real `kassa serve` process on PostgreSQL.

Every line the process writes (Kassa's, uvicorn's access and error lines) must parse as one
JSON object; a request's id — the caller's when it is sane, a fresh one otherwise — comes back
in ``X-Request-Id`` and is in the lines that request caused, with the account its path names;
a hostile id and an API key are never written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DatabaseFactory

from kassa.apikeys import service as apikeys
from kassa.clock import DatabaseClock
from kassa_dev.devnet.testing import free_port

KASSA = Path(sys.executable).with_name("kassa")
HOSTILE_ID = "evil<script>" + "x" * 80


@pytest.fixture
def json_server(pg_databases: DatabaseFactory, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A `kassa serve` process with JSON logs; its URL, an admin token and its log file."""
    database = pg_databases.new(pool_size=1)
    with database.transaction() as conn:
        created = apikeys.ensure_bootstrap_admin(conn, DatabaseClock().now(conn))
    assert created is not None
    token = created[1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASSA_")}
    env |= {
        "KASSA_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
        "KASSA_DATA_DIR": str(tmp_path / "data"),
        "KASSA_LOGGING__FORMAT": "json",
        "KASSA_DEVNET": "false",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(KASSA), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url, token, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _lines_about(log: Path, requests: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The log's lines once each request's access line (its id, its path) is in it: they are
    written as the answers go out, so they may land just after the client has the answers."""
    deadline = time.monotonic() + 30
    while True:
        text = log.read_text()
        if text.endswith("\n"):  # no line half written
            lines = _lines(text)
            if all(
                any(line.get("request_id") == id_ and path in line["message"] for line in lines)
                for id_, path in requests
            ):
                return lines
        assert time.monotonic() < deadline, text[-2000:]
        time.sleep(0.02)


def _lines(log_text: str) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    lines = []
    for text in log_text.splitlines():
        line = json.loads(text)  # fails the test on any line that is not JSON
        assert isinstance(line, dict), text
        assert {"time", "level", "logger", "message"} <= line.keys(), text
        lines.append(line)
    return lines


@pytest.mark.postgres
def test_json_lines_carry_the_request_id(json_server: tuple[str, str, Path]) -> None:
    url, token, log = json_server
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
        kept = client.get("/v1/accounts/acct-7", headers={"X-Request-Id": "trace-7.a:1"})
        fresh = client.get("/v1/health")
        hostile = client.get("/v1/accounts/acct-8", headers={"X-Request-Id": HOSTILE_ID})
        # An API key where it does not belong (a query string) is masked in the access line.
        leaked = client.get("/v1/health", params={"api_key": token})
    assert kept.headers["X-Request-Id"] == "trace-7.a:1"
    generated = fresh.headers["X-Request-Id"]
    assert len(generated) == 32 and generated != kept.headers["X-Request-Id"]
    replaced = hostile.headers["X-Request-Id"]
    assert replaced != HOSTILE_ID and len(replaced) == 32
    assert leaked.headers["X-Request-Id"] not in (generated, replaced)

    answers = (kept, fresh, hostile, leaked)
    lines = _lines_about(log, {(a.headers["X-Request-Id"], a.request.url.path) for a in answers})
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if "request_id" in line:
            by_id.setdefault(line["request_id"], []).append(line)
    seven = by_id["trace-7.a:1"]
    assert any("/v1/accounts/acct-7" in line["message"] for line in seven)
    assert all(line["account"] == "acct-7" for line in seven)
    assert by_id[generated] and by_id[replaced]
    assert all(line["account"] == "acct-8" for line in by_id[replaced])
    assert by_id[leaked.headers["X-Request-Id"]]
    text = log.read_text()
    assert "evil" not in text
    assert token not in text
    secret = token.rsplit("_", 1)[1]
    assert secret not in text
