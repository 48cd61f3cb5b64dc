"""Where a parse's CPU goes, stage by stage: the built-in engine as `hotline serve` loads it
(e5 int8 beside the n-grams, the thread plan of one process), parsing held-out texts one
after the other in one thread.

    python bench/profile_parse.py [--texts 600] [--nlu-dir DIR] [--dump FILE]
                                  [--compare FILE] [--cprofile 25] [--out FILE]

Every stage is a wrapper around the function that does it, timing it with the thread's CPU
clock (time.thread_time: the parse runs in this thread, and onnxruntime with one intra-op
thread runs in the caller's) and the wall clock; nested stages are subtracted from their
parent ("self" columns), so the self times add up to the whole parse. The machine is shared:
CPU time is the figure to compare, wall time is beside it with the load average.

--dump FILE writes every text's parse (ParseResult.to_dict) to FILE; --compare FILE checks
this checkout's parses against such a file (labels, units, entities and emergencies equal,
probabilities within 1e-6) and exits 1 on a difference: the check that a speed-up changed no
result. Texts: the held-out files in nlu/data (never training data), in file order.

Writes bench/results/profile_parse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# as `hotline serve` does, before numpy: the thread plan of one process on this machine
from services.core.threads import cap_threads_from_env  # noqa: E402

os.environ.setdefault("HOTLINE_PROCESSES_PER_HOST", "1")
cap_threads_from_env()

from tests.support.chat_load import percentile  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "profile_parse.json"
SOURCES = [
    ROOT / "nlu" / "data" / "heldout.jsonl",
    ROOT / "nlu" / "data" / "heldout_conversation.jsonl",
    ROOT / "nlu" / "data" / "heldout_emergency.jsonl",
    ROOT / "nlu" / "data" / "heldout_emergency_voices.jsonl",
    ROOT / "nlu" / "data" / "heldout_dialogue_acts.jsonl",
]
DEFAULT_NLU_DIR = Path("/tmp/hotline-bench-profile-nlu")


def heldout_texts() -> list[str]:
    texts: list[str] = []
    for path in SOURCES:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.extend(row.get("turns") or [row.get("text") or row.get("query") or ""])
    seen: set[str] = set()
    return [t for t in texts if t.strip() and not (t in seen or seen.add(t))]


# -- stage clocks ------------------------------------------------------------------------------


class Stages:
    """Exclusive ("self") and inclusive CPU and wall time per named stage, per parse."""

    def __init__(self) -> None:
        self.stack: list[list[float]] = []  # [cpu0, wall0, child_cpu, child_wall]
        self.self_cpu: dict[str, float] = defaultdict(float)
        self.self_wall: dict[str, float] = defaultdict(float)
        self.incl_cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.order: list[str] = []

    def wrap(self, name: str, fn: Callable) -> Callable:
        if name not in self.order:
            self.order.append(name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.thread_time(), time.perf_counter(), 0.0, 0.0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                cpu = time.thread_time() - frame[0]
                wall = time.perf_counter() - frame[1]
                self.self_cpu[name] += cpu - frame[2]
                self.self_wall[name] += wall - frame[3]
                self.incl_cpu[name] += cpu
                self.calls[name] += 1
                if self.stack:
                    self.stack[-1][2] += cpu
                    self.stack[-1][3] += wall

        return timed

    def reset(self) -> None:
        for table in (self.self_cpu, self.self_wall, self.incl_cpu, self.calls):
            table.clear()

    def patch(self, owner: Any, attr: str, name: str) -> None:
        setattr(owner, attr, self.wrap(name, getattr(owner, attr)))


class Proxy:
    """A native object (the tokenizer, the onnxruntime session) with one method timed."""

    def __init__(self, target: Any, stages: Stages, method: str, name: str) -> None:
        self._target = target
        setattr(self, method, stages.wrap(name, getattr(target, method)))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target, attr)


def instrument(engine: Any, stages: Stages) -> None:
    """Wrap every stage of BuiltinEngine.parse (nlu/builtin.py) and of what it calls."""
    import jieba
    import jieba.posseg

    import nlu.builtin as builtin
    import nlu.emergency as emergency
    import nlu.entities as entities
    from nlu import phones

    stages.patch(builtin, "normalise", "normalise (NFKC + OpenCC t2s)")
    stages.patch(engine.extractor, "extract", "entities (regexes, rest)")
    stages.patch(phones, "find", "entities: phones")
    stages.patch(engine.extractor.gazetteer, "find", "entities: gazetteer.find")
    stages.patch(entities, "place_spans", "entities: places (rest)")
    posseg_cut = jieba.posseg.cut
    # a generator: consumed inside the timer, so that its work counts here
    jieba.posseg.cut = stages.wrap(
        "jieba posseg (places)", lambda *a, **k: list(posseg_cut(*a, **k))
    )
    if hasattr(entities, "cpca_record"):  # this checkout: cpca without its DataFrame
        stages.patch(entities, "cpca_record", "entities: cpca")
    else:
        stages.patch(engine.extractor._cpca, "transform", "entities: cpca")
    stages.patch(engine.extractor.gazetteer, "mask", "gazetteer.mask")
    stages.patch(builtin, "short_reply_intent", "short replies")
    emb = engine.features.embedder
    if emb is not None:
        stages.patch(emb, "encode", "e5 (rest)")
        emb.tokenizer = Proxy(emb.tokenizer, stages, "encode_batch", "e5: tokenizer")
        emb.session = Proxy(emb.session, stages, "run", "e5: onnxruntime")
    feats = engine.features
    clf = emergency.classifier(emb)
    # the word tokenizers first, then the one-text transforms are made again around them
    feats.words.tokenizer = stages.wrap("jieba lcut (features)", feats.words.tokenizer)
    # the emergency classifier's n-grams are a TextFeatures of its own (clf.text)
    clf.text.words.tokenizer = stages.wrap("jieba lcut (emergency)", clf.text.words.tokenizer)
    for owner in (feats, clf.text):
        owner.__dict__.pop("_one", None)
    if hasattr(feats, "transform_one"):  # this checkout's one-text path (nlu/one_text.py)
        engine.parse("重新建立")
        stages.patch(feats, "transform_one", "features: stack")
        stages.patch(feats._one[0], "row", "features: char TF-IDF")
        stages.patch(feats._one[1], "row", "features: word TF-IDF (rest)")
        stages.patch(clf, "_row", "emergency: feature stack")
        stages.patch(clf.text._one[0], "row", "emergency: char TF-IDF")
        stages.patch(clf.text._one[1], "row", "emergency: word TF-IDF (rest)")
        stages.patch(emergency, "decision", "emergency: classifiers")
    else:  # scikit-learn's transforms and predictions, as before
        stages.patch(feats, "transform", "features: stack")
        stages.patch(feats.chars, "transform", "features: char TF-IDF")
        stages.patch(feats.words, "transform", "features: word TF-IDF (rest)")
        stages.patch(clf, "_features", "emergency: feature stack")
        stages.patch(clf.text.chars, "transform", "emergency: char TF-IDF")
        stages.patch(clf.text.words, "transform", "emergency: word TF-IDF (rest)")
        stages.patch(clf.model, "predict_proba", "emergency: classifier")
        if clf.number_model is not None:
            stages.patch(clf.number_model, "predict", "emergency: number model")
    stages.patch(engine.intent_clf, "predict_proba", "classifier: intent")
    stages.patch(engine.unit_clf, "predict_proba", "classifier: unit")
    if engine.request_type_clf is not None:
        stages.patch(engine.request_type_clf, "predict_proba", "classifier: request type")
    stages.patch(engine, "_unit_guesses", "unit guesses + routing score")
    stages.patch(emergency, "only_a_place", "only_a_place")
    stages.patch(emergency, "read_signs", "emergency: signs (regexes)")
    stages.patch(emergency, "spoken_form", "emergency: spoken_form")
    stages.patch(emergency, "detect", "emergency (rest)")
    # jieba's own cut, under both lcuts (the Trie walk and the HMM for unknown words)
    stages.patch(jieba, "lcut", "jieba lcut")


# -- results -----------------------------------------------------------------------------------


def comparable(parse: dict) -> dict:
    """The parse with probabilities rounded: what must not change."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value

    return rounded(parse)


