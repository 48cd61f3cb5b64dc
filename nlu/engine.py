"""Getting an engine ready: load the saved built-in model, or train it when it is missing or
was trained on other data than the project's current training files."""

from __future__ import annotations

import logging
from pathlib import Path

from nlu.builtin import BuiltinEngine, TrainReport, data_fingerprint, read_meta
from nlu.training_data import load_examples, training_files

log = logging.getLogger(__name__)


def train_builtin(model_dir: Path, *, embedder=None) -> tuple[BuiltinEngine, TrainReport]:
    engine, report = BuiltinEngine.train(
        load_examples(), embedder=embedder, data_files=training_files()
    )
    engine.save(model_dir)
    return engine, report


def load_or_train(model_dir: Path, *, embedder=None) -> BuiltinEngine:
    meta = read_meta(model_dir)
    wanted_embedding = getattr(embedder, "name", None)
    if (
        meta is not None
        and meta.get("data") == data_fingerprint(training_files())
        and meta.get("embedding") == wanted_embedding
    ):
        try:
            return BuiltinEngine.load(model_dir, embedder=embedder)
        except (FileNotFoundError, ValueError, EOFError) as exc:
            log.warning("saved NLU model unusable (%s); training a new one", exc)
    log.info("training the built-in NLU model into %s", model_dir)
    engine, report = train_builtin(model_dir, embedder=embedder)
    log.info("trained on %d examples in %.1fs", report.examples, report.seconds)
    return engine
