"""Fitting the fusion weights, the answer model and the answer threshold on the base itself.

e5 cosines of related Chinese questions bunch in 0.85-0.95 and character n-gram cosines
depend on length and wording, so no fixed number can say "this is the answer". Instead every
alternative phrasing is used twice as a held-out question:

* leave-phrasing-out: the phrasing is removed from the index; the entry's question, other
  phrasings and answer are still there, so the right answer is that entry (answerable);
* leave-entry-out: the whole entry is removed; whatever comes first is a wrong answer (an
  unanswerable question close to the base - the hard kind, with near-duplicate topics still
  present).

Only alternatives are held out, never the question: the whole-entry features contain the
question, so holding it out would leak. The fusion weights are found by coordinate ascent on
leave-phrasing-out recall@1 (recall@3 breaks ties); a logistic answer model learns from both
kinds whether the first candidate is right; the threshold is the lowest probability at which
at most `target_false` of the unanswerable questions and at most `target_wrong` of the
answerable ones get a wrong automatic answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from knowledgebase.retrieval import (
    AGREEMENT_INPUTS,
    ANSWER_FEATURES,
    FEATURES,
    LEXICAL_ONLY,
    UNCALIBRATED_WEIGHTS,
    Calibration,
    KnowledgeIndex,
    answer_features,
)
from knowledgebase.text import simplified

MIN_QUERIES = 40
DEFAULT_TARGET_FALSE = 0.05
DEFAULT_TARGET_WRONG = 0.03
# Grids per weight; "dense" (or "lexical" without vectors) is the fixed unit of scale.
DENSE_GRIDS = {
    "dense_doc": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    "lexical": (0.0, 0.05, 0.1, 0.2, 0.3),
    "lexical_doc": (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8),
    "bm25": (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12),
}
LEXICAL_GRIDS = {
    "lexical_doc": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "bm25": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
}


class NotEnoughData(ValueError):
    """The base has too few alternative phrasings to calibrate on."""


@dataclass
class HeldOut:
    entry: np.ndarray  # the entry each held-out phrasing belongs to
    pos: np.ndarray  # queries x entries x FEATURES, the phrasing removed
    bm25_without: np.ndarray  # queries x entries, bm25 normalised without the own entry


def held_out(index: KnowledgeIndex, max_queries: int = 1500, seed: int = 0) -> HeldOut:
    rows = np.flatnonzero(index.row_position >= 1)
    if len(rows) < MIN_QUERIES:
        raise NotEnoughData(
            f"only {len(rows)} alternative phrasings; {MIN_QUERIES} are needed to calibrate"
        )
    if len(rows) > max_queries:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_queries, replace=False))
    n_entries = len(index.entries)
    pos = np.zeros((len(rows), n_entries, len(FEATURES)), dtype=np.float32)
    bm_without = np.zeros((len(rows), n_entries), dtype=np.float32)
    phr_chars = index.lex_rows.matrix
    for chunk_ix in np.array_split(np.arange(len(rows)), max(1, len(rows) // 128)):
        chunk = rows[chunk_ix]
        r = np.arange(len(chunk))
        q_chars = phr_chars[chunk]
        lex = index.lex_rows.score_many(q_chars)
        lex[r, chunk] = -np.inf
        pos[chunk_ix, :, 2] = np.maximum.reduceat(lex, index.starts, axis=1)
        pos[chunk_ix, :, 3] = index.lex_docs.score_many(q_chars)
        bm = index.bm25.rows.score_many(index.bm25.query_matrix([index.texts[i] for i in chunk]))
        top = bm.max(axis=1, keepdims=True)
        pos[chunk_ix, :, 4] = np.divide(bm, top, out=np.zeros_like(bm), where=top > 0)
        own = index.row_entry[chunk]
        others = bm.copy()
        others[r, own] = -np.inf
        top_others = others.max(axis=1, keepdims=True)
        bm_without[chunk_ix] = np.divide(
            bm, top_others, out=np.zeros_like(bm), where=top_others > 0
        )
        if index.vectors is not None:
            q = index.vectors[chunk]
            dense = q @ index.vectors.T
            dense[r, chunk] = -np.inf
            pos[chunk_ix, :, 0] = np.maximum.reduceat(dense, index.starts, axis=1)
            pos[chunk_ix, :, 1] = q @ index.doc_vectors.T
    # an entry whose only other phrasing was held out keeps -inf for the phrasing scores
    np.nan_to_num(pos, copy=False, neginf=0.0)
    return HeldOut(entry=index.row_entry[rows], pos=pos, bm25_without=bm_without)


def _recall(fused: np.ndarray, truth: np.ndarray, k: int) -> float:
    target = fused[np.arange(len(truth)), truth][:, None]
    return float(np.mean((fused > target).sum(axis=1) < k))


def _weights(held: HeldOut, dense: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Coordinate ascent over the weight grids, from the uncalibrated weights."""
    grids = DENSE_GRIDS if dense else LEXICAL_GRIDS
    if dense:
        weights = dict(UNCALIBRATED_WEIGHTS)
    else:
        weights = {"dense": 0.0, "dense_doc": 0.0, "lexical": 1.0, "lexical_doc": 1.0, "bm25": 0.1}
    cache: dict[tuple[float, ...], tuple[float, float]] = {}

    def quality(w: dict[str, float]) -> tuple[float, float]:
        key = tuple(w[f] for f in FEATURES)
        if key not in cache:
            fused = held.pos @ np.asarray(key, dtype=np.float32)
            cache[key] = (_recall(fused, held.entry, 1), _recall(fused, held.entry, 3))
        return cache[key]

    for _ in range(3):
        before = dict(weights)
        for name, grid in grids.items():
            best = max(
                grid, key=lambda v: (*quality({**weights, name: v}), -abs(v - weights[name]))
            )
            weights[name] = float(best)
        if weights == before:
            break
    r1, r3 = quality(weights)
    return weights, {"recall_at_1": round(r1, 4), "recall_at_3": round(r3, 4), "tried": len(cache)}


