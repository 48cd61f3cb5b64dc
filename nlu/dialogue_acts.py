"""Dialogue acts: what a reply means in the state the bot is waiting in.

"好的" files a complaint at the confirmation step and says "solved" after a knowledge-base
answer; "不用了" cancels a draft and declines an offer. One linear model reads a reply
together with its state: character n-grams of the reply, the same n-grams crossed with the
state (so a phrase can mean one thing in one state and another elsewhere), what the entity
extractor found (a phone, a place) and the reply's length. Only the acts seen in a state's
training examples (or in every state's) can be its answer.

Training data: Rasa NLU YAML in `nlu/data/dialogue/`, the state in each block's `metadata`;
`state: any` examples are learnt for every state. Training takes about a second, so the model
is trained once per process on first use and never saved.
"""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from nlu.one_text import OneText, decision
from nlu.training_data import DIALOGUE_DIR, Example, training_files
from nlu.types import Entities

# The waiting states, as the conversation service names its state families.
STATES = ("confirm", "ask_location", "ask_phone", "kb_answer", "kb_choice", "offer", "revisit")
ANY_STATE = "any"
ACTS = (
    "affirm",  # yes: file it, the details are right
    "deny",  # no, without saying what instead (at kb_choice: none of these)
    "cancel",  # drop what is in progress
    "correct",  # change or add something: a place, a phone, the matter (with the new content)
    "provide_info",  # the detail asked for (a place, a phone, a time)
    "thanks",  # after an answer: resolved, thank you
    "not_resolved",  # after an answer: it did not help
    "choose",  # picks an item of a list
    "ask_human",  # wants a person
    "new_request",  # something else: a new matter or question
    "emergency",  # danger now
    # the answer to a revisit question posted in the chat (state revisit)
    "satisfied",  # 1, 满意
    "basically_satisfied",  # 2, 基本满意
    "dissatisfied",  # 3, 不满意, "还是老样子"
)
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")
HELDOUT_FILE = Path(__file__).resolve().parent / "data" / "heldout_dialogue_acts.jsonl"

_SPACE_PUNCT = re.compile(r"[\s，。！？!?,.、；;：:~～…“”\"'（）()【】\-—]+")
# A run of digits (Arabic, full-width after NFKC, or spoken Chinese digits) long enough to be
# a phone or house number reads as one placeholder: which digits they are says nothing.
_NUMBER_RUN = re.compile(r"[0-9零〇一幺二两三四五六七八九]{5,}|[0-9]{3,}")


@dataclass(frozen=True)
class DialogueAct:
    act: str
    confidence: float
    state: str


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SPACE_PUNCT.sub("", text)
    return _NUMBER_RUN.sub("#", text)


def _flags(entities: Entities | None) -> list[str]:
    if entities is None:
        return []
    flags = []
    if entities.phones:
        flags.append("PHONE")
    if entities.address is not None:
        flags.append("PLACE")
    if entities.times:
        flags.append("TIME")
    return flags


def _length_bucket(text: str) -> str:
    n = len(text)
    return (
        "LEN1"
        if n <= 1
        else "LEN2"
        if n <= 3
        else "LEN3"
        if n <= 6
        else "LEN4"
        if n <= 12
        else "LEN5"
    )


def features(doc: str) -> list[str]:
    """The analyser: `doc` is "state\\tflags\\ttext" (one string, so the vectoriser pickles)."""
    state, flags, text = doc.split("\t", 2)
    grams = [text[i : i + n] for n in (1, 2, 3) for i in range(len(text) - n + 1)]
    marks = [*flags.split(), _length_bucket(text), "^" + text[:2], text[-2:] + "$"]
    if len(text) <= 4:
        marks.append("=" + text)  # a whole short reply is its own strongest clue
    tokens = grams + marks
    return tokens + [f"{state}|{t}" for t in tokens] + [f"STATE={state}"]


def _doc(text: str, state: str, entities: Entities | None) -> str:
    return f"{state}\t{' '.join(_flags(entities))}\t{normalise(text)}"


