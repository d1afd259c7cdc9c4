"""Process management by pid: pid files, readiness, logs, SIGTERM then SIGKILL, stale records."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from kassa_dev.devnet.processes import ProcessError, ProcessManager

# A child that writes a marker file once it has set itself up, then waits to be stopped.
SLEEPER = """
import pathlib, signal, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("sleeper up", flush=True)
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


def start_sleeper(manager: ProcessManager, tmp_path: Path, mode: str = "normal") -> int:
    marker = tmp_path / f"ready-{mode}"
    record = manager.start(
        f"sleeper-{mode}",
        [sys.executable, "-c", SLEEPER, str(marker), mode],
        ready=marker.exists,
        timeout=10,
    )
    return record.pid


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_start_waits_for_readiness_records_a_pid_file_and_logs(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path / "run")
    pid = start_sleeper(manager, tmp_path)

    assert (tmp_path / "ready-normal").read_text() == "ready"
    running = manager.running("sleeper-normal")
    assert running is not None and running.pid == pid
    assert json.loads(manager.pid_file("sleeper-normal").read_text())["pid"] == pid
    assert manager.stop("sleeper-normal") is True

    assert is_gone(pid)
    assert not manager.pid_file("sleeper-normal").exists()
    assert "sleeper up" in manager.log_file("sleeper-normal").read_text()
    assert manager.stop("sleeper-normal") is False  # nothing left to stop


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path / "run")
    pid = start_sleeper(manager, tmp_path, "ignore-term")

    assert manager.stop("sleeper-ignore-term", timeout=0.5) is True

    assert is_gone(pid)


def test_a_process_that_exits_early_fails_the_start_with_its_log(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path / "run")
    with pytest.raises(ProcessError, match="exited with code 3") as failed:
        manager.start(
            "crasher",
            [sys.executable, "-c", "print('no config found'); raise SystemExit(3)"],
            ready=lambda: False,
        )
    assert "no config found" in str(failed.value)
    assert manager.running("crasher") is None


def test_a_pid_file_naming_another_process_is_stale(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path / "run")
    pid = start_sleeper(manager, tmp_path)
    record = json.loads(manager.pid_file("sleeper-normal").read_text())
    # Same pid, different kernel start time: the pid was reused by someone else.
    impostor = {**record, "name": "impostor", "start_ticks": record["start_ticks"] + 1}
    manager.pid_file("impostor").write_text(json.dumps(impostor))

    assert manager.running("impostor") is None
    assert not manager.pid_file("impostor").exists()
    assert manager.stop("impostor") is False
    assert not is_gone(pid)  # the real owner of the pid was left alone
    manager.stop("sleeper-normal")


def test_start_refuses_a_busy_port(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path / "run")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ProcessError, match="already in use"):
            manager.start("node", [sys.executable, "-c", "pass"], ready=lambda: True, port=port)
