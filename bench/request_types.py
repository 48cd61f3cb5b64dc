"""Request-type classifier options measured without the blind set: "voices-out" (trained on
every training file outside nlu/data/training/voices/, scored on those 1,277 messages, which a
writer outside the team wrote from DOMAIN.md alone) and the team's held-out set.

    python bench/request_types.py [--grid] [--out bench/results/request_types.json]

Without --grid only the shipped settings (REQUEST_TYPE_C, REQUEST_TYPE_EMBEDDING_WEIGHT) are
measured; --grid adds the options docs/nlu.md compares. Set HOTLINE_EMBEDDING_MODEL_DIR to a
built e5 folder (e.g. ~/.cache/hotline-tests/e5-small) to skip the rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.builtin import (  # noqa: E402
    CLASSIFY_CHARS,
    EMBEDDING_WEIGHT,
    REQUEST_TYPE_C,
    REQUEST_TYPE_EMBEDDING_WEIGHT,
    make_classifier,
)
from nlu.evaluate import read_jsonl, request_type_table  # noqa: E402
from nlu.features import TextFeatures  # noqa: E402
from nlu.gazetteer import Gazetteer  # noqa: E402
from nlu.normalise import normalise  # noqa: E402
from nlu.training_data import (  # noqa: E402
    HELDOUT_FILE,
    TRAINING_DIR,
    dedupe,
    read_file,
    training_files,
)
from nlu.types import REQUEST_TYPES  # noqa: E402
from services.config import Settings  # noqa: E402

GRID = [(0.5, 2.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0), (4.0, 1.5)]


def score(gold: list[str], predicted: list[str]) -> dict:
    table = request_type_table(gold, predicted)
    return {
        "accuracy": round(
            float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])), 4
        ),
        "recall": {t: row["recall"] for t, row in table["per_type"].items()},
        "confusion": table["confusion"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "request_types.json"))
    args = parser.parse_args()

    from services.nlu_loading import load_embedder_from_settings

    started, cpu = time.perf_counter(), time.process_time()
    gazetteer = Gazetteer.load()
    examples, voices = [], []
    for path in training_files():
        for example in read_file(path):
            examples.append(example)
            voices.append(path.parent == TRAINING_DIR / "voices")
    kept = {id(e) for e in dedupe(examples)}
    rows = [
        (e, v)
        for e, v in zip(examples, voices, strict=True)
        if id(e) in kept and e.intent in REQUEST_TYPES
    ]
    heldout = [r for r in read_jsonl(HELDOUT_FILE) if r.intent in REQUEST_TYPES]

    def prepare(text: str) -> str:
        return gazetteer.mask(normalise(text.strip())[:CLASSIFY_CHARS])

    texts = [prepare(e.text) for e, _ in rows]
    held_texts = [prepare(r.text) for r in heldout]
    embedder = load_embedder_from_settings(Settings.from_env(dict(os.environ)))
    vectors = embedder.encode(texts) if embedder is not None else None
    held_vectors = embedder.encode(held_texts) if embedder is not None else None
    labels = np.array([e.intent for e, _ in rows])
    is_voice = np.array([v for _, v in rows])

    def fit_predict(train: np.ndarray, c: float, e5: float) -> tuple[list[str], list[str]]:
        features = TextFeatures(embedding_weight=EMBEDDING_WEIGHT)
        x = features.fit(
            [t for t, keep in zip(texts, train, strict=True) if keep],
            None if vectors is None else vectors[train],
        )
        scale = np.ones(x.shape[1])
        if vectors is not None:
            scale[-vectors.shape[1] :] = e5 / EMBEDDING_WEIGHT
        clf = make_classifier("balanced", c).fit(x @ sparse.diags(scale), labels[train])
        voice_x = features.transform(
            [t for t, v in zip(texts, is_voice, strict=True) if v],
            None if vectors is None else vectors[is_voice],
        )
        held_x = features.transform(held_texts, held_vectors)
        return (
            list(clf.predict(voice_x @ sparse.diags(scale))),
            list(clf.predict(held_x @ sparse.diags(scale))),
        )

    settings = [(REQUEST_TYPE_C, REQUEST_TYPE_EMBEDDING_WEIGHT)]
    if args.grid:
        settings += [s for s in GRID if s not in settings]
    results = []
    for c, e5 in settings:
        # voices-out: the classifier never sees the outside writer's messages
        voice_pred, _ = fit_predict(~is_voice, c, e5)
        # held-out: the classifier as shipped, on all the training data
        _, held_pred = fit_predict(np.ones(len(rows), dtype=bool), c, e5)
        row = {
            "c": c,
            "e5_weight": e5,
            "voices_out": score(list(labels[is_voice]), voice_pred),
            "heldout": score([r.intent for r in heldout], held_pred),
        }
        results.append(row)
        print(
            f"C {c:g}, e5 {e5:g}: voices-out {row['voices_out']['accuracy']:.4f} "
            f"(n={int(is_voice.sum())}), held-out {row['heldout']['accuracy']:.4f} "
            f"(n={len(heldout)})",
            flush=True,
        )
    out = {
        "embedding": getattr(embedder, "name", None),
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