class DialogueActModel:
    def __init__(
        self, vectoriser: TfidfVectorizer, model: LinearSVC, allowed: dict[str, list[str]]
    ) -> None:
        self.vectoriser = vectoriser
        self.model = model
        classes = list(model.classes_)
        self._mask = {
            state: np.array([c in acts for c in classes]) for state, acts in allowed.items()
        }
        self.allowed = allowed

    @classmethod
    def train(cls, examples: Iterable[Example], entities_of=None) -> DialogueActModel:
        """`entities_of(text)` gives a training text's entities, as the parse would at run
        time; without it the model learns from the words alone."""
        docs, labels = [], []
        allowed: dict[str, set[str]] = {s: set() for s in STATES}
        for ex in examples:
            if ex.intent not in ACTS:
                raise ValueError(f"unknown dialogue act {ex.intent!r} ({ex.text!r})")
            states = STATES if ex.state in (None, ANY_STATE) else (ex.state,)
            entities = entities_of(ex.text) if entities_of else None
            for state in states:
                if state not in allowed:
                    raise ValueError(f"unknown dialogue state {state!r} ({ex.text!r})")
                allowed[state].add(ex.intent)
                docs.append(_doc(ex.text, state, entities))
                labels.append(ex.intent)
        vectoriser = TfidfVectorizer(analyzer=features, sublinear_tf=True)
        x = vectoriser.fit_transform(docs)
        # a linear SVM trains in a fraction of a second here; logistic regression took a minute
        model = LinearSVC(C=1.0, random_state=0)
        model.fit(x, labels)
        return cls(vectoriser, model, {s: sorted(a) for s, a in allowed.items()})

    def classify(self, text: str, state: str, entities: Entities | None = None) -> DialogueAct:
        if state not in self._mask:
            raise ValueError(f"unknown dialogue state {state!r}")
        # the vectoriser's and the SVM's arithmetic on one row, without scikit-learn's
        # per-call checks (nlu/one_text.py): this runs on the event loop, every waiting turn
        one = self.__dict__.get("_one")
        if one is None:
            one = self._one = OneText(self.vectoriser)
        row = one.row(_doc(text, state, entities))
        scores = decision(self.model.coef_, self.model.intercept_, row)
        # a softmax over the acts the state allows: a confidence to compare, not a probability
        allowed = self._mask[state]
        e = np.where(allowed, np.exp(3.0 * (scores - scores[allowed].max())), 0.0)
        best = int(np.argmax(e))
        return DialogueAct(str(self.model.classes_[best]), float(e[best] / e.sum()), state)


def dialogue_files(directory: Path = DIALOGUE_DIR) -> list[Path]:
    return training_files(directory)


def load_examples(directory: Path = DIALOGUE_DIR) -> list[Example]:
    from nlu.training_data import read_file

    examples: list[Example] = []
    for path in dialogue_files(directory):
        examples.extend(read_file(path))
    return examples


def entity_reader():  # noqa: ANN201 - a function text -> Entities
    """The project's entity extractor, as the engines run it, for training texts."""
    from nlu.entities import EntityExtractor
    from nlu.gazetteer import Gazetteer

    extractor = EntityExtractor(Gazetteer.load())
    return lambda text: extractor.extract(text)


@functools.cache
def default_model() -> DialogueActModel:
    """The model trained on the project's dialogue-act data, once per process."""
    started = time.perf_counter()
    model = DialogueActModel.train(load_examples(), entity_reader())
    model.seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return model


def read_heldout(path: Path = HELDOUT_FILE) -> list[dict]:
    """`{"text", "state", "act"}` per line: replies written apart from the training data."""
    import json

    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            if row.get("state") not in STATES or row.get("act") not in ACTS:
                raise ValueError(f"{path}:{number}: bad state or act in {row}")
            rows.append(row)
    return rows


def evaluate(model: DialogueActModel, rows: list[dict], entities_of=None) -> dict:
    """Accuracy on held-out replies, overall and per state, with the mistakes."""
    wrong = []
    per_state: dict[str, list[int]] = {}
    for row in rows:
        entities = entities_of(row["text"]) if entities_of else None
        found = model.classify(row["text"], row["state"], entities)
        ok = found.act == row["act"]
        per_state.setdefault(row["state"], []).append(int(ok))
        if not ok:
            wrong.append({**row, "predicted": found.act, "confidence": round(found.confidence, 3)})
    total = sum(sum(v) for v in per_state.values())
    return {
        "replies": len(rows),
        "accuracy": round(total / len(rows), 4) if rows else 0.0,
        "per_state": {s: round(sum(v) / len(v), 4) for s, v in sorted(per_state.items())},
        "mistakes": wrong,
    }
