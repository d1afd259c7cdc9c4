"""Kassa's roles as separate `kassa` processes on one database: start, SIGKILL, restart, stop.

Used by `kassa bench scaleout`. Each process runs the console script of this environment with
the command line a deployment runs (`serve`, `worker`, `payout-worker`, `watch --chain X`) and
its output appended to one log file per instance, restarts included, so the log tells what
every incarnation did. A watcher's lease owner is a random name the process logs when it
starts; `Instance.watcher_owner` reads it back, which is how the harness knows which of two
watchers of a chain is the active one.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KASSA = Path(sys.executable).with_name("kassa")
STOP_SECONDS = 20.0
_OWNER = re.compile(r"\b(btc|eth|tron) watcher (watcher-[0-9a-f]+) started")


@dataclass
class Instance:
    """One process slot of a role (e.g. ``watch-eth#2``): its command, environment and log."""

    role: str
    number: int
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    """Exit codes of incarnations that ended by themselves (not killed by the harness)."""

    @property
    def name(self) -> str:
        return f"{self.role}#{self.number}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"==== start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                [str(KASSA), *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup runs, leases and claims stay as they were."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, as `docker compose stop` sends; SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def watcher_owner(self) -> str | None:
        """The lease owner name of the current incarnation (a watcher logs it on start)."""
        current = self.output().rsplit("==== start", 1)[-1]
        found = _OWNER.findall(current)
        return found[-1][1] if found else None


@dataclass
class Fleet:
    """Every instance, by role; `revive` restarts the ones that ended by themselves (what
    compose's ``restart: unless-stopped`` does) and remembers their exit codes."""

    instances: list[Instance]

    def of(self, role: str) -> list[Instance]:
        return [instance for instance in self.instances if instance.role == role]

    def roles(self) -> list[str]:
        return sorted({instance.role for instance in self.instances})

    def start(self) -> None:
        for instance in self.instances:
            instance.start()

    def revive(self) -> list[Instance]:
        revived = []
        for instance in self.instances:
            process = instance.process
            if process is not None and process.poll() is not None:
                instance.exits.append(process.returncode)
                instance.start()
                revived.append(instance)
        return revived

    def stop(self) -> None:
        for instance in self.instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            instance.stop()
