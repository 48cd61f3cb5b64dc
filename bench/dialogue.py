"""Dialogue bench: scripted dialogues through the real conversation service on the web chat,
SMS and the phone path, and the dialogue-act classifier on its held-out replies.

    python bench/dialogue.py [--data tests/data/blind/dialogues.jsonl]
                             [--channels web,sms,phone] [--out bench/results/dialogue.json]

The dialogues run as `hotline chat eval` runs them (services/cli/chat_eval.py): each
channel on its own temporary database on the configured server (DATABASE_URL, or the
embedded one in HOTLINE_DATA_DIR), dropped afterwards; the NLU and e5 models from the
configured folders. The blind set was written outside the team and is never trained on.

The held-out replies (nlu/data/heldout_dialogue_acts.jsonl) were written apart from the
training data; short replies such as "取消" or "2" cannot be phrased differently, so the
accuracy is also given on the replies that are not word for word in the training data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def dialogue_acts() -> dict:
    from nlu.dialogue_acts import (
        default_model,
        entity_reader,
        evaluate,
        load_examples,
        read_heldout,
    )

    started = time.perf_counter()
    model = default_model()
    train_seconds = time.perf_counter() - started
    entities = entity_reader()
    rows = read_heldout()
    trained = {(e.text, e.state) for e in load_examples()}
    unseen = [
        r
        for r in rows
        if (r["text"], r["state"]) not in trained and (r["text"], "any") not in trained
    ]
    full = evaluate(model, rows, entities)
    fresh = evaluate(model, unseen, entities)
    timings = []
    for row in rows:
        ents = entities(row["text"])
        t0 = time.perf_counter()
        model.classify(row["text"], row["state"], ents)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {
        "heldout_replies": full["replies"],
        "accuracy": full["accuracy"],
        "per_state": full["per_state"],
        "unseen_replies": fresh["replies"],
        "unseen_accuracy": fresh["accuracy"],
        "training_examples": len(load_examples()),
        "train_seconds": round(train_seconds, 2),
        "classify_ms_p50": round(timings[len(timings) // 2], 3),
        "classify_ms_p99": round(timings[int(len(timings) * 0.99)], 3),
        "mistakes": full["mistakes"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=str(ROOT / "tests" / "data" / "blind" / "dialogues.jsonl")
    )
    parser.add_argument("--channels", default="web,sms,phone")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "dialogue.json"))
    args = parser.parse_args()

    from services.cli.chat import evaluate
    from services.cli.chat_eval import read_dialogues

    acts = dialogue_acts()
    print(
        f"dialogue acts: {acts['accuracy']:.3f} on {acts['heldout_replies']} held-out replies "
        f"({acts['unseen_accuracy']:.3f} on the {acts['unseen_replies']} not in the training "
        f"data); per state {acts['per_state']}; classify p50 {acts['classify_ms_p50']} ms"
    )
    dialogues = read_dialogues(Path(args.data))
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    started = time.perf_counter()
    results = asyncio.run(evaluate(dialogues, channels))
    seconds = time.perf_counter() - started
    for r in results:
        print(
            f"{r['channel']}: {r['completed']} of {r['dialogues']} dialogues completed as "
            f"expected ({100 * r['share']:.1f} %)"
        )
    out = {
        "data": str(Path(args.data).resolve().relative_to(ROOT)),
        "dialogue_acts": acts,
        "dialogues": {r["channel"]: r for r in results},
        "seconds": round(seconds, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
