"""The leakage guard: no held-out or blind line is (nearly) a line the models were trained on.

Every evaluation file — the blind sets written outside the team (tests/data/blind/), the NLU's
held-out sets (nlu/data/heldout*.jsonl) and the knowledge base's evaluation queries — is
compared with every training text: the NLU's YAML examples (every file under
nlu/data/training/, whoever added it) and, for the FAQ query files, the knowledge base's
questions and alternative phrasings. Texts are compared normalised (NFKC, lower case,
punctuation and spaces removed); a pair at similarity ≥ 0.8 fails. The similarity is
rapidfuzz's normalised Indel ratio, which is difflib's ratio computed on the longest common
subsequence (never below difflib's figure, so this guard is at least as strict).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from nlu.training_data import read_file

ROOT = Path(__file__).resolve().parents[1]
TRAINING_DIR = ROOT / "nlu" / "data" / "training"
# the message models' training data
TRAINING_DIRS = [TRAINING_DIR]
# the reply and emergency models' training data, guarded here against the blind dialogues and
# emergency lines (and by tests/test_dialogue_acts.py and tests/test_emergency.py against their
# own held-out sets)
DIALOGUE_DIR = ROOT / "nlu" / "data" / "dialogue"
EMERGENCY_DIR = ROOT / "nlu" / "data" / "emergency"
BLIND_CONVERSATION_FILES = sorted(
    [
        *(ROOT / "tests" / "data" / "blind").glob("dialogues*.jsonl"),
        *(ROOT / "tests" / "data" / "blind").glob("emergency*.jsonl"),
    ]
)
FAQ_FILE = ROOT / "knowledgebase" / "data" / "faq.jsonl"
THRESHOLD = 80.0  # percent
# A dialogue is made of its matter and of short replies (对, 确认, 转人工, 不用了) that form a
# closed set every dialogue shares with the training data; those replies are not test items
# of their own. Turns shorter than this (normalised characters) are left out of the guard.
DIALOGUE_MIN_CHARS = 8

HELDOUT_FILES = sorted(
    [
        *(ROOT / "tests" / "data" / "blind").glob("*.jsonl"),
        *(ROOT / "nlu" / "data").glob("heldout*.jsonl"),
        ROOT / "knowledgebase" / "data" / "eval_queries.jsonl",
        *(ROOT / "knowledgebase" / "data").glob("heldout*.jsonl"),
        # written outside the team from the entries' questions; tunes the answer decision
        *(ROOT / "knowledgebase" / "data").glob("dev_queries*.jsonl"),
    ]
)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def heldout_texts(path: Path) -> tuple[list[str], bool]:
    """The texts of one evaluation file, and whether it holds FAQ queries."""
    texts, is_faq = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "turns" in row:
            texts += [t for t in row["turns"] if len(normalise(t)) >= DIALOGUE_MIN_CHARS]
        elif "act" in row:  # a reply in a dialogue state: the same closed set of short ones
            if len(normalise(row["text"])) >= DIALOGUE_MIN_CHARS:
                texts.append(row["text"])
        elif "query" in row:
            texts.append(row["query"])
            is_faq = True
        else:
            texts.append(row["text"])
    return texts, is_faq


def nlu_training_texts() -> list[str]:
    return [
        e.text
        for folder in TRAINING_DIRS
        for path in sorted(folder.rglob("*.yml"))
        for e in read_file(path)
    ]


# A phone or house number (digits, or spoken Chinese digits) is one placeholder, as the reply
# model itself reads it (nlu/dialogue_acts.normalise): which digits a number has is no phrasing,
# and two made-up mobile numbers share most of their digits by chance.
_NUMBER_RUN = re.compile(r"[0-9零〇一幺二两三四五六七八九]{5,}|[0-9]{3,}")


def reply_normalise(text: str) -> str:
    return _NUMBER_RUN.sub("#", normalise(text))


def blind_conversation_texts(path: Path) -> list[str]:
    """The blind dialogue turns and emergency lines; a turn that is a short reply once its
    number is a placeholder ("13859012374", "电话 13859012374") is left out like "对"."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if "turns" in row:
                texts += [t for t in row["turns"] if len(reply_normalise(t)) >= DIALOGUE_MIN_CHARS]
            else:
                texts.append(row["text"])
    return texts


