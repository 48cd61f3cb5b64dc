"""Retraining the built-in engine from the YAML training files plus stored labelled examples
(imported work orders, the dispatch desk's decisions), and replacing the running model only
when the new one is not worse on the held-out sets.

The held-out sets are the team's (nlu/data/heldout*.jsonl). The blind sets in tests/data/blind
are never used here: they measure, they do not choose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from nlu.builtin import BuiltinEngine
from nlu.evaluate import evaluate_engine, read_jsonl
from nlu.training_data import DATA_DIR, HELDOUT_FILE, Example, load_examples, training_files

log = logging.getLogger(__name__)

CONVERSATION_HELDOUT = DATA_DIR / "heldout_conversation.jsonl"
# The figures compared, and how much lower the new model may be on each before it is refused:
# half a point, about three of the 640 held-out messages (retraining on more data moves a
# figure by a message or two either way without being worse).
COMPARED = ("unit_top1", "routed_right", "request_type_accuracy", "conversation_intent")
TOLERANCE = 0.005


@dataclass
class RetrainReport:
    replaced: bool
    stored_examples: int
    training_examples: int
    seconds: float
    before: dict | None
    after: dict
    worse: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "replaced": self.replaced,
            "stored_examples": self.stored_examples,
            "training_examples": self.training_examples,
            "train_seconds": round(self.seconds, 1),
            "before": self.before,
            "after": self.after,
            "worse": self.worse,
        }


def stored_to_examples(rows: list[tuple[str, str | None, str | None]]) -> list[Example]:
    """(text, unit, request type) rows, newest last, as training examples newest first: the
    latest decision on a text wins over older ones and over the YAML files."""
    return [Example(text=t, intent=rtype, unit=unit) for t, unit, rtype in reversed(rows) if t]


def heldout_figures(
    engine: BuiltinEngine,
    heldout: Path = HELDOUT_FILE,
    conversation: Path = CONVERSATION_HELDOUT,
) -> dict:
    routing = evaluate_engine(engine, read_jsonl(heldout))
    talk = evaluate_engine(engine, read_jsonl(conversation))
    return {
        "unit_top1": routing["unit_top1"],
        "routed_right": routing["routed_right"],
        "request_type_accuracy": routing["request_type_accuracy"],
        "conversation_intent": talk["intent_accuracy"],
    }


def retrain(
    model_dir: Path,
    stored: list[Example],
    *,
    embedder=None,
    heldout: Path = HELDOUT_FILE,
    conversation: Path = CONVERSATION_HELDOUT,
    tolerance: float = TOLERANCE,
) -> RetrainReport:
    candidate, report = BuiltinEngine.train(
        stored + load_examples(), embedder=embedder, data_files=training_files()
    )
    candidate.meta["stored_examples"] = len(stored)
    after = heldout_figures(candidate, heldout, conversation)
    try:
        current = BuiltinEngine.load(model_dir, embedder=embedder)
    except (FileNotFoundError, ValueError, EOFError) as exc:
        log.info("no usable running model in %s (%s): the new one is taken", model_dir, exc)
        current = None
    before = heldout_figures(current, heldout, conversation) if current else None
    worse = [
        key
        for key in COMPARED
        if before is not None
        and before[key] is not None
        and after[key] is not None
        and after[key] < before[key] - tolerance
    ]
    if not worse:
        candidate.save(model_dir)
    return RetrainReport(
        replaced=not worse,
        stored_examples=len(stored),
        training_examples=report.examples,
        seconds=report.seconds,
        before=before,
        after=after,
        worse=worse,
    )
