"""Emergencies and phone numbers: both error rates of the emergency detection and the
phone-parsing accuracy.

    python bench/emergency.py [--model-dir DIR] [--embedding-model-dir DIR | --no-embeddings]
                              [--out bench/results/emergency.json] [--show]

Emergency sets (one JSON object a line: {"text", "emergency": bool, "number": "110"|...}):

* held-out: nlu/data/heldout_emergency.jsonl, written by the team apart from the training
  examples (nlu/data/emergency/*.yml) and never trained on;
* heldout_voices: nlu/data/heldout_emergency_voices.jsonl, the team's held-out lines in the
  callers' voices ("voice": phone, sms, elderly, migrant, young, web; per-voice figures);
* blind: tests/data/blind/emergency.jsonl, written outside the team; measured only.

Each set is read twice: as written, and without punctuation or spaces (what speech
recognition gives on the phone path). Per set and form: recall (emergencies told to call a
number), false-alarm rate (look-alikes told to call one), and whether the expected number was
among those told. The messages go through the engine's `parse`, the path every channel takes;
the engine is the built-in one loaded from --model-dir (default: the test suite's cached
model, trained without embeddings), trained there if missing. The detector is measured a
second time with the e5 model of --embedding-model-dir (the sentence-vector block), as the
built-in engine calls it when it has embeddings. First number: the expected number is the
one told first; among told: it is one of those told. p50/p99: time per message.

Also the detector retrained in 5 folds on its own training examples (recall and false
alarms on each held-out fold).

Phone cases: bench/data/phone_cases.jsonl ({"text", "phones": [...]}), through
`nlu.entities.find_phones`; a case counts as right when the list is exactly the expected one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = {
    "heldout": ROOT / "nlu" / "data" / "heldout_emergency.jsonl",
    "heldout_voices": ROOT / "nlu" / "data" / "heldout_emergency_voices.jsonl",
    "blind": ROOT / "tests" / "data" / "blind" / "emergency.jsonl",
    "blind_v2": ROOT / "tests" / "data" / "blind" / "emergency_v2.jsonl",
    "blind_v3": ROOT / "tests" / "data" / "blind" / "emergency_v3.jsonl",
    "blind_v4": ROOT / "tests" / "data" / "blind" / "emergency_v4.jsonl",
    "blind_v5": ROOT / "tests" / "data" / "blind" / "emergency_v5.jsonl",
}
PHONE_CASES = ROOT / "bench" / "data" / "phone_cases.jsonl"
TEST_CACHE = Path(os.environ.get("HOTLINE_TEST_CACHE", Path.home() / ".cache" / "hotline-tests"))
DEFAULT_MODEL_DIR = TEST_CACHE / "nlu"
DEFAULT_EMBEDDING_DIR = TEST_CACHE / "e5-small"


def without_punctuation(text: str) -> str:
    """Speech-recognised text: no punctuation marks and no spaces."""
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _rates(rows: list[dict], found: list) -> dict:
    emergencies = [(r, f) for r, f in zip(rows, found, strict=True) if r["emergency"]]
    lookalikes = [(r, f) for r, f in zip(rows, found, strict=True) if not r["emergency"]]
    caught = [(r, f) for r, f in emergencies if f is not None]
    alarms = sum(1 for _, f in lookalikes if f is not None)
    return {
        "emergencies": len(emergencies),
        "lookalikes": len(lookalikes),
        "recall": round(len(caught) / len(emergencies), 4) if emergencies else None,
        "false_alarm_rate": round(alarms / len(lookalikes), 4) if lookalikes else None,
        # the number told first is the expected one (the stricter figure) ...
        "first_number_right": (
            round(sum(f.numbers[0] == r.get("number") for r, f in caught) / len(caught), 4)
            if caught
            else None
        ),
        # ... and the expected one is among those told
        "right_number_when_caught": (
            round(sum(r.get("number") in f.numbers for r, f in caught) / len(caught), 4)
            if caught
            else None
        ),
        "missed": len(emergencies) - len(caught),
        "false_alarms": alarms,
    }


def score(detect, rows: list[dict], form) -> dict:
    """`detect(text)` → Emergency | None on every row in `form`; both error rates overall and
    per voice (rows with a "voice" field), and the detector's time per message."""
    found, times, texts = [], [], []
    for row in rows:
        text = form(row["text"])
        started = time.perf_counter()
        found.append(detect(text))
        times.append(1000 * (time.perf_counter() - started))
        texts.append(text)
    result = _rates(rows, found)
    result["ms_p50"] = round(float(np.percentile(times, 50)), 2)
    result["ms_p99"] = round(float(np.percentile(times, 99)), 2)
    voices = sorted({r["voice"] for r in rows if r.get("voice")})
    if voices:
        result["per_voice"] = {
            v: _rates(
                [r for r in rows if r.get("voice") == v],
                [f for r, f in zip(rows, found, strict=True) if r.get("voice") == v],
            )
            for v in voices
        }
    result["missed_texts"] = [
        t for r, t, f in zip(rows, texts, found, strict=True) if r["emergency"] and f is None
    ]
    result["false_alarm_texts"] = [
        f"{t}  → {'/'.join(f.numbers)} ({f.kind})"
        for r, t, f in zip(rows, texts, found, strict=True)
        if not r["emergency"] and f is not None
    ]
    return result