def _first_two(fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(fused)
    top2 = np.argpartition(-fused, 1, axis=1)[:, :2]
    a, b = top2[:, 0], top2[:, 1]
    swap = fused[np.arange(n), b] > fused[np.arange(n), a]
    return np.where(swap, b, a), np.where(swap, a, b)


def _answer_x(fused: np.ndarray, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.arange(len(fused))
    first, second = _first_two(fused)
    f1, f2 = fused[n, first], fused[n, second]
    f2 = np.where(np.isfinite(f2), f2, 0.0)
    x = np.column_stack([f1, f1 - f2, feats[n, first, 1]])
    return x, first


def fit(
    index: KnowledgeIndex,
    signature: str,
    *,
    target_false: float = DEFAULT_TARGET_FALSE,
    target_wrong: float = DEFAULT_TARGET_WRONG,
    max_queries: int = 1500,
    seed: int = 0,
) -> Calibration:
    started = time.perf_counter()
    held = held_out(index, max_queries, seed)
    return fit_held(
        index,
        held,
        signature,
        target_false=target_false,
        target_wrong=target_wrong,
        started=started,
        method="leave-phrasing-out (answerable) and leave-entry-out (unanswerable) on "
        "alternative phrasings",
    )


def questions_held_out(index: KnowledgeIndex, questions: Sequence[tuple[str, int]]) -> HeldOut:
    """Questions asked of a base that does not hold them as phrasings (`questions`: text and
    the position of its entry in `index.entries`), scored as a citizen's question is: a base
    of one question per entry, asked the demo base's alternative phrasings, is the situation
    of a city that imported a spreadsheet - the right entry is found by its single question
    and its answer only. Unanswerable: the same question with its entry left out."""
    if len(questions) < MIN_QUERIES:
        raise NotEnoughData(f"only {len(questions)} questions; {MIN_QUERIES} are needed")
    truth = np.asarray([i for _, i in questions], dtype=np.int64)
    pos = np.stack([index.features(text)[0] for text, _ in questions]).astype(np.float32)
    raw = np.stack([index.bm25.score(text) for text, _ in questions]).astype(np.float32)
    others = raw.copy()
    others[np.arange(len(truth)), truth] = -np.inf
    top = others.max(axis=1, keepdims=True)
    bm_without = np.divide(raw, top, out=np.zeros_like(raw), where=top > 0)
    return HeldOut(entry=truth, pos=pos, bm25_without=bm_without)


def one_question_index(index: KnowledgeIndex) -> KnowledgeIndex:
    """`index` with every entry reduced to its question (alternatives dropped), reusing the
    vectors it already has: the question is each entry's first phrasing and the whole-entry
    text does not depend on the alternatives."""
    stripped = [e.model_copy(update={"alternatives": []}) for e in index.entries]
    dense = index.vectors is not None
    return KnowledgeIndex(
        stripped,
        None,
        vectors=index.vectors[index.starts] if dense else None,
        doc_vectors=index.doc_vectors if dense else None,
        encoder=index.encoder,
    )


def fit_one_question(index: KnowledgeIndex, signature: str) -> Calibration:
    """The calibration for bases of one question per entry (most imported spreadsheets),
    fitted on a base that has alternatives (the demo base): the base reduced to its
    questions is asked every alternative phrasing - answerable with the entry present,
    unanswerable with it left out. A calibration fitted with the alternatives in the index
    (`fit`) scores the right entry by its other alternatives too, which a one-question base
    does not have: its weights and threshold are those of another situation."""
    started = time.perf_counter()
    stripped = one_question_index(index)
    questions = [
        (index.texts[r], int(index.row_entry[r])) for r in np.flatnonzero(index.row_position >= 1)
    ]
    held = questions_held_out(stripped, questions)
    return fit_held(
        stripped,
        held,
        signature,
        started=started,
        method="the base reduced to one question per entry, asked its alternative phrasings "
        "(answerable) and the same with their entry left out (unanswerable)",
    )


def fit_held(
    index: KnowledgeIndex,
    held: HeldOut,
    signature: str,
    *,
    target_false: float = DEFAULT_TARGET_FALSE,
    target_wrong: float = DEFAULT_TARGET_WRONG,
    started: float | None = None,
    method: str = "",
) -> Calibration:
    """Weights, answer model and threshold from held-out questions (see the module doc)."""
    started = time.perf_counter() if started is None else started
    dense = index.vectors is not None
    weights, quality = _weights(held, dense)
    w = np.asarray([weights[f] for f in FEATURES], dtype=np.float32)
    n = np.arange(len(held.entry))

    fused = (held.pos @ w).astype(np.float64)
    pos_x, pos_first = _answer_x(fused, held.pos)
    pos_correct = pos_first == held.entry

    neg = held.pos.copy()
    neg[:, :, 4] = held.bm25_without
    neg_fused = (neg @ w).astype(np.float64)
    neg_fused[n, held.entry] = -np.inf
    neg_x, _ = _answer_x(neg_fused, neg)

    x = np.vstack([pos_x, neg_x])
    y = np.concatenate([pos_correct, np.zeros(len(n), dtype=bool)]).astype(int)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y)
    coef = model.coef_[0] / scale
    intercept = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    calibration = Calibration(
        signature=signature,
        weights=weights,
        coef=[float(c) for c in coef],
        intercept=intercept,
        threshold=1.0,
    )
    pos_p = calibration.confidences(pos_x)
    neg_p = calibration.confidences(neg_x)
    threshold = choose_threshold(pos_p, pos_correct, neg_p, target_false, target_wrong)
    calibration.threshold = threshold
    answered = pos_p >= threshold
    calibration.report = {
        "source": "fitted on this base",
        "method": method,
        "held_out_queries": int(len(n)),
        "entries": len(index),
        "phrasings": len(index.texts),
        "dense": dense,
        **quality,
        "answered_correctly": round(float(np.mean(answered & pos_correct)), 4),
        "answered_wrongly": round(float(np.mean(answered & ~pos_correct)), 4),
        "unanswerable_answered": round(float(np.mean(neg_p >= threshold)), 4),
        "target_false": target_false,
        "target_wrong": target_wrong,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return calibration


# The answer decision of one-question bases (calibration.fit_decision): its inputs, and the
# share of wrong automatic answers it aims at (wrong answers to answerable questions and answers
# to unanswerable ones, over the unanswerable ones: evaluation.py's false_answer_rate).
DECISION_INPUTS = (*ANSWER_FEATURES, *AGREEMENT_INPUTS)
DECISION_TARGET_FALSE = 0.03


def fit_decision(
    index: KnowledgeIndex,
    queries: Sequence[tuple[str, str | None]],
    calibration: Calibration,
    *,
    inputs: Sequence[str] = DECISION_INPUTS,
    target_false: float = DECISION_TARGET_FALSE,
    folds: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    sources: Sequence[str] = (),
) -> Calibration:
    """The answer decision learnt from questions people wrote (`queries`: text and the id of
    the entry that answers it, or None), asked of `index` - the demo base reduced to one
    question per entry, the situation of an imported spreadsheet. `calibration` gives the
    fusion weights (kept: they rank, this decides). A logistic model over `inputs` gives the
    probability that the first candidate is right; the threshold is the lowest at which the
    false-answer rate stays within `target_false`, read off out-of-fold predictions (`folds`
    -fold cross-validation, repeated with `seeds`; the median threshold), so the threshold is
    not set on answers the model has already seen. Every input is a score or an agreement of
    scores, never a word or an entry, so the decision applies to any base."""
    started = time.perf_counter()
    if len(queries) < MIN_QUERIES:
        raise NotEnoughData(f"only {len(queries)} queries; {MIN_QUERIES} are needed")
    position = {e.id: i for i, e in enumerate(index.entries)}
    unknown = sorted({f for _, f in queries if f is not None and f not in position})
    if unknown:
        raise ValueError(f"queries name entries the base does not hold: {unknown[:5]}")
    w = calibration.weight_vector
    x, first, truth = [], [], []
    for text, faq_id in queries:
        feats = index.features(simplified(text))[0]
        fused = (feats @ w).astype(np.float64)
        order = np.argsort(-fused, kind="stable")
        x.append(answer_features(fused, feats, int(order[0]), int(order[1]), inputs))
        first.append(int(order[0]))
        truth.append(-1 if faq_id is None else position[faq_id])
    xs, fs, ts = np.asarray(x), np.asarray(first), np.asarray(truth)
    y = ((ts >= 0) & (fs == ts)).astype(int)
    # folds keep the shares of right, wrong and unanswerable questions
    strata = np.where(ts < 0, 2, y)
    thresholds = []
    for seed in seeds:
        p = np.zeros(len(y))
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
            xs, strata
        ):
            p[test] = _logistic(xs[train], y[train], calibration, inputs).confidences(xs[test])
        thresholds.append(_lowest_threshold(p, fs, ts, target_false))
    threshold = float(np.median(thresholds))
    fitted = _logistic(xs, y, calibration, inputs)
    fitted.threshold = threshold
    p = fitted.confidences(xs)
    answered, answerable = p >= threshold, ts >= 0
    fitted.report = {
        "source": "fitted on this base",
        "method": "answer decision learnt from labelled questions written by people, asked of "
        "the base; threshold from out-of-fold predictions",
        "queries": int(len(ts)),
        "sources": list(sources),
        "unanswerable": int((~answerable).sum()),
        "entries": len(index),
        "phrasings": len(index.texts),
        "recall_at_1": round(float(np.mean(fs[answerable] == ts[answerable])), 4),
        "target_false": target_false,
        "fold_thresholds": [round(t, 4) for t in thresholds],
        "answered_correctly": round(float(np.mean((answered & (fs == ts))[answerable])), 4),
        "false_answer_rate": round(
            float((answered & (fs != ts)).sum() / max(1, (~answerable).sum())), 4
        ),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return fitted


def _logistic(
    x: np.ndarray, y: np.ndarray, calibration: Calibration, inputs: Sequence[str]
) -> Calibration:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=3000).fit((x - mean) / scale, y)
    coef = model.coef_[0] / scale
    return Calibration(
        signature=calibration.signature,
        weights=dict(calibration.weights),
        coef=[float(c) for c in coef],
        intercept=float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale)),
        threshold=1.0,
        inputs=tuple(inputs),
    )


