"""Building the NLU the service uses from the settings: the embedding model folder (rebuilt
from the packaged weights when missing) and the built-in engine (trained when missing)."""

from __future__ import annotations

from nlu.builtin import BuiltinEngine, TrainReport
from nlu.engine import load_or_train, train_builtin
from services.config import Settings, thread_plan


def load_embedder_from_settings(settings: Settings):
    if not settings.use_embeddings:
        return None
    from nlu.embeddings import load_embedder

    return load_embedder(
        settings.embedding_dir,
        backend=settings.embedding_backend,
        num_threads=thread_plan(settings).threads_per_call,
    )


def load_builtin(settings: Settings) -> BuiltinEngine:
    from nlu.embeddings import limit_math_threads

    # with or without embeddings (services/core/threads.py sizes the rest)
    limit_math_threads(thread_plan(settings).threads_per_call)
    engine = load_or_train(settings.nlu_dir, embedder=load_embedder_from_settings(settings))
    if settings.unit_confidence_threshold is not None:
        engine.unit_threshold = settings.unit_confidence_threshold
    return engine


def train_builtin_from_settings(settings: Settings) -> TrainReport:
    embedder = load_embedder_from_settings(settings)
    _, report = train_builtin(settings.nlu_dir, embedder=embedder)
    report.extra["embedding"] = getattr(embedder, "name", None)
    return report