def compare(current: list[dict], saved_file: Path) -> tuple[list[dict], int, int]:
    """The parses that differ from the saved ones (beyond 1e-6), how many are not bit for bit
    the same, and how many were compared."""
    saved = json.loads(saved_file.read_text(encoding="utf-8"))
    by_text = {p["text"]: p for p in saved}
    diffs, inexact, compared = [], 0, 0
    for parse in current:
        before = by_text.get(parse["text"])
        if before is None:
            continue
        compared += 1
        inexact += before != json.loads(json.dumps(parse))
        if comparable(before) != comparable(parse):
            diffs.append({"text": parse["text"], "before": before, "after": parse})
    return diffs, inexact, compared


def load_engine(nlu_dir: Path) -> Any:
    from services.config import Settings
    from services.nlu_loading import load_builtin
    from tests.support.service import EMBEDDING_MODEL_DIR

    settings = Settings(
        nlu_model_dir=nlu_dir, embedding_model_dir=EMBEDDING_MODEL_DIR, use_embeddings=True
    )
    return load_builtin(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=600, help="texts parsed (profiled)")
    parser.add_argument("--nlu-dir", type=Path, default=DEFAULT_NLU_DIR)
    parser.add_argument("--dump", type=Path, help="write every parse to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare every parse with this file")
    parser.add_argument("--cprofile", type=int, default=0, help="also: the top N functions")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="", help="a name for this run in the JSON")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="bench/throughput.py's fresh chat texts (longer: blind sets, joined clauses)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    engine = load_engine(args.nlu_dir)
    import nlu.emergency as emergency

    emergency.classifier(engine.features.embedder)  # trained now, not in the first parse
    load_seconds = time.perf_counter() - started
    if args.fresh:
        from bench.throughput import FreshTexts

        texts = FreshTexts().take(args.texts)
    else:
        texts = heldout_texts()[: args.texts]
    for text in texts[:20]:  # warm: jieba's dictionary, cpca's tables, first ONNX runs
        engine.parse(text)

    # 1. plain parses, as the service runs them: per-parse wall and CPU
    load_before = os.getloadavg()[0]
    cpu, wall, parses = [], [], []
    process0, thread0 = time.process_time(), time.thread_time()
    for text in texts:
        c0, w0 = time.thread_time(), time.perf_counter()
        result = engine.parse(text)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
        parses.append(result.to_dict())
    # one parse at a time: does any library thread (onnxruntime, BLAS, tokenizers) work
    # beside the parsing thread? 1.0 = the parse keeps to one core
    helpers = (time.process_time() - process0) / max(1e-9, time.thread_time() - thread0)
    # what the chat turn does with the parse: stored as JSON and sent back
    c0 = time.thread_time()
    for p in parses:
        json.dumps(p, ensure_ascii=False)
    json_ms = 1000 * (time.thread_time() - c0) / len(parses)
    load_after = os.getloadavg()[0]

    # 2. the same texts again, stage by stage (the wrappers add a little to each stage)
    stages = Stages()
    instrument(engine, stages)
    stages.reset()  # the parse made while instrumenting
    parse_stage = stages.wrap("parse (rest)", type(engine).parse.__get__(engine))
    c0 = time.thread_time()
    for text in texts:
        parse_stage(text)
    staged_cpu = time.thread_time() - c0

    n = len(texts)
    table = []
    for name in stages.order:
        if stages.calls[name] == 0:
            continue
        table.append(
            {
                "stage": name,
                "cpu_ms": round(1000 * stages.self_cpu[name] / n, 3),
                "wall_ms": round(1000 * stages.self_wall[name] / n, 3),
                "calls_per_parse": round(stages.calls[name] / n, 2),
                "share": round(stages.self_cpu[name] / staged_cpu, 3),
            }
        )
    table.sort(key=lambda r: -r["cpu_ms"])
    summary = {
        "label": args.label,
        "texts": n,
        "text_source": "bench/throughput.py fresh texts" if args.fresh else "nlu/data held-out",
        "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
        "load_seconds": round(load_seconds, 1),
        "parse_ms": {
            "cpu_p50": round(1000 * statistics.median(cpu), 2),
            "cpu_p99": round(1000 * percentile(cpu, 0.99), 2),
            "cpu_mean": round(1000 * statistics.fmean(cpu), 2),
            "wall_p50": round(1000 * statistics.median(wall), 2),
            "wall_p99": round(1000 * percentile(wall, 0.99), 2),
            "wall_mean": round(1000 * statistics.fmean(wall), 2),
        },
        "json_ms": round(json_ms, 3),
        "process_cpu_over_thread_cpu": round(helpers, 3),
        "staged_cpu_ms_per_parse": round(1000 * staged_cpu / n, 2),
        "load_1min": [round(load_before, 2), round(load_after, 2)],
        "stages": table,
    }
    print(f"{n} parses; load {load_before:.2f} -> {load_after:.2f}")
    print("parse ms: " + ", ".join(f"{k} {v}" for k, v in summary["parse_ms"].items()))
    print(f"JSON of the parse: {json_ms:.3f} ms CPU")
    print(f"process CPU / parsing thread's CPU, one parse at a time: {helpers:.3f}")
    print(f"\n{'stage':44} {'cpu ms':>8} {'wall ms':>8} {'calls':>6} {'share':>6}")
    for row in table:
        print(
            f"{row['stage']:44} {row['cpu_ms']:8.3f} {row['wall_ms']:8.3f} "
            f"{row['calls_per_parse']:6.2f} {100 * row['share']:5.1f}%"
        )
    print(f"{'(all stages, instrumented)':44} {1000 * staged_cpu / n:8.3f}")

    if args.cprofile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for text in texts:
            engine.parse(text)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.cprofile)
        print(out.getvalue())

    if args.dump:
        args.dump.write_text(json.dumps(parses, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"parses written to {args.dump}")
    status = 0
    if args.compare:
        diffs, inexact, compared = compare(parses, args.compare)
        summary["compared_with"] = str(args.compare)
        summary["compared"] = compared
        summary["differences"] = len(diffs)
        summary["not_bit_identical"] = inexact
        print(
            f"compared with {args.compare}: {compared} parses, {len(diffs)} differ "
            f"(labels, entities or a probability by more than 1e-6); {inexact} not bit for bit"
        )
        for d in diffs[:10]:
            print(json.dumps(d, ensure_ascii=False))
        status = 1 if diffs else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = {}
    if args.out.exists():
        try:
            existing = json.loads(args.out.read_text(encoding="utf-8"))
        except ValueError:
            existing = {}
    existing[args.label or "latest"] = summary
    args.out.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    sys.exit(status)


if __name__ == "__main__":
    main()
