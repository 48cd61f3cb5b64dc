"""Emergencies and phone numbers: both error rates of the emergency detection and the
phone-parsing accuracy.

    python bench/emergency.py [--model-dir DIR] [--out bench/results/emergency.json]

Emergency sets (one JSON object a line: {"text", "emergency": bool, "number": "110"|...}):

* held-out: nlu/data/heldout_emergency.jsonl, written by the team apart from the training
  examples (nlu/data/emergency/train.yml) and never trained on;
* blind: tests/data/blind/emergency.jsonl, written outside the team; measured only.

Each set is read twice: as written, and without punctuation or spaces (what speech
recognition gives on the phone path). Per set and form: recall (emergencies told to call a
number), false-alarm rate (look-alikes told to call one), and whether the expected number was
among those told. The messages go through the engine's `parse`, the path every channel takes;
the engine is the built-in one loaded from --model-dir (default: the test suite's cached
model, trained without embeddings), trained there if missing.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = {
    "heldout": ROOT / "nlu" / "data" / "heldout_emergency.jsonl",
    "blind": ROOT / "tests" / "data" / "blind" / "emergency.jsonl",
}
PHONE_CASES = ROOT / "bench" / "data" / "phone_cases.jsonl"
DEFAULT_MODEL_DIR = (
    Path(os.environ.get("HOTLINE_TEST_CACHE", Path.home() / ".cache" / "hotline-tests")) / "nlu"
)


def without_punctuation(text: str) -> str:
    """Speech-recognised text: no punctuation marks and no spaces."""
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def score(engine, rows: list[dict], form) -> dict:
    caught = missed = alarms = right_number = 0
    misses: list[str] = []
    false_alarms: list[str] = []
    emergencies = sum(1 for r in rows if r["emergency"])
    lookalikes = len(rows) - emergencies
    started = time.perf_counter()
    for row in rows:
        text = form(row["text"])
        found = engine.parse(text).emergency
        if row["emergency"]:
            if found is None:
                missed += 1
                misses.append(text)
            else:
                caught += 1
                right_number += row.get("number") in found.numbers
        elif found is not None:
            alarms += 1
            false_alarms.append(f"{text}  → {'/'.join(found.numbers)} ({found.kind})")
    elapsed = time.perf_counter() - started
    return {
        "emergencies": emergencies,
        "lookalikes": lookalikes,
        "recall": round(caught / emergencies, 4) if emergencies else None,
        "false_alarm_rate": round(alarms / lookalikes, 4) if lookalikes else None,
        "right_number_when_caught": round(right_number / caught, 4) if caught else None,
        "missed": missed,
        "false_alarms": alarms,
        "ms_per_message": round(1000 * elapsed / max(1, len(rows)), 2),
        "missed_texts": misses,
        "false_alarm_texts": false_alarms,
    }


def training_cross_validation(folds: int = 5) -> dict:
    """Recall and false alarms of the detector retrained without each fifth of the team's
    training examples, on that fifth: how well the signs generalise within the team's data."""
    from sklearn.model_selection import StratifiedKFold

    from nlu.emergency import THRESHOLD, EmergencyClassifier, read_signs, training_examples

    texts, labels = training_examples()
    flagged = [False] * len(texts)
    split = StratifiedKFold(folds, shuffle=True, random_state=3).split(texts, labels)
    for train, test in split:
        model = EmergencyClassifier().fit([texts[i] for i in train], [labels[i] for i in train])
        for i in test:
            flagged[i] = bool(read_signs(texts[i]).dangers) and (
                model.probability(texts[i]) >= THRESHOLD
            )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "emergency.json")
    parser.add_argument("--show", action="store_true", help="print the missed and false alarms")
    args = parser.parse_args()

    from nlu.engine import load_or_train

    engine = load_or_train(args.model_dir)
    results: dict = {"model_dir": str(args.model_dir), "emergency": {}}
    forms = {"as_written": lambda t: t, "no_punctuation": without_punctuation}
    print(f"{'set':8} {'form':15} {'recall':>7} {'false alarms':>13} {'right number':>13}")
    for name, path in SETS.items():
        if not path.exists():
            print(f"{name:8} (no file {path.relative_to(ROOT)})")
            continue
        rows = read_jsonl(path)
        results["emergency"][name] = {}
        for form_name, form in forms.items():
            r = score(engine, rows, form)
            if name == "blind" and not args.show:
                # the blind lines stay in tests/data/blind only: no copies in results files
                r.pop("missed_texts")
                r.pop("false_alarm_texts")
            results["emergency"][name][form_name] = r
            print(
                f"{name:8} {form_name:15} {r['recall']:>7.1%} "
                f"{r['false_alarm_rate']:>7.1%} ({r['false_alarms']:>2}/{r['lookalikes']})"
                f" {r['right_number_when_caught']:>12.1%}"
            )
            if args.show:
                for text in r["missed_texts"]:
                    print("   missed:", text)
                for text in r["false_alarm_texts"]:
                    print("   false alarm:", text)
    cv = training_cross_validation()
    results["emergency"]["training_cv"] = cv
    print(
        f"training examples, 5-fold cross-validation ({cv['examples']}): recall {cv['recall']:.1%}"
        f", false alarms {cv['false_alarm_rate']:.1%}"
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
