"""Sentence vectors for the knowledge base: the shared e5 embedder with a memory of texts it
has already encoded, so re-imports, refreshes and repeated questions cost nothing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class CachedEncoder:
    """Wraps an Embedder (nlu.embeddings) with a bounded least-recently-used text cache."""

    def __init__(self, embedder: Embedder, max_items: int = 100_000, batch_size: int = 64) -> None:
        self.embedder = embedder
        self.name: str = embedder.name
        self.dim: int = embedder.dim
        self.max_items = max_items
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vec = self._cache.get(text)
                if vec is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = vec
        todo = list(missing)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            vectors = np.asarray(self.embedder.encode(batch), dtype=np.float32)
            with self._lock:
                for text, vec in zip(batch, vectors, strict=True):
                    self._cache[text] = vec
                    for i in missing[text]:
                        out[i] = vec
                while len(self._cache) > self.max_items:
                    self._cache.popitem(last=False)
        return out

    def prime(self, texts: list[str], vectors: np.ndarray) -> None:
        """Remember vectors computed before (the demo base ships its own)."""
        with self._lock:
            for text, vec in zip(texts, vectors, strict=True):
                self._cache[text] = np.asarray(vec, dtype=np.float32)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


def cached(embedder: Embedder | None) -> CachedEncoder | None:
    if embedder is None or isinstance(embedder, CachedEncoder):
        return embedder
    return CachedEncoder(embedder)


def save_shipped(path: Path, model: str, texts: list[str], vectors: np.ndarray) -> None:
    """Vectors shipped with data (float16: a quarter of the size, cosine error ~1e-4)."""
    np.savez_compressed(
        path, model=np.array(model), texts=np.array(texts), vectors=vectors.astype(np.float16)
    )


def load_shipped(path: Path, model: str) -> tuple[list[str], np.ndarray] | None:
    """Shipped vectors if they exist and were made by `model`; None otherwise."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        if str(data["model"]) != model:
            return None
        vectors = data["vectors"].astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return [str(t) for t in data["texts"]], vectors
