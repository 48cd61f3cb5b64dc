"""Finding the FAQ entry that answers a question, and knowing when none does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from knowledgebase.models import FaqEntry

# A lexical cosine above which the best entry answers by itself. Calibrated on the demo base's
# query set by bench/kb.py; a deployment can set HOTLINE_KB_THRESHOLD.
DEFAULT_THRESHOLD = 0.55


@dataclass
class Candidate:
    entry: FaqEntry
    score: float
    matched: str


@dataclass
class Retrieval:
    candidates: list[Candidate]
    threshold: float

    @property
    def answer(self) -> Candidate | None:
        if self.candidates and self.candidates[0].score >= self.threshold:
            return self.candidates[0]
        return None


class KnowledgeIndex:
    """An in-memory index of every entry's phrasings; rebuilt when the base changes."""

    def __init__(self, entries: list[FaqEntry], threshold: float | None = None) -> None:
        self.entries = {e.id: e for e in entries}
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self._rows: list[tuple[str, str]] = [(e.id, p) for e in entries for p in e.phrasings()]
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True
        )
        if self._rows:
            self._matrix = self._vectorizer.fit_transform([text for _, text in self._rows])
        else:
            self._matrix = None

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, query: str, day: date, k: int = 3) -> Retrieval:
        if self._matrix is None or not query.strip():
            return Retrieval([], self.threshold)
        scores = (self._matrix @ self._vectorizer.transform([query]).T).toarray().ravel()
        best: dict[str, Candidate] = {}
        for row in np.argsort(-scores):
            entry_id, text = self._rows[row]
            entry = self.entries[entry_id]
            if entry_id in best or not entry.answerable_on(day):
                continue
            best[entry_id] = Candidate(entry, float(scores[row]), text)
            if len(best) >= k:
                break
        return Retrieval(list(best.values()), self.threshold)
