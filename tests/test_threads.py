"""The thread plan (services/config.py: thread_plan, services/core/threads.py): one setting
sizes the executor, onnxruntime's session and the native pools. Fast: no database; one
embedding model load and two short subprocesses. No timing here (bench/throughput.py)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import Settings, ThreadPlan, available_cpus, thread_plan
from services.core.threads import ENV_CAPS, cap_env, cap_threads_from_env, install_executor
from services.nlu_loading import load_embedder_from_settings
from tests.support.service import EMBEDDING_MODEL_DIR

ROOT = Path(__file__).resolve().parent.parent
# the module (the package's `main` attribute is the function it exports)
cli_main = importlib.import_module("services.cli.main")


@pytest.mark.parametrize(
    ("cpus", "processes", "nlu_threads", "calls", "per_call"),
    [
        (2, 1, None, 6, 1),  # one process: both cores, + 4 workers of headroom
        (2, 2, None, 5, 1),  # deploy/systemd's two processes: one core each
        (2, 3, None, 5, 1),  # more processes than cores: still one
        (8, 2, None, 8, 1),
        (8, 2, 2, 2, 2),  # fewer calls at once: each gets the rest of the share
        (2, 1, 1, 1, 2),
        (2, 2, 3, 3, 1),  # an explicit count wins even above the share
    ],
)
def test_plan_follows_processes_per_host(
    cpus: int, processes: int, nlu_threads: int | None, calls: int, per_call: int
) -> None:
    settings = Settings(processes_per_host=processes, nlu_threads=nlu_threads)
    assert thread_plan(settings, cpus=cpus) == ThreadPlan(calls, per_call)


def test_settings_come_from_the_environment_and_bad_values_are_refused() -> None:
    settings = Settings.from_env({"HOTLINE_PROCESSES_PER_HOST": "2", "HOTLINE_NLU_THREADS": "3"})
    assert (settings.processes_per_host, settings.nlu_threads) == (2, 3)
    assert Settings.from_env({}).processes_per_host == 1
    for env in ({"HOTLINE_PROCESSES_PER_HOST": "0"}, {"HOTLINE_NLU_THREADS": "two"}):
        with pytest.raises(ValueError, match=next(iter(env))):
            Settings.from_env(env)


def test_env_caps_set_every_native_pool_and_win_over_old_values() -> None:
    environ = {"OMP_NUM_THREADS": "16", "PATH": "/bin"}
    cap_env(ThreadPlan(parallel_calls=1, threads_per_call=3), environ)
    assert {name: environ[name] for name in ENV_CAPS} == dict.fromkeys(ENV_CAPS, "3")
    assert environ["PATH"] == "/bin"


def test_a_bad_setting_is_left_to_the_command_to_report() -> None:
    environ = {"HOTLINE_PROCESSES_PER_HOST": "-1"}
    assert cap_threads_from_env(environ) is None
    assert "OMP_NUM_THREADS" not in environ


def test_executor_gets_the_plans_workers() -> None:
    loop = asyncio.new_event_loop()
    try:
        executor = install_executor(loop, ThreadPlan(parallel_calls=3))
        assert loop._default_executor is executor  # what asyncio.to_thread runs on
        assert executor._max_workers == 3
    finally:
        loop.close()
        executor.shutdown()


def test_hotline_serve_runs_on_a_loop_with_the_plans_executor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = {}

    def fake_run_app(app, *, loop, **kwargs) -> None:  # noqa: ANN001 - aiohttp's signature
        seen["workers"] = loop._default_executor._max_workers
        loop.close()

    monkeypatch.setattr(cli_main.web, "run_app", fake_run_app)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOTLINE_PROCESSES_PER_HOST", "1")
    monkeypatch.setenv("HOTLINE_NLU_THREADS", "5")
    assert cli_main.main(["serve", "--port", "1"]) == 0
    assert seen["workers"] == 5


def test_onnxruntime_session_gets_the_threads_per_call() -> None:
    # one call at once on this machine's share: the call gets every core of the share
    settings = Settings(
        embedding_model_dir=EMBEDDING_MODEL_DIR, processes_per_host=1, nlu_threads=1
    )
    plan = thread_plan(settings)
    assert plan.threads_per_call == available_cpus()
    embedder = load_embedder_from_settings(settings)
    options = embedder.session.get_session_options()
    assert options.intra_op_num_threads == plan.threads_per_call
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


_PROBE = """
import json, os
import services.cli  # what `hotline` imports first; it never calls threadpoolctl itself
import numpy, sklearn.linear_model  # noqa: F401 - load OpenBLAS and OpenMP
from threadpoolctl import threadpool_info
print(json.dumps({"env": {k: os.environ.get(k) for k in %r},
                  "pools": sorted({p["num_threads"] for p in threadpool_info()})}))
"""


@pytest.mark.parametrize("per_call", [1, 2])
def test_native_pools_are_capped_before_numpy_loads(per_call: int) -> None:
    cpus = available_cpus()
    if cpus < per_call:
        pytest.skip(f"{per_call} threads a call need {per_call} cores")
    # a share of about `per_call` cores and one call at once: the call gets the whole share
    processes = cpus // per_call
    per_call = thread_plan(Settings(processes_per_host=processes, nlu_threads=1)).threads_per_call
    extra = {"HOTLINE_PROCESSES_PER_HOST": str(processes), "HOTLINE_NLU_THREADS": "1"}
    env = {
        k: v for k, v in os.environ.items() if k not in ENV_CAPS and not k.startswith("HOTLINE_")
    }
    env.update(extra, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (ENV_CAPS,)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    # OpenBLAS and OpenMP start with one thread per core unless capped when they load
    assert probe["env"] == dict.fromkeys(ENV_CAPS, str(per_call))
    assert probe["pools"] == [per_call]
