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


# What each figure of evaluate_engine counts, printed beside the figures so that no headline
# hides the abstentions.
FIGURE_DEFINITIONS = {
    "unit_top1": "the first suggested unit is right, counted whether or not the engine routed "
    "(an abstention still shows its first suggestion to the dispatcher)",
    "unit_top3": "the right unit is among the three suggestions",
    "routed_right": "the engine routed automatically (did not abstain) AND its lead unit is "
    "right, over all messages with a unit: the share that needs no dispatcher",
    "precision_when_routing": "right among the messages the engine routed automatically",
    "abstain_rate": "share of messages left to manual dispatch (below the unit threshold)",
    "request_type_accuracy": "request type right, over messages labelled with one of the six",
    "intent_accuracy": "intent right over every labelled message (request types and "
    "conversation intents)",
}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def request_type_table(gold: list[str], predicted: list[str]) -> dict:
    """Per request type recall, precision and support, and the confusion matrix
    (gold type -> predicted type -> count)."""
    matrix = {g: {p: 0 for p in REQUEST_TYPES} for g in REQUEST_TYPES}
    for g, p in zip(gold, predicted, strict=True):
        matrix.setdefault(g, {}).setdefault(p, 0)
        matrix[g][p] += 1
    per_type = {}
    for t in REQUEST_TYPES:
        support = sum(matrix[t].values())
        predicted_as = sum(row.get(t, 0) for row in matrix.values())
        per_type[t] = {
            "support": support,
            "recall": _ratio(matrix[t][t], support),
            "precision": _ratio(matrix[t][t], predicted_as),
        }
    return {"per_type": per_type, "confusion": matrix}


def evaluate_engine(
    engine: Engine, rows: list[LabelledMessage], *, top_confusions: int = 10
) -> dict:
    latencies: list[float] = []
    unit_rows = intent_rows = top1 = top3 = intent_hits = abstained = routed_right = 0
    rt_gold: list[str] = []
    rt_pred: list[str] = []
    confusions: Counter[tuple[str, str]] = Counter()
    for row in rows:
        started = time.perf_counter()
        result = engine.parse(row.text)
        latencies.append((time.perf_counter() - started) * 1000)
        if row.intent:
            intent_rows += 1
            if row.intent in REQUEST_TYPES:
                rt_gold.append(row.intent)
                rt_pred.append(result.request_type)
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
                routed_right += 1
            if first != row.unit:
                confusions[(row.unit, first or "-")] += 1
    routed = unit_rows - abstained
    rt_hits = sum(g == p for g, p in zip(rt_gold, rt_pred, strict=True))
    table = request_type_table(rt_gold, rt_pred) if rt_gold else None
    return {
        "engine": engine.name,
        "messages": len(rows),
        "unit_messages": unit_rows,
        "unit_top1": _ratio(top1, unit_rows),
        "unit_top3": _ratio(top3, unit_rows),
        "routed_right": _ratio(routed_right, unit_rows),
        "precision_when_routing": _ratio(routed_right, routed),
        "abstain_rate": _ratio(abstained, unit_rows),
        # the former name of precision_when_routing, kept for scripts that read it
        "accuracy_when_answered": _ratio(routed_right, routed),
        "request_type_messages": len(rt_gold),
        "request_type_accuracy": _ratio(rt_hits, len(rt_gold)),
        "request_types": table["per_type"] if table else None,
        "request_type_confusion": table["confusion"] if table else None,
        "intent_accuracy": _ratio(intent_hits, intent_rows),
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "confused_pairs": [
            {"expected": gold, "predicted": got, "count": n}
            for (gold, got), n in confusions.most_common(top_confusions)
        ],
        "definitions": FIGURE_DEFINITIONS,
    }


