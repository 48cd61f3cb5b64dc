"""CPU time of other processes, for the benchmarks: a service process, PostgreSQL's server
processes, from /proc (Linux). The machine is shared, so the benchmarks report CPU seconds
per message beside wall-clock rates."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (those that ended count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def children_of(parent: int) -> list[int]:
    """The process and its children (PostgreSQL's postmaster: backends, writers ...)."""
    pids = [parent]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry.name))
    return pids


def postgres_pids(data_dir: Path) -> list[int]:
    """The server processes of the PostgreSQL cluster in `data_dir`."""
    return children_of(int((Path(data_dir) / "postmaster.pid").read_text().split()[0]))


def pid_listening_on(port: int) -> int:
    """The process listening on this TCP port (a `hotline serve` just started)."""
    import psutil

    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return conn.pid
    raise RuntimeError(f"nothing listens on {port}")
