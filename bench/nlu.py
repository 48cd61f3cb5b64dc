"""NLU bench: both engines side by side on the held-out sets, start-up time and memory, and the
classifier on a labelled CSV beside a TF-IDF + linear SVM baseline.

    python bench/nlu.py [--rasa] [--out bench/results/nlu.json]

The built-in engine is trained first if its model is missing (that time is reported apart from
start-up, which is a fresh process loading the saved model and the embedding model). The Rasa
engine is measured with --rasa: it needs the Rasa virtualenv (.ci/rasa-setup); it trains the
Rasa models if they are missing or stale (~5 min), starts both servers on free loopback ports
and stops them afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.evaluate import evaluate_csv, evaluate_engine, read_jsonl  # noqa: E402
from nlu.training_data import DATA_DIR, HELDOUT_FILE  # noqa: E402
from services.config import Settings  # noqa: E402

CONVERSATION_HELDOUT = DATA_DIR / "heldout_conversation.jsonl"
# written outside the team (tests/data/blind/README.md): measured here, never trained or tuned on
BLIND_ROUTING = ROOT / "tests" / "data" / "blind" / "routing.jsonl"
BLIND_ROUTING_V2 = ROOT / "tests" / "data" / "blind" / "routing_v2.jsonl"
BLIND_ROUTING_V3 = ROOT / "tests" / "data" / "blind" / "routing_v3.jsonl"
CSV_FILES = [
    ROOT / "bench" / "data" / "teddy_style_a.csv",
    ROOT / "bench" / "data" / "teddy_style_b.csv",
]

_STARTUP = """
import json, time
t = time.perf_counter()
from services.config import Settings
from services.nlu_loading import load_builtin
engine = load_builtin(Settings.from_env())
loaded = time.perf_counter() - t
engine.parse("我家楼下饭店油烟很大")
# peak RSS of this process (ru_maxrss would carry the parent's peak across exec)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"startup_s": round(loaded, 2),
                  "rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1)}))
