"""Measuring an engine: accuracy on labelled messages, parse latency, confusions; and the
classifier alone on any labelled CSV, beside a TF-IDF + linear SVM baseline."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from nlu.types import REQUEST_TYPES, Engine


class EvalDataError(ValueError):
    pass


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    intent: str | None
    unit: str | None


def read_jsonl(path: Path) -> list[LabelledMessage]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise EvalDataError(f'{path}:{number}: needs a "text" string')
        rows.append(LabelledMessage(row["text"], row.get("intent"), row.get("unit")))
    if not rows:
        raise EvalDataError(f"{path}: no messages")
    return rows


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def evaluate_engine(
    engine: Engine, rows: list[LabelledMessage], *, top_confusions: int = 10
) -> dict:
    latencies: list[float] = []
    unit_rows = intent_rows = top1 = top3 = intent_hits = abstained = answered_right = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for row in rows:
        started = time.perf_counter()
        result = engine.parse(row.text)
        latencies.append((time.perf_counter() - started) * 1000)
        if row.intent:
            intent_rows += 1
            predicted = result.request_type if row.intent in REQUEST_TYPES else result.intent
            intent_hits += predicted == row.intent
        if row.unit:
            unit_rows += 1
            codes = [u.code for u in result.units]
            first = codes[0] if codes else None
            top1 += first == row.unit
            top3 += row.unit in codes
            if not result.unit_confident:
                abstained += 1
            elif first == row.unit:
                answered_right += 1
            if first != row.unit:
                confusions[(row.unit, first or "-")] += 1
    answered = unit_rows - abstained
    return {
        "engine": engine.name,
        "messages": len(rows),
        "unit_messages": unit_rows,
        "unit_top1": round(top1 / unit_rows, 4) if unit_rows else None,
        "unit_top3": round(top3 / unit_rows, 4) if unit_rows else None,
        "intent_accuracy": round(intent_hits / intent_rows, 4) if intent_rows else None,
        "abstain_rate": round(abstained / unit_rows, 4) if unit_rows else None,
        "accuracy_when_answered": round(answered_right / answered, 4) if answered else None,
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "confused_pairs": [
            {"expected": gold, "predicted": got, "count": n}
            for (gold, got), n in confusions.most_common(top_confusions)
        ],
    }


def read_csv_column_pair(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in (text_col, label_col) if c not in (reader.fieldnames or [])]
            if missing:
                raise EvalDataError(
                    f"{path}: no column {', '.join(missing)} (columns: {', '.join(reader.fieldnames or [])})"
                )
            texts, labels = [], []
            for number, row in enumerate(reader, start=2):
                text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
                if not text or not label:
                    raise EvalDataError(
                        f"{path}:{number}: empty {text_col if not text else label_col}"
                    )
                texts.append(text)
                labels.append(label)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalDataError(f"cannot read {path}: {exc}") from exc
    if not texts:
        raise EvalDataError(f"{path}: no rows")
    return texts, labels


def _scores(gold: list[str], predicted: list[str]) -> dict:
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1_score(gold, predicted, average="macro")), 4),
    }


def evaluate_csv(
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    *,
    embedder=None,
    baseline: bool = True,
) -> dict:
    """Train the engine's classifier (and, for comparison, a word-level TF-IDF + linear SVM as
    in the published baselines) on one labelled split, score both on the other."""
    from nlu.builtin import make_classifier
    from nlu.features import TextFeatures, words

    started = time.perf_counter()
    features = TextFeatures(embedder=embedder)
    x_train = features.fit(train[0])
    clf = make_classifier().fit(x_train, train[1])
    predicted = list(clf.predict(features.transform(test[0])))
    out = {
        "train_rows": len(train[0]),
        "test_rows": len(test[0]),
        "labels": len(set(train[1])),
        "engine": {**_scores(test[1], predicted), "embedding": getattr(embedder, "name", None)},
        "seconds": 0.0,
    }
    if baseline:
        vec = TfidfVectorizer(
            tokenizer=words, lowercase=False, token_pattern=None, sublinear_tf=True
        )
        svm = LinearSVC().fit(vec.fit_transform(train[0]), train[1])
        out["baseline_tfidf_svm"] = _scores(test[1], list(svm.predict(vec.transform(test[0]))))
    out["accuracy"] = out["engine"]["accuracy"]
    out["macro_f1"] = out["engine"]["macro_f1"]
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
