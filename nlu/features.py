"""Text features for the linear classifiers: character n-grams, jieba words, embeddings."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.one_text import OneText, Row

USERDICT_FILE = Path(__file__).resolve().parent / "data" / "userdict.txt"
_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba():
    global _jieba_ready
    import jieba

    if _jieba_ready:  # every word list of every parse comes here: no lock once loaded
        return jieba
    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(60)
            jieba.dt.tmp_dir = str(Path.home() / ".cache")
            Path(jieba.dt.tmp_dir).mkdir(parents=True, exist_ok=True)
            jieba.initialize()
            if USERDICT_FILE.exists():
                # an open file: jieba leaks the handle of a path it opens itself
                with USERDICT_FILE.open(encoding="utf-8") as fh:
                    jieba.load_userdict(fh)
            _jieba_ready = True
    return jieba


def words(text: str) -> list[str]:
    """jieba words of a text, with the project's dictionary of places and matters."""
    return [w for w in _jieba().lcut(text) if w.strip()]


class TextFeatures:
    """Sparse character and word n-grams, optionally beside a dense sentence embedding.

    The embedding block is scaled so that neither kind of feature drowns the other in the
    linear model; `embedding_weight` is that scale.
    """

    def __init__(
        self, embedder=None, embedding_weight: float = 1.0, char_analyzer: str = "char_wb"
    ) -> None:
        # char_analyzer: "char_wb" keeps n-grams inside the spaces (the message classifiers);
        # "char" lets them run across them (the emergency classifier reads the spoken form,
        # which has none)
        self.chars = TfidfVectorizer(
            analyzer=char_analyzer, ngram_range=(1, 3), sublinear_tf=True, min_df=1
        )
        self.words = TfidfVectorizer(
            tokenizer=words,
            lowercase=False,
            token_pattern=None,
            ngram_range=(1, 2),
            sublinear_tf=True,
        )
        self.embedder = embedder
        self.embedding_weight = embedding_weight

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["embedder"] = None  # the embedding model is loaded from its own folder
        state.pop("_one", None)  # made again from the vectorizers
        return state

    def fit(self, texts: list[str], embeddings: np.ndarray | None = None) -> sparse.csr_matrix:
        self.__dict__.pop("_one", None)
        a = self.chars.fit_transform(texts)
        b = self.words.fit_transform(texts)
        return self._stack(a, b, texts, embeddings)

    def transform(
        self, texts: list[str], embeddings: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        return self._stack(
            self.chars.transform(texts), self.words.transform(texts), texts, embeddings
        )

    def transform_one(self, text: str, embedding: np.ndarray | None = None) -> Row:
        """transform([text], embedding[None]) as one sparse row, the same numbers without
        scikit-learn's per-call checks (nlu/one_text.py); `embedding`: the text's vector, else
        encoded here when the features have an embedder."""
        one = self.__dict__.get("_one")
        if one is None:  # after fit or unpickling
            one = self._one = (OneText(self.chars), OneText(self.words))
        blocks = [one[0].row(text), one[1].row(text)]
        if self.embedder is not None or embedding is not None:
            if embedding is None:
                embedding = self.embedder.encode([text])[0]
            blocks.append(Row.dense(np.asarray(embedding) * self.embedding_weight))
        return Row.stack(blocks)

    def _stack(self, a, b, texts: list[str], embeddings: np.ndarray | None) -> sparse.csr_matrix:
        blocks = [a, b]
        if self.embedder is not None or embeddings is not None:
            if embeddings is None:
                embeddings = self.embedder.encode(texts)
            blocks.append(sparse.csr_matrix(embeddings * self.embedding_weight))
        return sparse.hstack(blocks, format="csr")
