"""Start, watch and stop the local chain processes by PID.

Each process has a name (`ganache`, `bitcoin`, …) and, in its run directory
(`<data_dir>/devnet/` for `kassa devnet`, a temp dir in tests), a pid file `<name>.pid`
(JSON: pid, argv, port, start time) and a log `<name>.log` holding its stdout and stderr.

* A process counts as running only if its pid is alive, not a zombie, and (on Linux) has the
  kernel start time recorded at launch, so a reused pid is never mistaken for our node.
* Readiness is the first good answer to a probe (an RPC call) polled every 0.1 s; a process that
  exits first fails the start with the tail of its log.
* Stopping sends SIGTERM and waits, then SIGKILL after a timeout. Processes are only ever
  signalled by the pid we recorded: never by name.
* `detach=True` (the `kassa devnet` CLI) puts the child in its own session, so it outlives the
  command and a Ctrl-C in the terminal; tests keep children attached.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "ProcessError",
    "ProcessManager",
    "ProcessRecord",
    "port_is_open",
]

POLL_SECONDS = 0.1


class ProcessError(RuntimeError):
    """A process failed to start, to become ready, or to stop."""


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """What a pid file says about one running process."""

    name: str
    pid: int
    argv: list[str]
    port: int | None
    started_at: float
    """Unix time (seconds) of the launch."""
    start_ticks: int | None
    """Kernel start time of the process (clock ticks after boot; Linux only), against pid reuse."""


# Popen objects of children started by this interpreter, kept so they are reaped on stop and never
# garbage-collected while running (that would warn "subprocess … is still running").
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks) from /proc/<pid>/stat, or None where there is no /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("X", -1) if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fields after it do not.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _alive(pid: int, start_ticks: int | None) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: poll() answers exactly and reaps it, so it never lingers as a zombie
        # (and a reaped Popen is not garbage-collected as "still running").
        if child.poll() is None:
            # Still check the start time: the record may describe another process entirely.
            stat = _proc_stat(pid)
            return start_ticks is None or stat is None or stat[1] == start_ticks
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Alive but someone else's: certainly not the process we started.
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, ticks = stat
    if state in ("Z", "X"):
        return False
    return start_ticks is None or ticks == start_ticks


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ProcessManager:
    """Pid files and logs of named processes in one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    # -- reading state -------------------------------------------------------------------

    def read(self, name: str) -> ProcessRecord | None:
        """The pid file's record, alive or not; None if there is no readable pid file."""
        try:
            data = json.loads(self.pid_file(name).read_text())
            return ProcessRecord(
                name=str(data["name"]),
                pid=int(data["pid"]),
                argv=[str(a) for a in data["argv"]],
                port=None if data["port"] is None else int(data["port"]),
                started_at=float(data["started_at"]),
                start_ticks=None if data["start_ticks"] is None else int(data["start_ticks"]),
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def running(self, name: str) -> ProcessRecord | None:
        """The record of `name` if that very process is alive; a stale pid file is removed."""
        record = self.read(name)
        if record is None:
            return None
        if _alive(record.pid, record.start_ticks):
            return record
        self.pid_file(name).unlink(missing_ok=True)
        return None

    # -- starting --------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool],
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        detach: bool = False,
        timeout: float = 30.0,
    ) -> ProcessRecord:
        """Launch `argv`, record it, and wait until `ready()` returns True.

        Refuses to start when `name` is already running or `port` is taken. On failure (early exit,
        timeout) the process is stopped and :class:`ProcessError` carries the end of its log.
        """
        if self.running(name) is not None:
            raise ProcessError(f"{name} is already running (pid file {self.pid_file(name)})")
        if port is not None and port_is_open(port):
            raise ProcessError(f"cannot start {name}: port 127.0.0.1:{port} is already in use")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_file(name)
        with log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            child = subprocess.Popen(  # noqa: S603 - argv is built by this package, no shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=detach,
            )
        _CHILDREN[child.pid] = child
        stat = _proc_stat(child.pid)
        record = ProcessRecord(
            name=name,
            pid=child.pid,
            argv=list(argv),
            port=port,
            started_at=time.time(),
            start_ticks=None if stat is None or stat[1] < 0 else stat[1],
        )
        self._write(record)
        deadline = time.monotonic() + timeout
        while True:
            if child.poll() is not None:
                self.pid_file(name).unlink(missing_ok=True)
                _CHILDREN.pop(child.pid, None)
                raise ProcessError(
                    f"{name} exited with code {child.returncode} before it was ready; "
                    f"end of {log_path}:\n{_log_tail(log_path)}"
                )
            if _probe(ready):
                return record
            if time.monotonic() > deadline:
                self.stop(name)
                raise ProcessError(
                    f"{name} was not ready after {timeout:.0f} s; "
                    f"end of {log_path}:\n{_log_tail(log_path)}"
                )
            time.sleep(POLL_SECONDS)

    def _write(self, record: ProcessRecord) -> None:
        path = self.pid_file(record.name)
        tmp = path.with_suffix(".pid.tmp")
        tmp.write_text(json.dumps(asdict(record)) + "\n")
        tmp.replace(path)

    # -- stopping --------------------------------------------------------------------------

    def stop(self, name: str, *, timeout: float = 10.0) -> bool:
        """Stop `name`: SIGTERM, wait up to `timeout`, then SIGKILL. True if it was running."""
        record = self.running(name)
        if record is None:
            self.pid_file(name).unlink(missing_ok=True)
            return False
        pid = record.pid
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, record.start_ticks, timeout):
            _signal(pid, signal.SIGKILL)
            if not _wait_gone(pid, record.start_ticks, 5.0):
                raise ProcessError(f"{name} (pid {pid}) survived SIGKILL")
        self.pid_file(name).unlink(missing_ok=True)
        return True


def _signal(pid: int, sig: signal.Signals) -> None:
    # A detached child leads its own process group; signal the group so anything it forked goes
    # too. An attached child shares our group, so only the pid itself is signalled.
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, start_ticks: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, start_ticks):
        if time.monotonic() > deadline:
            return False
        child = _CHILDREN.get(pid)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(POLL_SECONDS)
        else:
            time.sleep(POLL_SECONDS)
    return True


def _probe(ready: Callable[[], bool]) -> bool:
    # A probe that raises just means "not yet" (connection refused, node still loading).
    try:
        return ready()
    except Exception:  # any failure of a readiness probe means: not ready yet
        return False
