"""Processes the tests start: a free loopback port for them, and the one way they are ended."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    """End a process a test started, if it still runs: SIGTERM and up to `grace` seconds to
    exit, then SIGKILL (at once when `grace` is 0); it is reaped either way."""
    if proc.poll() is not None:
        return
    if grace > 0:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait(timeout=20)
