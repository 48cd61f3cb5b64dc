"""Training data in Rasa's NLU YAML format, read without Rasa.

Routing examples carry their unit in the intent-level metadata (`metadata: {unit: code}`),
which Rasa accepts and ignores, so the same files train both engines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAINING_DIR = DATA_DIR / "training"
# Dialogue acts (nlu/dialogue_acts.py): replies read in the state the bot waits in. Kept apart
# from TRAINING_DIR, whose every intent the message classifier learns.
DIALOGUE_DIR = DATA_DIR / "dialogue"
HELDOUT_FILE = DATA_DIR / "heldout.jsonl"


@dataclass(frozen=True)
class Example:
    text: str
    intent: str | None  # None: a unit-only example (a dispatch decision without a type)
    unit: str | None = None
    # the dialogue state a dialogue-act example answers (`metadata: {state: ...}`)
    state: str | None = None


class TrainingDataError(ValueError):
    pass


def _example_texts(block: object, source: Path) -> list[tuple[str, dict]]:
    if isinstance(block, str):
        texts = []
        for line in block.splitlines():
            line = line.strip()
            if not line:
                continue
            if not line.startswith("- "):
                raise TrainingDataError(
                    f"{source}: example line does not start with '- ': {line!r}"
                )
            texts.append((line[2:].strip(), {}))
        return texts
    if isinstance(block, list):
        out = []
        for item in block:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                out.append((item["text"].strip(), item.get("metadata") or {}))
            else:
                raise TrainingDataError(f"{source}: bad example entry {item!r}")
        return out
    raise TrainingDataError(f"{source}: 'examples' must be a block string or a list")


def read_file(path: Path) -> list[Example]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: {exc}") from exc
    examples = []
    for entry in (doc or {}).get("nlu") or []:
        intent = entry.get("intent")
        if not intent:
            continue  # synonyms, regexes, lookups: not examples
        meta = entry.get("metadata") or {}
        for text, item_meta in _example_texts(entry.get("examples"), path):
            unit = item_meta.get("unit", meta.get("unit"))
            state = item_meta.get("state", meta.get("state"))
            if text:
                examples.append(Example(text=text, intent=str(intent), unit=unit, state=state))
    return examples


def training_files(directory: Path = TRAINING_DIR) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yml"))


def load_examples(directory: Path = TRAINING_DIR) -> list[Example]:
    examples: list[Example] = []
    for path in training_files(directory):
        examples.extend(read_file(path))
    if not examples:
        raise TrainingDataError(f"no training examples under {directory}")
    return examples


def dedupe(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    out = []
    for ex in examples:
        if ex.text not in seen:
            seen.add(ex.text)
            out.append(ex)
    return out
