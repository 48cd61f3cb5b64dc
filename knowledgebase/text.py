"""Text normalisation and the two lexical representations of the base: character n-grams
(of phrasings and of whole entries) and jieba-word BM25 (of whole entries)."""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter, OrderedDict

import numpy as np
import opencc
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

# Punctuation and spacing carry no meaning for matching a question; full-width forms are
# folded by NFKC first, so one pattern covers both widths.
_NOISE = re.compile(r"[\s\.,!?;:'\"()\[\]{}<>~`@#$%^&*_+=|\\/\-、。，！？；：“”‘’（）《》【】…·]+")


_T2S: list[opencc.OpenCC] = []
_T2S_LOCK = threading.Lock()


def simplified(text: str) -> str:
    """Traditional characters as simplified ones (OpenCC t2s, ~25 µs a question): a question
    typed in 繁體 meets the simplified base in every score - n-grams and BM25 match no
    character otherwise, and e5 scores a traditional question lower against a simplified
    entry."""
    if text.isascii():
        return text
    if not _T2S:
        with _T2S_LOCK:
            if not _T2S:
                _T2S.append(opencc.OpenCC("t2s"))
    return _T2S[0].convert(text)


def normalise(text: str) -> str:
    # not converted to simplified here: entries are written in simplified characters and the
    # conversion would add 10-20 % to rebuilding a 5,000-entry index; the question is
    # converted once, before it is scored (KnowledgeIndex.search)
    return _NOISE.sub("", unicodedata.normalize("NFKC", text).lower())


class CharNgrams:
    """Character 1-3-gram TF-IDF. Needs no segmenter, so place names and new terms jieba does
    not know still match; IDF is fitted on the base itself, so words every question shares
    ("怎么办", "需要") weigh little. Rows are L2-normalised: products are cosines."""

    def __init__(self, fit_texts: list[str]) -> None:
        self.vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, preprocessor=normalise
        )
        # an empty base still gets a (one-term) vocabulary, so every call keeps working
        self.vectorizer.fit([t for t in fit_texts if normalise(t)] or ["〇"])

    def matrix(self, texts: list[str]) -> sparse.csr_matrix:
        return self.vectorizer.transform(texts).tocsr()


class ScoredRows:
    """Rows of a sparse matrix scored against sparse query vectors; the matrix is kept
    transposed so one query touches only the columns of its own terms."""

    def __init__(self, matrix: sparse.csr_matrix) -> None:
        self.matrix = matrix
        self._by_term = matrix.T.tocsr()

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def score(self, query: sparse.csr_matrix) -> np.ndarray:
        if query.nnz == 0:
            return np.zeros(self.matrix.shape[0], dtype=np.float32)
        out = self._by_term[query.indices].T @ query.data
        return np.asarray(out, dtype=np.float32).ravel()

    def score_many(self, queries: sparse.csr_matrix) -> np.ndarray:
        return np.asarray((queries @ self._by_term).toarray(), dtype=np.float32)


_WORDS_CACHE: OrderedDict[str, tuple[str, ...]] = OrderedDict()
_WORDS_LOCK = threading.Lock()
_WORDS_CACHE_SIZE = 50_000


def words(text: str) -> tuple[str, ...]:
    """jieba words (with the project's dictionary), normalised; remembered, because entries
    are segmented again on every rebuild of the index."""
    with _WORDS_LOCK:
        hit = _WORDS_CACHE.get(text)
        if hit is not None:
            _WORDS_CACHE.move_to_end(text)
            return hit
    from nlu.features import words as jieba_words

    found = tuple(w for w in (normalise(w) for w in jieba_words(text)) if w)
    with _WORDS_LOCK:
        _WORDS_CACHE[text] = found
        while len(_WORDS_CACHE) > _WORDS_CACHE_SIZE:
            _WORDS_CACHE.popitem(last=False)
    return found


class BM25:
    """Okapi BM25 over jieba words of whole entries (question and answer)."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        tokenised = [words(d) for d in docs]
        self.vocab: dict[str, int] = {}
        df: Counter[str] = Counter()
        for toks in tokenised:
            df.update(set(toks))
        for w in df:
            self.vocab[w] = len(self.vocab)
        n = max(1, len(docs))
        avg = max(1.0, float(np.mean([len(t) for t in tokenised])) if tokenised else 1.0)
        idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        rows, cols, vals = [], [], []
        for i, toks in enumerate(tokenised):
            length_norm = k1 * (1 - b + b * len(toks) / avg)
            for w, f in Counter(toks).items():
                rows.append(i)
                cols.append(self.vocab[w])
                vals.append(idf[w] * f * (k1 + 1) / (f + length_norm))
        self.rows = ScoredRows(
            sparse.csr_matrix(
                (vals, (rows, cols)), shape=(len(docs), max(1, len(self.vocab))), dtype=np.float32
            )
        )

    def query_vector(self, text: str) -> sparse.csr_matrix:
        ids = sorted({self.vocab[w] for w in words(text) if w in self.vocab})
        return sparse.csr_matrix(
            (np.ones(len(ids), dtype=np.float32), (np.zeros(len(ids), dtype=np.int64), ids)),
            shape=(1, self.rows.matrix.shape[1]),
        )

    def query_matrix(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.vstack([self.query_vector(t) for t in texts], format="csr")

    def score(self, text: str) -> np.ndarray:
        return self.rows.score(self.query_vector(text))
