"""Every thread pool of a service process sized from one setting, once, at start-up.

`services.config.thread_plan` turns HOTLINE_PROCESSES_PER_HOST / HOTLINE_NLU_THREADS into a
`ThreadPlan`; this module applies it:

* the native libraries' own pools - OpenBLAS/OpenMP/MKL (numpy, scipy, sklearn), the Rust
  tokenizers' rayon pool - read these environment variables once, when they load, so
  `cap_env` must run before the first `import numpy` (services/cli/__init__.py does it
  before anything else is imported); `limit_loaded_pools` caps the pools of libraries that
  are already loaded (a test process, `python -c`) through threadpoolctl;
* onnxruntime's intra/inter-op threads are session options (nlu/onnx_embedder.py, from
  services/nlu_loading.py), torch's are set when the sentence-transformers back-end loads;
* the event loop's default executor, where the NLU parses and the other CPU-bound calls
  run (asyncio.to_thread), gets `parallel_calls` workers: `install_executor`.

jieba keeps no pool of its own (its enable_parallel, which forks processes, is never called).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor

from services.config import Settings, ThreadPlan, thread_plan

# Read by the native libraries when they load (not later): OpenMP (libgomp, used by
# onnxruntime builds with OpenMP and by sklearn), OpenBLAS (numpy/scipy wheels), MKL,
# BLIS, Accelerate, numexpr, and rayon (the tokenizers package).
ENV_CAPS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
)


def cap_env(plan: ThreadPlan, environ: MutableMapping[str, str] | None = None) -> None:
    """Set the native pools' sizes in the environment; they win over values already there,
    since the one knob is HOTLINE_NLU_THREADS / HOTLINE_PROCESSES_PER_HOST."""
    environ = os.environ if environ is None else environ
    for name in ENV_CAPS:
        environ[name] = str(plan.threads_per_call)


def limit_loaded_pools(plan: ThreadPlan) -> None:
    """Cap the BLAS/OpenMP pools already loaded into this process (a no-op before numpy)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=plan.threads_per_call)


def install_executor(loop: asyncio.AbstractEventLoop, plan: ThreadPlan) -> ThreadPoolExecutor:
    """The loop's default executor with `parallel_calls` workers. Its default size
    (cores + 4) let every process run more parses at once than the machine has cores."""
    executor = ThreadPoolExecutor(max_workers=plan.parallel_calls, thread_name_prefix="cpu")
    loop.set_default_executor(executor)
    return executor


def cap_threads_from_env(environ: MutableMapping[str, str] | None = None) -> ThreadPlan | None:
    """At process start, before numpy is imported: the plan from the environment, applied to
    the environment. A bad setting is left for the command's own settings check to report
    (None here), so that it gets the usual one-line message."""
    environ = os.environ if environ is None else environ
    try:
        plan = thread_plan(Settings.from_env(environ))
    except ValueError:
        return None
    cap_env(plan, environ)
    return plan
