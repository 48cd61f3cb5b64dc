"""`hotline serve` in a process of its own, as production runs it, for the tests that need a
real second service process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, stop_process
from tests.support.service import EMBEDDING_MODEL_DIR, NLU_MODEL_DIR


def serve_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        HOTLINE_DATA_DIR=str(data_dir),
        HOTLINE_NLU_MODEL_DIR=str(NLU_MODEL_DIR),
        # the session's n-gram model: an embedding model here would retrain the shared cache
        HOTLINE_EMBEDDINGS="0",
        HOTLINE_EMBEDDING_MODEL_DIR=str(EMBEDDING_MODEL_DIR),
    )
    env.update(extra)  # may replace the above (the benchmarks' own NLU: default_nlu_env)
    return env


@contextmanager
def serving(
    env: dict[str, str],
    deadline_s: float = 300,
    host: str = "127.0.0.1",
    cwd: Path | None = None,
) -> Iterator[str]:
    """Run `hotline serve` on a free port of `host` (loopback unless told) until the block
    ends; yields its loopback URL once /healthz answers. A server that does not come up fails
    with the end of its output. `cwd`: another checkout of the code to run (bench/throughput.py
    runs an older commit beside this one)."""
    port = free_port()
    # the output goes to a file: a pipe nobody reads would stop a talkative server
    log_path = Path(env["HOTLINE_DATA_DIR"]) / f"serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                "--host",
                host,
                "--port",
                str(port),
            ],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + deadline_s
            while True:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                        assert resp.status == 200
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        out = log_path.read_bytes().decode(errors="replace")
                        raise AssertionError(out[-3000:]) from None
                    time.sleep(0.5)
            yield url
        finally:
            stop_process(proc, grace=20)


def default_nlu_env(nlu_dir: Path) -> dict[str, str]:
    """Environment for `hotline serve` with the service's default NLU (e5 sentence embeddings
    as int8 ONNX beside the n-grams) instead of the test suite's n-gram model, for the
    benchmarks. Its NLU model is trained here, once, into `nlu_dir` (never into the shared
    test cache), so that no service process trains at start."""
    from services.config import Settings
    from services.nlu_loading import load_builtin

    load_builtin(
        Settings(
            nlu_model_dir=nlu_dir, embedding_model_dir=EMBEDDING_MODEL_DIR, use_embeddings=True
        )
    )
    return {"HOTLINE_EMBEDDINGS": "1", "HOTLINE_NLU_MODEL_DIR": str(nlu_dir)}
