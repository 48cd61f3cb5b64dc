"""Finding the FAQ entry that answers a question, and knowing when none does.

Each entry is seen five ways, each giving the entry one score for a question:

* dense: e5 cosine of the question with the entry's best phrasing (question or alternative);
* dense_doc: e5 cosine with the whole entry (question and answer together) - the answer
  carries the words a citizen uses when the phrasings do not;
* lexical: character 1-3-gram cosine with the best phrasing;
* lexical_doc: character n-gram cosine with the whole entry;
* bm25: jieba-word BM25 against the whole entry, relative to the best entry's.

A weighted sum ranks the entries; an answer model turns the first candidate's scores, its
margin over the runner-up and whether each signal on its own would rank it first into the
probability that it is right. Weights, answer model and
threshold are fitted on data (knowledgebase/calibration.py) and stored with the index; the
base answers by itself only when that probability reaches the threshold.

Rows of all entries are indexed; which entries may be returned is decided per question (a
citizen only gets published entries valid on the day; an editor searches everything).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from knowledgebase import boilerplate
from knowledgebase.boilerplate import Boilerplate
from knowledgebase.models import FaqEntry
from knowledgebase.text import BM25, CharNgrams, ScoredRows, simplified

FEATURES = ("dense", "dense_doc", "lexical", "lexical_doc", "bm25")
# The answer model sees the fused score, the margin over the runner-up and the whole-entry e5
# cosine: all three only grow as a match gets better, so the model cannot extrapolate against
# an exact match (raw lexical scores, learnt from held-out phrasings that never match exactly,
# did exactly that).
ANSWER_FEATURES = ("fused", "margin", "dense_doc")
# Every input an answer model may use; a calibration names the ones it was fitted with (the
# default above for calibrations fitted on a base's own phrasings). "<signal>_agrees" is 1 when
# that signal alone puts the fused first candidate first: when the e5 cosines and the
# character / word overlap with the question and the answer point at the same entry, the match
# is more often right than the fused score alone says (measured on queries written by people,
# calibration.fit_decision).
AGREEMENT_INPUTS = ("dense_agrees", "dense_doc_agrees", "lexical_doc_agrees", "bm25_agrees")
ANSWER_INPUTS = (*ANSWER_FEATURES, *AGREEMENT_INPUTS)
LEXICAL_ONLY = "lexical-only"
# Before any calibration: a reasonable order for people to look at; it never answers alone.
UNCALIBRATED_WEIGHTS = {
    "dense": 1.0,
    "dense_doc": 2.0,
    "lexical": 0.0,
    "lexical_doc": 0.3,
    "bm25": 0.03,
}

Encoder = Callable[[list[str]], np.ndarray]


def document(entry: FaqEntry, template: Boilerplate | None = None) -> str:
    """The whole entry as one text: what dense_doc, lexical_doc and bm25 are scored against
    (with `template`, the base's reply template left out of the answer)."""
    answer = template.remove_from(entry.answer) if template else entry.answer
    return f"{entry.question}\n{answer}"


def base_template(entries: Sequence[FaqEntry]) -> Boilerplate:
    """The reply template of a base (knowledgebase/boilerplate.py); the same for the same
    entries in any order."""
    return boilerplate.find([e.answer for e in entries])


@dataclass
class Calibration:
    """Fusion weights, answer model and threshold fitted for one feature set (`signature`:
    the embedding model's name, or LEXICAL_ONLY)."""

    signature: str
    weights: dict[str, float]
    coef: list[float]
    intercept: float
    threshold: float
    report: dict[str, Any] = field(default_factory=dict)
    # the answer model's inputs, in `coef` order (names from ANSWER_INPUTS)
    inputs: tuple[str, ...] = ANSWER_FEATURES

    @property
    def weight_vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) for f in FEATURES], dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "coef": self.coef,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "features": list(FEATURES),
            "answer_features": list(self.inputs),
        }

    @classmethod
    def from_params(
        cls, signature: str, params: dict[str, Any], report: dict[str, Any] | None = None
    ) -> Calibration:
        inputs = tuple(params.get("answer_features", []))
        if (
            list(params.get("features", [])) != list(FEATURES)
            or not inputs
            or not set(inputs) <= set(ANSWER_INPUTS)
            or len(inputs) != len(params["coef"])
        ):
            raise ValueError("calibration was fitted for another feature set")
        return cls(
            signature=signature,
            weights={k: float(v) for k, v in params["weights"].items()},
            coef=[float(c) for c in params["coef"]],
            intercept=float(params["intercept"]),
            threshold=float(params["threshold"]),
            report=report or {},
            inputs=inputs,
        )

    def confidence(self, features: Sequence[float]) -> float:
        z = self.intercept + sum(c * f for c, f in zip(self.coef, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def confidences(self, features: np.ndarray) -> np.ndarray:
        z = self.intercept + features @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def answer_features(
    fused: np.ndarray,
    feats: np.ndarray,
    first: int,
    second: int | None,
    inputs: Sequence[str] = ANSWER_FEATURES,
) -> list[float]:
    """The answer model's `inputs` for the first candidate. `fused` is -inf for the entries
    that may not answer (a signal agrees when it puts `first` first among the others)."""
    out = []
    for name in inputs:
        if name == "fused":
            out.append(float(fused[first]))
        elif name == "margin":
            runner_up = fused[second] if second is not None and np.isfinite(fused[second]) else 0.0
            out.append(float(fused[first] - runner_up))
        elif name == "dense_doc":
            out.append(float(feats[first, 1]))
        else:
            signal = feats[:, FEATURES.index(name.removesuffix("_agrees"))]
            best = np.max(signal, where=np.isfinite(fused), initial=-np.inf)
            # ties agree: a base without vectors has every dense score 0
            out.append(1.0 if signal[first] >= best else 0.0)
    return out


@dataclass
class Candidate:
    entry: FaqEntry
    score: float  # fused score, comparable between candidates of one question
    matched: str  # the phrasing that matched best
    features: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "question": self.entry.question,
            "unit": self.entry.unit,
            "status": self.entry.status,
            "valid_from": self.entry.valid_from.isoformat() if self.entry.valid_from else None,
            "valid_until": self.entry.valid_until.isoformat() if self.entry.valid_until else None,
            "score": round(self.score, 4),
            "matched": self.matched,
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }


@dataclass
class Retrieval:
    candidates: list[Candidate]
    threshold: float
    # probability that the first candidate is the right answer, from the answer model
    confidence: float = 0.0
    elapsed_ms: float = 0.0

    @property
    def answer(self) -> Candidate | None:
        if self.candidates and self.confidence >= self.threshold:
            return self.candidates[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        hit = self.answer
        return {
            "would_answer": hit is not None,
            "answer_id": hit.entry.id if hit else None,
            "confidence": round(self.confidence, 4),
            "threshold": round(self.threshold, 4) if math.isfinite(self.threshold) else None,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "candidates": [c.to_dict() for c in self.candidates],
        }


class KnowledgeIndex:
    """An in-memory index of every entry; rebuilt (and swapped in whole) when the base
    changes. `vectors` are the e5 vectors of the phrasings in `texts` order, `doc_vectors`
    those of `document(entry, base_template(entries))` in entry order (entries sorted by
    id)."""

    def __init__(
        self,
        entries: list[FaqEntry],
        calibration: Calibration | None = None,
        *,
        vectors: np.ndarray | None = None,
        doc_vectors: np.ndarray | None = None,
        encoder: Encoder | None = None,
        threshold: float | None = None,
    ) -> None:
        self.entries = sorted(entries, key=lambda e: e.id)
        self._position = {e.id: i for i, e in enumerate(self.entries)}
        self.texts: list[str] = []
        positions: list[int] = []
        starts: list[int] = []
        for entry in self.entries:
            starts.append(len(self.texts))
            phrasings = entry.phrasings()
            self.texts.extend(phrasings)
            positions.extend(range(len(phrasings)))
        self.template = base_template(self.entries)
        self.docs = [document(e, self.template) for e in self.entries]
        self.starts = np.asarray(starts, dtype=np.int64)
        self.row_position = np.asarray(positions, dtype=np.int64)
        self.row_entry = np.repeat(
            np.arange(len(self.entries)), np.diff(np.append(self.starts, len(self.texts)))
        )
        chars = CharNgrams(self.texts + self.docs)
        self.chars = chars
        self.lex_rows = ScoredRows(chars.matrix(self.texts)) if self.texts else None
        self.lex_docs = ScoredRows(chars.matrix(self.docs)) if self.docs else None
        self.bm25 = BM25(self.docs) if self.docs else None
        dense_ok = (
            encoder is not None
            and vectors is not None
            and doc_vectors is not None
            and len(vectors) == len(self.texts)
            and len(doc_vectors) == len(self.entries)
        )
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32) if dense_ok else None
        self.doc_vectors = np.ascontiguousarray(doc_vectors, dtype=np.float32) if dense_ok else None
        self.encoder = encoder if dense_ok else None
        self.calibration = calibration
        self.threshold_override = threshold
        self._allowed_cache: tuple[date, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def dense(self) -> bool:
        return self.vectors is not None

    @property
    def threshold(self) -> float:
        if self.threshold_override is not None:
            return self.threshold_override
        # without a calibration the base never answers by itself: agents still see candidates
        return self.calibration.threshold if self.calibration else math.inf

    @property
    def weights(self) -> np.ndarray:
        if self.calibration is not None:
            return self.calibration.weight_vector
        return np.array([UNCALIBRATED_WEIGHTS[f] for f in FEATURES], dtype=np.float32)

    def get(self, entry_id: str) -> FaqEntry | None:
        i = self._position.get(entry_id)
        return None if i is None else self.entries[i]

    def answerable(self, day: date) -> np.ndarray:
        """Which entries may answer citizens on `day`: published and valid that day."""
        cached = self._allowed_cache
        if cached is not None and cached[0] == day:
            return cached[1]
        mask = np.array([e.answerable_on(day) for e in self.entries], dtype=bool)
        self._allowed_cache = (day, mask)
        return mask

    def features(self, question: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Per-entry scores (entries x FEATURES) and the row-level lexical and dense scores."""
        n = len(self.entries)
        feats = np.zeros((n, len(FEATURES)), dtype=np.float32)
        q_chars = self.chars.matrix([question])
        lex_rows = self.lex_rows.score(q_chars)
        feats[:, 2] = np.maximum.reduceat(lex_rows, self.starts)
        feats[:, 3] = self.lex_docs.score(q_chars)
        bm = self.bm25.score(question)
        top = bm.max() if len(bm) else 0.0
        feats[:, 4] = bm / top if top > 0 else 0.0
        dense_rows = None
        if self.vectors is not None and self.encoder is not None:
            q = np.asarray(self.encoder([question])[0], dtype=np.float32)
            dense_rows = self.vectors @ q
            feats[:, 0] = np.maximum.reduceat(dense_rows, self.starts)
            feats[:, 1] = self.doc_vectors @ q
        return feats, lex_rows, dense_rows

    def search(
        self,
        question: str,
        day: date | None = None,
        k: int = 3,
        *,
        allowed: np.ndarray | None = None,
    ) -> Retrieval:
        """Top-k entries for a question. With `day`, only entries answerable that day;
        with neither `day` nor `allowed`, every entry (the editors' search)."""
        started = time.perf_counter()
        threshold = self.threshold
        if not self.entries or not question.strip():
            return Retrieval([], threshold)
        if allowed is None and day is not None:
            allowed = self.answerable(day)
        feats, lex_rows, dense_rows = self.features(simplified(question))
        weights = self.weights
        fused = (feats @ weights).astype(np.float64)
        if allowed is not None:
            fused = np.where(allowed, fused, -np.inf)
        k = max(1, min(k, len(self.entries)))
        top = np.argpartition(-fused, min(k, len(fused) - 1))[: k + 1]
        order = top[np.argsort(-fused[top], kind="stable")]
        order = order[np.isfinite(fused[order])]
        if len(order) == 0:
            return Retrieval([], threshold, elapsed_ms=(time.perf_counter() - started) * 1000)
        confidence = 0.0
        if self.calibration is not None:
            second = int(order[1]) if len(order) > 1 else None
            confidence = self.calibration.confidence(
                answer_features(fused, feats, int(order[0]), second, self.calibration.inputs)
            )
        candidates = []
        for i in order[:k]:
            start = self.starts[i]
            stop = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.texts)
            row = weights[2] * lex_rows[start:stop]
            if dense_rows is not None:
                row = row + weights[0] * dense_rows[start:stop]
            candidates.append(
                Candidate(
                    entry=self.entries[i],
                    score=float(fused[i]),
                    matched=self.texts[start + int(np.argmax(row))],
                    features={f: float(v) for f, v in zip(FEATURES, feats[i], strict=True)},
                )
            )
        elapsed = (time.perf_counter() - started) * 1000
        return Retrieval(candidates, threshold, confidence, elapsed)
