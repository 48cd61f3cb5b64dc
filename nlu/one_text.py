"""scikit-learn's text transforms for one message at a time, without its per-call checks.

A parse turns one message into four TF-IDF rows (the engine's characters and words, the
emergency detector's characters and words) and two logistic-regression scores. Through
scikit-learn each call validates its input (check_array, narwhals' data-frame probes, the
parameter validator's signature binding) and builds scipy matrices to stack them: measured
with bench/profile_parse.py, 6-7 ms of CPU per parse against a model that is a few dot
products. These functions do the same arithmetic, in the same order, on plain arrays:

* `tfidf_row` is TfidfVectorizer.transform for one text (the vectorizer's own analyzer; the
  counts; 1 + log tf when sublinear; times idf; L2 norm summed in index order, as
  sklearn.utils.sparsefuncs_fast does), so the row is bit for bit the one sklearn makes;
* `Row` is one sparse row (sorted column indices, float64 values), `Row.stack` the result of
  scipy.sparse.hstack of such rows and dense blocks (zeros dropped, as csr_matrix does);
* `decision` is LinearModel.decision_function through the same scipy product sklearn uses.

Only fitted vectorizers of the kinds the project trains are handled (no binary counts, no
max_features in transform, l2 or no norm); anything else raises ValueError at first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

_INDEX = np.int32


@dataclass(frozen=True)
class Row:
    """One sparse row: column indices (ascending) and their values."""

    indices: np.ndarray
    data: np.ndarray
    width: int

    @classmethod
    def dense(cls, values: np.ndarray) -> Row:
        """A dense block as csr_matrix keeps it: its non-zero entries."""
        values = np.asarray(values).ravel()
        nonzero = np.flatnonzero(values).astype(_INDEX)
        return cls(nonzero, values[nonzero], values.shape[0])

    @classmethod
    def stack(cls, blocks: list[Row]) -> Row:
        """The blocks side by side (scipy.sparse.hstack of one-row matrices)."""
        indices, data, offset = [], [], 0
        for block in blocks:
            indices.append(block.indices.astype(np.int64) + offset)
            data.append(block.data)
            offset += block.width
        index_type = _INDEX if offset <= np.iinfo(_INDEX).max else np.int64
        return cls(
            np.concatenate(indices).astype(index_type),
            np.concatenate(data).astype(np.result_type(*[d.dtype for d in data])),
            offset,
        )

    def matrix(self) -> sparse.csr_matrix:
        """As a 1 x width CSR matrix."""
        indptr = np.array([0, len(self.indices)], dtype=self.indices.dtype)
        return sparse.csr_matrix((self.data, self.indices, indptr), shape=(1, self.width))


class OneText:
    """A fitted TfidfVectorizer's transform of one text. The analyzer is built once; build
    another OneText after changing the vectorizer (its tokenizer, say)."""

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        if getattr(vectorizer, "binary", False) or vectorizer.norm not in ("l2", None):
            raise ValueError("only non-binary TF-IDF with l2 or no norm is supported")
        if vectorizer.dtype is not np.float64 and np.dtype(vectorizer.dtype) != np.float64:
            raise ValueError("only float64 TF-IDF is supported")
        self.vocabulary = vectorizer.vocabulary_
        self.analyze = vectorizer.build_analyzer()
        self.idf = vectorizer.idf_ if vectorizer.use_idf else None
        self.sublinear = vectorizer.sublinear_tf
        self.l2 = vectorizer.norm == "l2"
        self.width = len(self.vocabulary)

    def row(self, text: str) -> Row:
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for feature in self.analyze(text):
            index = vocabulary.get(feature)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        indices = np.fromiter(counts.keys(), dtype=_INDEX, count=len(counts))
        data = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        order = np.argsort(indices, kind="stable")
        indices, data = indices[order], data[order]
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[indices]
        if self.l2:
            total = 0.0
            for value in data.tolist():  # in index order, as sklearn's Cython loop sums
                total += value * value
            if total != 0.0:
                data /= math.sqrt(total)
        return Row(indices, data, self.width)


def decision(coef: np.ndarray, intercept: np.ndarray, row: Row) -> np.ndarray:
    """decision_function of a linear model for one row: scores of shape (classes,) or (1,)."""
    coef_t = coef.T if coef.ndim == 2 else coef
    return np.asarray(row.matrix() @ coef_t).ravel() + intercept