def format_report(report: dict) -> str:
    """evaluate_engine's figures as text for a person: the headline figures with what each
    counts, per-type recall and precision, and the request-type confusion matrix."""
    lines = [f"engine {report['engine']}, {report['messages']} messages"]
    if report["unit_messages"]:
        lines.append(f"units ({report['unit_messages']} messages with a unit):")
        for key in (
            "unit_top1",
            "unit_top3",
            "routed_right",
            "precision_when_routing",
            "abstain_rate",
        ):
            lines.append(f"  {key:24} {report[key]!s:8} {FIGURE_DEFINITIONS[key]}")
    if report["request_type_messages"]:
        lines.append(
            f"request type ({report['request_type_messages']} messages): accuracy "
            f"{report['request_type_accuracy']}"
        )
        lines.append(f"  {'':10}{'recall':>8}{'precision':>11}{'support':>9}")
        for t, row in report["request_types"].items():
            lines.append(f"  {t:10}{row['recall']!s:>8}{row['precision']!s:>11}{row['support']:>9}")
        lines.append("  confusion (rows: labelled, columns: predicted)")
        lines.append("  " + " " * 10 + "".join(f"{t[:9]:>10}" for t in REQUEST_TYPES))
        for g, row in report["request_type_confusion"].items():
            lines.append(f"  {g:10}" + "".join(f"{row.get(t, 0):>10}" for t in REQUEST_TYPES))
    if report["intent_accuracy"] is not None:
        lines.append(f"intent accuracy (all intents): {report['intent_accuracy']}")
    lines.append(f"parse p50 / p99: {report['p50_ms']} / {report['p99_ms']} ms")
    if report["confused_pairs"]:
        lines.append("most confused units (labelled -> first suggestion):")
        for pair in report["confused_pairs"]:
            lines.append(f"  {pair['expected']} -> {pair['predicted']}: {pair['count']}")
    return "\n".join(lines)


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


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def evaluate_csv(
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    *,
    embedder=None,
    baseline: bool = True,
    embed_chars: int | None = None,
) -> dict:
    """Train the engine's classifier on one labelled split, score it on the other, beside two
    baselines trained on the same split: character 1-3-gram TF-IDF + linear SVM (the strong
    one on Chinese short texts) and word-level (jieba) TF-IDF + linear SVM as in the published
    baselines. Reports the engine's training time and the process's peak memory."""
    from nlu.builtin import EMBEDDING_WEIGHT, make_classifier
    from nlu.features import TextFeatures, words

    started = time.perf_counter()
    if embedder is not None and embed_chars:
        # Long messages: e5 sees only their opening (where the gist is), the n-grams the whole
        # text. Measured on 1,377 real title + detail messages (docs/figures.md): better than
        # embedding up to 512 tokens, and minutes and gigabytes cheaper.
        features = TextFeatures(embedding_weight=EMBEDDING_WEIGHT)
        x_train = features.fit(train[0], embedder.encode([t[:embed_chars] for t in train[0]]))
        clf = make_classifier().fit(x_train, train[1])
        train_s = time.perf_counter() - started
        x_test = features.transform(test[0], embedder.encode([t[:embed_chars] for t in test[0]]))
    else:
        features = TextFeatures(embedder=embedder, embedding_weight=EMBEDDING_WEIGHT)
        x_train = features.fit(train[0])
        clf = make_classifier().fit(x_train, train[1])
        train_s = time.perf_counter() - started
        x_test = features.transform(test[0])
    predicted = list(clf.predict(x_test))
    out = {
        "train_rows": len(train[0]),
        "test_rows": len(test[0]),
        "labels": len(set(train[1])),
        "engine": {
            **_scores(test[1], predicted),
            "embedding": getattr(embedder, "name", None),
            "embed_chars": embed_chars,
            "train_seconds": round(train_s, 2),
        },
        "seconds": 0.0,
    }
    if baseline:
        chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        svm = LinearSVC().fit(chars.fit_transform(train[0]), train[1])
        out["baseline_char_tfidf_svm"] = _scores(
            test[1], list(svm.predict(chars.transform(test[0])))
        )
        vec = TfidfVectorizer(
            tokenizer=words, lowercase=False, token_pattern=None, sublinear_tf=True
        )
        svm = LinearSVC().fit(vec.fit_transform(train[0]), train[1])
        out["baseline_tfidf_svm"] = _scores(test[1], list(svm.predict(vec.transform(test[0]))))
    out["accuracy"] = out["engine"]["accuracy"]
    out["macro_f1"] = out["engine"]["macro_f1"]
    out["seconds"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out
