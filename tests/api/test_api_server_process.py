"""The real server process (`kassa up` under uvicorn) against hostile bodies and for what it
leaves on disk and in its output (issue 13, items 6, 8 and 11).

A 100 000-deep JSON array sent without a key once crashed the process: `py_ecc` (imported with
the Ethereum libraries, which `kassa up` loads) raised the recursion limit to 100 000 and
FastAPI parsed the body before checking the key. Only a real process shows a crash, so these
tests start one, on a throwaway SQLite data directory and real networks (no local chains).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kassa.api.guard import RECURSION_LIMIT
from kassa.cli.run import BOOTSTRAP_KEY_FILE

DEEP = 100_000
START_TIMEOUT_SECONDS = 120


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    stdout: Path
    stderr: Path

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        return httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kassa_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("KASSA_")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("server")
    data_dir = root / "data"
    config = root / "kassa.toml"
    config.write_text(f'data_dir = "{data_dir}"\n')
    port = free_port()
    stdout, stderr = root / "stdout.txt", root / "stderr.txt"
    kassa = Path(sys.executable).with_name("kassa")
    # --config after the command's name, as `./dev run --config FILE` passes it (item 11).
    command = [str(kassa), "up", "--no-devnet", "--port", str(port), "--config", str(config)]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed argv
            command, stdout=out, stderr=err, env=kassa_env()
        )
    running = Server(process, f"http://127.0.0.1:{port}", data_dir, stdout, stderr)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(running):
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=60)


def _answers(server: Server) -> bool:
    try:
        return server.alive()
    except httpx.TransportError:
        return False


def admin_token(server: Server) -> str:
    return (server.data_dir / BOOTSTRAP_KEY_FILE).read_text().strip()


def deep_array() -> bytes:
    return b"[" * DEEP + b"]" * DEEP


def test_a_deep_body_without_a_key_is_refused_and_the_server_lives(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/accounts",
        content=deep_array(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert server.alive()


def test_a_deep_body_with_a_key_is_refused_and_the_server_lives(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/accounts",
        content=deep_array(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {admin_token(server)}",
            "Idempotency-Key": "deep-1",
        },
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "body_too_deep"
    assert server.alive()


def test_the_bootstrap_key_stays_out_of_the_output(server: Server) -> None:
    token = admin_token(server)
    assert token.startswith("kassa_")
    assert token not in server.stdout.read_text()
    err = server.stderr.read_text()
    assert token not in err
    assert str(server.data_dir / BOOTSTRAP_KEY_FILE) in err


def test_the_data_directory_and_the_books_are_private(server: Server) -> None:
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    for name in (BOOTSTRAP_KEY_FILE, "kassa.sqlite3"):
        assert stat.S_IMODE((server.data_dir / name).stat().st_mode) == 0o600, name


def test_the_server_process_keeps_a_sane_recursion_limit(tmp_path: Path) -> None:
    """Build the app as the server does, import every module of the product, read the limit."""
    script = f"""
import importlib, pkgutil, sys
import kassa
from kassa.api import create_app
from kassa.config import Settings
from kassa.db import Database
database = Database.from_url("sqlite:///{tmp_path}/k.sqlite3")
create_app(Settings(), database=database)
for module in pkgutil.walk_packages(kassa.__path__, "kassa."):
    if ".migrations." not in module.name:
        importlib.import_module(module.name)
print(sys.getrecursionlimit())
"""
    result = subprocess.run(  # noqa: S603 - this interpreter, a script written here
        [sys.executable, "-c", script], capture_output=True, text=True, env=kassa_env(), check=True
    )
    assert int(result.stdout.strip()) == RECURSION_LIMIT


def test_up_prints_the_console_and_the_bootstrap_key_signs_in(server: Server) -> None:
    printed = server.stdout.read_text() + server.stderr.read_text()
    assert f"Console: {server.url}/console/" in printed
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/console/sign-in")
        assert form.status_code == 200
        assert "script-src 'self'" in form.headers["content-security-policy"]
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = browser.post(
            "/console/sign-in",
            data={"csrf": csrf.group(1), "api_key": admin_token(server), "time_zone": "UTC"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console/"
        overview = browser.get("/console/")
        assert overview.status_code == 200 and "Review queue" in overview.text