"""


def startup_in_fresh_process(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _STARTUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_builtin(settings: Settings, env: dict[str, str]) -> dict:
    from services.nlu_loading import load_builtin, train_builtin_from_settings

    started = time.perf_counter()
    report = train_builtin_from_settings(settings)
    train_s = time.perf_counter() - started
    out = {
        "train_s": round(train_s, 1),
        "train_examples": report.examples,
        "unit_threshold": round(report.unit_threshold, 4),
    }
    out.update(startup_in_fresh_process(env))
    engine = load_builtin(settings)
    out["heldout"] = evaluate_engine(engine, read_jsonl(HELDOUT_FILE))
    out["heldout_conversation"] = evaluate_engine(engine, read_jsonl(CONVERSATION_HELDOUT))
    if BLIND_ROUTING.exists():
        out["blind"] = evaluate_engine(engine, read_jsonl(BLIND_ROUTING))
    if BLIND_ROUTING_V2.exists():
        out["blind_v2"] = evaluate_engine(engine, read_jsonl(BLIND_ROUTING_V2))
    if BLIND_ROUTING_V3.exists():
        out["blind_v3"] = evaluate_engine(engine, read_jsonl(BLIND_ROUTING_V3))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class RasaUnavailable(Exception):
    """No Rasa virtualenv: the bench reports it and goes on."""


@contextlib.contextmanager
def rasa_servers(settings: Settings, models: Path) -> Iterator[tuple[dict[str, str], dict]]:
    """Train the Rasa models into `models` unless they are current, serve both on free
    loopback ports until the block ends; yields their URLs and what starting them took.
    Shared with bench/throughput.py."""
    from nlu.rasa_runtime import ensure_trained, rasa_executable, serve_models

    try:
        rasa_executable(settings.rasa_venv)
    except Exception as exc:  # noqa: BLE001 - reported, the bench goes on
        raise RasaUnavailable(f"no Rasa virtualenv (bash .ci/rasa-setup): {exc}") from exc
    started = time.perf_counter()
    trained = ensure_trained(settings.rasa_venv, models, log=lambda *a: None)
    out: dict = {
        "available": True,
        "train_or_check_s": round(time.perf_counter() - started, 1),
        "train_s": trained.seconds,
        "model_mb": trained.megabytes,
    }
    urls = {
        "intents": f"http://127.0.0.1:{_free_port()}",
        "routing": f"http://127.0.0.1:{_free_port()}",
    }
    servers = serve_models(settings.rasa_venv, trained, urls, log_dir=models)
    try:
        out["servers_ready_s"] = max(s.ready_seconds or 0 for s in servers)
        out["servers_rss_mb"] = {s.project: _rss_mb(s.process.pid) for s in servers}
        out["server_pids"] = {s.project: s.process.pid for s in servers}
        yield urls, out
    finally:
        for server in servers:
            server.stop()


def bench_rasa(settings: Settings, models: Path) -> dict:
    """Train the Rasa models into `models` unless they are current, serve both on free
    loopback ports, measure, stop them."""
    from nlu.rasa_engine import RasaEngine

    try:
        with rasa_servers(settings, models) as (urls, out):
            out.pop("server_pids")
            engine = RasaEngine(urls["intents"], urls["routing"], timeout=settings.rasa_timeout)
            try:
                out["heldout"] = evaluate_engine(engine, read_jsonl(HELDOUT_FILE))
                out["heldout_conversation"] = evaluate_engine(
                    engine, read_jsonl(CONVERSATION_HELDOUT)
                )
            finally:
                engine.close()
    except RasaUnavailable as exc:
        return {"available": False, "reason": str(exc)}
    return out


def read_csv_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def bench_csv(settings: Settings) -> dict:
    """A fixed 80/20 split of the project's 7-class message-board set (by a hash of the id)."""
    present = [p for p in CSV_FILES if p.exists()]
    if not present:
        return {"available": False, "reason": "bench/data/teddy_style_*.csv missing"}
    rows = read_csv_rows(present)
    train = [r for r in rows if zlib.crc32(r["id"].encode()) % 5]
    test = [r for r in rows if not zlib.crc32(r["id"].encode()) % 5]

    def cols(part: list[dict]) -> tuple[list[str], list[str]]:
        return [f"{r['title']}。{r['text']}" for r in part], [r["label"] for r in part]

    from services.nlu_loading import load_embedder_from_settings

    with_emb = evaluate_csv(cols(train), cols(test), embedder=load_embedder_from_settings(settings))
    ngram_only = evaluate_csv(cols(train), cols(test), embedder=None, baseline=False)
    return {
        "files": [p.name for p in present],
        "train_rows": len(train),
        "test_rows": len(test),
        "engine": with_emb["engine"],
        "engine_ngrams_only": ngram_only["engine"],
        "baseline_tfidf_svm": with_emb["baseline_tfidf_svm"],
        "baseline_char_tfidf_svm": with_emb["baseline_char_tfidf_svm"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rasa", action="store_true", help="also measure the Rasa engine")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "nlu.json"))
    parser.add_argument(
        "--data-dir", default=os.environ.get("HOTLINE_DATA_DIR", str(ROOT / "var" / "bench"))
    )
    parser.add_argument(
        "--rasa-models",
        help="trained Rasa models to use (default: <data-dir>/models/rasa; trained there when missing)",
    )
    args = parser.parse_args()

    env = dict(os.environ, HOTLINE_DATA_DIR=args.data_dir)
    settings = Settings.from_env(env)
    results = {
        "machine": {"cores": os.cpu_count(), "load_average_before": os.getloadavg()},
        "builtin": bench_builtin(settings, env),
    }
    rasa_models = Path(args.rasa_models) if args.rasa_models else settings.rasa_dir
    results["rasa"] = (
        bench_rasa(settings, rasa_models)
        if args.rasa
        else {"available": False, "reason": "not requested (--rasa)"}
    )
    results["csv_7class"] = bench_csv(settings)
    results["machine"]["load_average_after"] = os.getloadavg()

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print_table(results)
    print(f"\nwritten to {args.out}")
    return 0


def print_table(results: dict) -> None:
    keys = [
        "unit_top1",
        "unit_top3",
        "routed_right",
        "precision_when_routing",
        "abstain_rate",
        "request_type_accuracy",
        "p50_ms",
        "p99_ms",
    ]
    engines = {name: results[name] for name in ("builtin", "rasa") if results[name].get("heldout")}
    columns = [(name, "heldout") for name in engines]
    for part in ("blind", "blind_v2", "blind_v3"):
        if results["builtin"].get(part):
            columns.append(("builtin", part))
    print(f"{'':28}" + "".join(f"{name + ' ' + part:>18}" for name, part in columns))
    for key in keys:
        print(f"{key:28}" + "".join(f"{str(results[n][p][key]):>18}" for n, p in columns))
    for name, part in columns:
        per_type = results[name][part]["request_types"]
        print(
            f"{name} {part} recall by type: "
            + ", ".join(f"{t} {row['recall']}" for t, row in per_type.items())
        )
    print(
        "(unit_top1 counts the first suggestion also when the engine abstains; routed_right "
        "is the share routed automatically AND right)"
    )
    print(
        f"{'conversation intent acc.':28}"
        + "".join(
            f"{str(e['heldout_conversation']['intent_accuracy']):>12}" for e in engines.values()
        )
    )
    b = results["builtin"]
    print(
        f"\nbuilt-in: start-up {b['startup_s']} s, RSS {b['rss_mb']} MB, training {b['train_s']} s"
    )
    r = results["rasa"]
    if r.get("heldout"):
        print(
            f"rasa: servers ready {r['servers_ready_s']} s, RSS {r['servers_rss_mb']} MB, training {r['train_s']} s"
        )
    else:
        print(f"rasa: not measured ({r.get('reason')})")
    c = results["csv_7class"]
    if c.get("engine"):
        print(
            f"7-class CSV ({c['train_rows']} train / {c['test_rows']} test): engine acc {c['engine']['accuracy']} "
            f"F1 {c['engine']['macro_f1']}; n-grams only acc {c['engine_ngrams_only']['accuracy']}; "
            f"char TF-IDF+SVM acc {c['baseline_char_tfidf_svm']['accuracy']}; "
            f"word TF-IDF+SVM acc {c['baseline_tfidf_svm']['accuracy']} F1 {c['baseline_tfidf_svm']['macro_f1']}"
        )


if __name__ == "__main__":
    sys.exit(main())