def _lowest_threshold(
    p: np.ndarray, first: np.ndarray, truth: np.ndarray, target_false: float
) -> float:
    """The lowest probability at which (wrong answers + unanswerable answered) / unanswerable
    stays within `target_false`."""
    unanswerable = max(1, int((truth < 0).sum()))
    for t in np.unique(np.concatenate([p, [1.0]])):
        if ((p >= t) & (first != truth)).sum() / unanswerable <= target_false:
            return float(t)
    return 1.0


def choose_threshold(
    pos_p: np.ndarray,
    pos_correct: np.ndarray,
    neg_p: np.ndarray,
    target_false: float,
    target_wrong: float,
) -> float:
    """The lowest probability that keeps both kinds of wrong answers within their targets."""
    for t in np.unique(np.concatenate([pos_p, neg_p, [1.0]])):
        false_rate = np.mean(neg_p >= t)
        wrong_rate = np.mean((pos_p >= t) & ~pos_correct)
        if false_rate <= target_false and wrong_rate <= target_wrong:
            return float(t)
    return 1.0


def signature_of(encoder_name: str | None) -> str:
    return encoder_name or LEXICAL_ONLY


__all__ = [
    "ANSWER_FEATURES",
    "NotEnoughData",
    "DECISION_INPUTS",
    "choose_threshold",
    "fit",
    "fit_decision",
    "fit_held",
    "fit_one_question",
    "held_out",
    "one_question_index",
    "questions_held_out",
    "signature_of",
]
