"""What the load-and-faults run (bench/load.py, tests/test_faults.py) is made of: a PostgreSQL
server of its own that can be restarted (tests/support/pg_cluster.py: the embedded wheel's
pg_ctl, same data and port), and `hotline serve` processes on fixed ports that can be killed
with SIGKILL and started again on the same port, so the clients find them where they were."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.pg_cluster import Cluster, remove, start_primary
from tests.support.processes import free_port, stop_process


@contextlib.contextmanager
def postgres_server() -> Iterator[Cluster]:
    """A PostgreSQL server of this run's own, with a `hotline` database; removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="hl-fault-pg-", dir="/tmp"))
    base.chmod(0o755)  # the server may run as another user (pg_cluster.py)
    cluster = start_primary(base, free_port())
    try:
        yield cluster
    finally:
        remove(cluster)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class ServeProcess:
    """`hotline serve` on a fixed loopback port; its output appended to one log file across
    restarts."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.env["HOTLINE_DATA_DIR"]) / f"serve-{self.port}.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def wait_ready(self, timeout: float = 300) -> float:
        """Until /healthz answers 200; the seconds it took. A process that exits or does not
        come up fails with the end of its log. One probe may wait up to 30 s for its answer:
        under full load /healthz queues behind the chat like everything else."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(
                        self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=30)
                    ) as resp:
                        if resp.status == 200:
                            return time.monotonic() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() - started > timeout:
                    raise AssertionError(self.log_tail())
                await asyncio.sleep(0.3)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the running process has used so far: the share of a
        shared machine it actually got."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as a crash or the OOM killer does it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=20)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.log_path
        return path.read_bytes().decode(errors="replace")[-chars:] if path.exists() else ""

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""
