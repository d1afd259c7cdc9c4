"""Kassa's worker roles run as real processes, for the deployment tests: their command lines,
an environment on real networks pointed at the local chains, and their log files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

KASSA = Path(sys.executable).with_name("kassa")


@dataclass
class Role:
    """One `kassa` process; its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.output()}"
            )

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as `docker compose stop` sends it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.output()}") from None

    def scrape(
        self, token: str | None = None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The process's metrics: per (sample name, sorted labels), the value."""
        assert self.metrics_port is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.get(
            f"http://127.0.0.1:{self.metrics_port}/metrics", headers=headers, timeout=5
        )
        answer.raise_for_status()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }


@dataclass
class Roles:
    """Starts roles with one environment and stops whatever is left at the end."""

    env: dict[str, str]
    workdir: Path
    started: list[Role] = field(default_factory=list)

    def start(self, name: str, *args: str, metrics_port: int | None = None, **env: str) -> Role:
        log = self.workdir / f"{name}.log"
        command = [str(KASSA), *args]
        if metrics_port is not None:
            command += ["--metrics-port", str(metrics_port)]
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own console script
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env, **env},
            )
        role = Role(name, process, log, metrics_port)
        self.started.append(role)
        return role


def base_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """This machine's environment without KASSA_*, on real networks, JSON logs off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASSA_")}
    return env | {
        "KASSA_DATABASE_URL": database_url,
        "KASSA_DATA_DIR": str(data_dir),
        "KASSA_DEVNET": "false",
        "KASSA_HOST": "127.0.0.1",
    }


@contextmanager
def running(env: dict[str, str], workdir: Path) -> Iterator[Roles]:
    roles = Roles(env, workdir)
    try:
        yield roles
    finally:
        for role in roles.started:
            if role.process.poll() is None:
                role.process.kill()
                role.process.wait(5)


def wait_for(what: str, check: Callable[[], bool], roles: list[Role], within: float = 30) -> None:
    """Poll ``check`` until it holds; fail with the roles' output when it does not in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for role in roles:
            role.check_alive()
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    logs = "\n".join(f"--- {role.name}\n{role.output()}" for role in roles)
    raise AssertionError(f"{what} did not happen within {within} s\n{logs}")
