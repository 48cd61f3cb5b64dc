"""The `hotline` command-line tool (`hotline ...` or `python -m services.cli ...`)."""

from services.core.threads import cap_threads_from_env

# First, before the commands below import numpy, onnxruntime or tokenizers: their native
# thread pools are sized from the environment when they load (services/core/threads.py).
cap_threads_from_env()

from services.cli.main import main  # noqa: E402 - after the thread caps, on purpose

__all__ = ["main"]