def training_cross_validation(embedder=None, folds: int = 5) -> dict:
    """Recall and false alarms of the detector retrained without each fifth of the training
    examples, on that fifth: how well it generalises within the training data."""
    from sklearn.model_selection import StratifiedKFold

    from nlu.emergency import THRESHOLD, EmergencyClassifier, engine_view, training_rows

    rows = training_rows()
    texts = [t for t, _, _ in rows]
    labels = [y for _, y, _ in rows]
    numbers = [n for _, _, n in rows]
    vectors = (
        None if embedder is None else np.asarray(embedder.encode([engine_view(t) for t in texts]))
    )
    flagged = [False] * len(texts)
    split = StratifiedKFold(folds, shuffle=True, random_state=3).split(texts, labels)
    for train, test in split:
        model = EmergencyClassifier(embedder).fit(
            [texts[i] for i in train],
            [labels[i] for i in train],
            [numbers[i] for i in train],
            None if vectors is None else vectors[train],
        )
        for i in test:
            flagged[i] = model.probability(texts[i]) >= THRESHOLD
    pos = [f for f, y in zip(flagged, labels, strict=True) if y]
    neg = [f for f, y in zip(flagged, labels, strict=True) if not y]
    return {
        "examples": len(texts),
        "recall": round(sum(pos) / len(pos), 4),
        "false_alarm_rate": round(sum(neg) / len(neg), 4),
    }


def phone_accuracy() -> dict:
    from nlu.entities import find_phones

    cases = read_jsonl(PHONE_CASES)
    wrong = []
    for case in cases:
        got = find_phones(case["text"])
        if got != case["phones"]:
            wrong.append({"text": case["text"], "expected": case["phones"], "got": got})
    return {
        "cases": len(cases),
        "accuracy": round(1 - len(wrong) / len(cases), 4) if cases else None,
        "wrong": wrong,
    }


def _print_row(name: str, form_name: str, r: dict) -> None:
    print(
        f"{name:15} {form_name:15} {r['recall']:>7.1%} "
        f"{r['false_alarm_rate']:>7.1%} ({r['false_alarms']:>2}/{r['lookalikes']})"
        f" {r['first_number_right'] or 0:>12.1%} {r['right_number_when_caught'] or 0:>10.1%}"
        f"  p50 {r['ms_p50']:.1f} ms, p99 {r['ms_p99']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--embedding-model-dir",
        type=Path,
        default=DEFAULT_EMBEDDING_DIR,
        help="the e5 folder: the detector is measured with the sentence vector too",
    )
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "emergency.json")
    parser.add_argument("--show", action="store_true", help="print the missed and false alarms")
    args = parser.parse_args()

    from nlu import emergency
    from nlu.builtin import read_meta
    from nlu.engine import load_or_train

    meta = read_meta(args.model_dir)
    if meta is not None and meta.get("embedding"):
        # load_or_train without the embedder would retrain that folder in place, n-gram only
        parser.error(
            f"{args.model_dir} holds a model with {meta['embedding']}; the engine path here is "
            "the n-gram one: give --model-dir an n-gram model folder"
        )
    engine = load_or_train(args.model_dir)
    paths = {"engine (no e5)": lambda t: engine.parse(t).emergency}
    embedder = None
    if not args.no_embeddings:
        from nlu.embeddings import load_embedder

        embedder = load_embedder(args.embedding_model_dir, num_threads=1)
        emergency.classifier(embedder)  # trained before the clock starts
        paths["detector + e5"] = lambda t: emergency.detect(t, embedder=embedder)
    results: dict = {"model_dir": str(args.model_dir), "emergency": {}}
    forms = {"as_written": lambda t: t, "no_punctuation": without_punctuation}
    for path_name, detect in paths.items():
        print(f"== {path_name}")
        print(
            f"{'set':15} {'form':15} {'recall':>7} {'false alarms':>13} {'first number':>13}"
            f" {'among told':>10}"
        )
        out = results["emergency"].setdefault(path_name, {})
        for name, path in SETS.items():
            if not path.exists():
                print(f"{name:15} (no file {path.relative_to(ROOT)})")
                continue
            rows = read_jsonl(path)
            out[name] = {}
            for form_name, form in forms.items():
                r = score(detect, rows, form)
                if name.startswith("blind") and not args.show:
                    # the blind lines stay in tests/data/blind only: no copies in results files
                    r.pop("missed_texts")
                    r.pop("false_alarm_texts")
                out[name][form_name] = r
                _print_row(name, form_name, r)
                for voice, v in r.get("per_voice", {}).items():
                    print(
                        f"   {voice:12} recall {v['recall']:.1%} ({v['missed']} missed of "
                        f"{v['emergencies']}), false alarms {v['false_alarm_rate']:.1%} "
                        f"({v['false_alarms']}/{v['lookalikes']}), first number "
                        f"{v['first_number_right'] or 0:.1%}"
                    )
                if args.show:
                    for text in r.get("missed_texts", []):
                        print("   missed:", text)
                    for text in r.get("false_alarm_texts", []):
                        print("   false alarm:", text)
        cv = training_cross_validation(embedder if path_name != "engine (no e5)" else None)
        out["training_cv"] = cv
        print(
            f"training examples, 5-fold cross-validation ({cv['examples']}): "
            f"recall {cv['recall']:.1%}, false alarms {cv['false_alarm_rate']:.1%}"
        )
    if PHONE_CASES.exists():
        phones = phone_accuracy()
        results["phones"] = phones
        print(f"phones: {phones['accuracy']:.1%} of {phones['cases']} cases exactly right")
        if args.show:
            for w in phones["wrong"]:
                print("   ", w)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
