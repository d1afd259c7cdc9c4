"""Where the CPU went during a measurement: the writer processes, their PostgreSQL backends,
and the whole machine (Linux /proc; every figure is None where /proc cannot be read, e.g. a
remote database server).

With these a rate can be read against its bound: when the machine is ~100 % busy the figure is
CPU-bound, and client + server CPU per commit says which side to make cheaper.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_IDLE_FIELDS = (3, 4)
"""idle and iowait in the `cpu` line of /proc/stat."""


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    clients_seconds: float | None
    servers_seconds: float | None
    machine_busy_ticks: int | None
    machine_total_ticks: int | None


@dataclass(frozen=True, slots=True)
class CpuUsage:
    client_cpu_seconds_per_commit: float | None
    """CPU of the writer processes (Python, SQLAlchemy, driver; SQLite itself runs here)."""
    server_cpu_seconds_per_commit: float | None
    """CPU of the writers' PostgreSQL backends (None on SQLite: there is no server)."""
    machine_busy_fraction: float | None
    """Share of all CPUs busy, whoever used them."""
    others_fraction: float | None
    """Share of all CPUs used by anything but the writers and their backends: PostgreSQL's
    WAL writer and checkpointer, kernel I/O threads, and whatever else runs on the machine."""


def snapshot(client_pids: Sequence[int], server_pids: Sequence[int]) -> CpuSnapshot:
    busy, total = _machine_ticks() or (None, None)
    return CpuSnapshot(
        clients_seconds=_sum_cpu_seconds(client_pids),
        servers_seconds=_sum_cpu_seconds(server_pids) if server_pids else None,
        machine_busy_ticks=busy,
        machine_total_ticks=total,
    )


def usage(before: CpuSnapshot, after: CpuSnapshot, commits: int) -> CpuUsage:
    clients = _delta(before.clients_seconds, after.clients_seconds)
    servers = _delta(before.servers_seconds, after.servers_seconds)
    busy_fraction = others = None
    if after.machine_total_ticks is not None and before.machine_total_ticks is not None:
        total_ticks = after.machine_total_ticks - before.machine_total_ticks
        busy_ticks = (after.machine_busy_ticks or 0) - (before.machine_busy_ticks or 0)
        if total_ticks > 0:
            busy_fraction = busy_ticks / total_ticks
            ours_seconds = (clients or 0.0) + (servers or 0.0)
            others = max(0.0, busy_fraction - ours_seconds * CLOCK_TICKS_PER_SECOND / total_ticks)
    return CpuUsage(
        client_cpu_seconds_per_commit=_per_commit(clients, commits),
        server_cpu_seconds_per_commit=_per_commit(servers, commits),
        machine_busy_fraction=busy_fraction,
        others_fraction=others,
    )


def _delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return after - before


def _per_commit(seconds: float | None, commits: int) -> float | None:
    if seconds is None or commits <= 0:
        return None
    return seconds / commits


def _sum_cpu_seconds(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        seconds = process_cpu_seconds(pid)
        if seconds is None:
            return None
        total += seconds
    return total


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 0, utime field 11, stime field 12.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def _machine_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    total = sum(values)
    idle = sum(values[index] for index in _IDLE_FIELDS)
    return total - idle, total
