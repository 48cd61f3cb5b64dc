"""The `hotline` command: `serve` really serves; bad input is a message and a non-zero exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import CACHE_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_and_answers(database_url, tmp_path):
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        HOTLINE_DATA_DIR=str(tmp_path),
        HOTLINE_NLU_MODEL_DIR=str(CACHE_DIR / "nlu"),
        # the session's n-gram model: an embedding model here would retrain the shared cache
        HOTLINE_EMBEDDINGS="0",
        HOTLINE_EMBEDDING_MODEL_DIR=str(CACHE_DIR / "e5-small"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()  # reading the output of a live server would block for ever
                    out, _ = proc.communicate(timeout=30)
                    raise AssertionError(out.decode(errors="replace")[-3000:]) from None
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert "widget.js" in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_bad_configuration_is_a_message_not_a_traceback(tmp_path):
    env = dict(os.environ, HOTLINE_PORT="eighty")
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "HOTLINE_PORT must be an integer" in done.stderr
    assert "Traceback" not in done.stderr