def conversation_training_texts() -> list[str]:
    """The dialogue-act examples (every file under nlu/data/dialogue/) and the emergency
    classifier's examples, both labels."""
    from nlu.emergency import training_examples

    acts = [e.text for path in sorted(DIALOGUE_DIR.rglob("*.yml")) for e in read_file(path)]
    emergency, _ = training_examples(EMERGENCY_DIR)
    assert emergency, f"no emergency training examples under {EMERGENCY_DIR}"
    return acts + emergency


def faq_training_texts() -> list[str]:
    texts = []
    for line in FAQ_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            texts += [entry["question"], *(entry.get("alternatives") or [])]
    return texts


def near_pairs(
    held: list[str], trained: list[str], norm: Callable[[str], str] = normalise
) -> list[tuple[float, str, str]]:
    scores = process.cdist(
        [norm(t) for t in held],
        [norm(t) for t in trained],
        scorer=fuzz.ratio,
        score_cutoff=THRESHOLD,
        dtype=np.float32,
        workers=-1,
    )
    rows, cols = np.nonzero(scores)
    return [(float(scores[i, j]), held[i], trained[j]) for i, j in zip(rows, cols, strict=True)]


@pytest.fixture(scope="module")
def nlu_trained() -> list[str]:
    return nlu_training_texts()


@pytest.fixture(scope="module")
def faq_trained() -> list[str]:
    return faq_training_texts()


@pytest.mark.parametrize("path", HELDOUT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_heldout_line_is_near_a_training_line(path, nlu_trained, faq_trained):
    held, is_faq = heldout_texts(path)
    assert held, f"{path} has no texts"
    trained = nlu_trained + (faq_trained if is_faq else [])
    pairs = near_pairs(held, trained)
    shown = "\n".join(f"  {s:.0f}%  {h!r}  ~  {t!r}" for s, h, t in pairs[:20])
    assert not pairs, f"{len(pairs)} near-duplicate pairs in {path.name}:\n{shown}"


@pytest.mark.parametrize("path", BLIND_CONVERSATION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_blind_turn_or_emergency_line_is_near_a_reply_or_emergency_example(path):
    # dialogue turns shorter than DIALOGUE_MIN_CHARS are the closed set of short replies
    held = blind_conversation_texts(path)
    trained = conversation_training_texts()
    assert held and len(trained) > 500
    pairs = near_pairs(held, trained, reply_normalise)
    shown = "\n".join(f"  {s:.0f}%  {h!r}  ~  {t!r}" for s, h, t in pairs[:40])
    assert not pairs, f"{len(pairs)} near-duplicate pairs in {path.name}:\n{shown}"


def test_the_guard_sees_punctuation_and_near_copies():
    # the same line but for punctuation and spaces, and a one-word change, are both caught
    held = ["二手房过户去不动产登记中心要带哪些材料？买卖双方都要到场吗", "完全不相干的一句话"]
    trained = ["二手房过户 去不动产登记中心要带哪些材料,买卖双方都要到场吗！"]
    assert [h for _, h, _ in near_pairs(held, trained)] == [held[0]]
    assert near_pairs(["骨灰寄存一年多少钱最长能放几年"], ["骨灰寄存一年多少钱最长能存几年"])
    assert normalise("ＡＢＣ，１２３ 你好！") == "abc123你好"


def test_every_training_file_is_looked_at(nlu_trained):
    # files other engineers add under nlu/data/training/ count too (rglob)
    assert len(list(TRAINING_DIR.rglob("*.yml"))) >= 2
    assert len(nlu_trained) > 1000
