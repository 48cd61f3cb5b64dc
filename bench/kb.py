"""Knowledge-base bench: quality on the separately written query set, and answer latency with
the demo base and with 5,000 entries.

    python bench/kb.py [--queries knowledgebase/data/eval_queries.jsonl] [--size 5000]
                       [--out bench/results/kb.json]
    python bench/kb.py --bases [--out bench/results/kb_bases.json]
    python bench/kb.py --import-size 5000 [--out bench/results/kb_import.json]

--bases measures instead three bases on the blind queries (tests/data/blind/faq_queries.jsonl,
written outside the team; measured only) and on the team's own query set: (a) the demo base as
it is, (b) the demo base with one question per entry (alternatives dropped), (c) the demo base
as another city's one-question .xlsx export (bench/kb_city.py), imported through the real
import path (KnowledgeBase.import_file). Each base is loaded into its own temporary database
and calibrated as an import would be (a base without alternatives gets the default
calibration).

Everything runs in temporary databases on the configured server (DATABASE_URL, or the
embedded one in HOTLINE_DATA_DIR), dropped afterwards.

Quality. The calibration (fusion weights, answer model, threshold) is fitted on the demo base
alone, from its own alternative phrasings (knowledgebase/calibration.py); the query set plays
no part in it, so the main figures are fully held out. The answer-threshold policy is also
checked against the query set honestly: the threshold that would meet the false-answer target
is chosen on one half of the queries and scored on the other, both ways round ("split").

Latency. One `ask` = encoding the question with e5, scoring every entry five ways, ranking.
The 5,000-entry base is the demo base plus SYNTHETIC entries made by recombining demo entries
(the first half of one question with the second half of another, and so on); they are
labelled "syn-*" and tagged "synthetic". Their vectors are the normalised sums of the vectors
of the texts they were spliced from (--encode-synthetic encodes the spliced texts instead;
the search costs the same either way). The demo calibration is kept for them. The same
questions are also run through pgvector's HNSW index for comparison (nearest phrasings only,
no fusion), to show why the in-memory matrix is used for answering.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledgebase import store  # noqa: E402
from knowledgebase.evaluation import LabelledQuery, evaluate, read_queries, score  # noqa: E402
from knowledgebase.models import FaqEntry  # noqa: E402
from knowledgebase.service import DEMO_FAQ, KnowledgeBase, read_jsonl  # noqa: E402
from services.cli.kb_tools import open_kb, temporary_database  # noqa: E402
from services.config import Settings  # noqa: E402
from services.nlu_loading import load_embedder_from_settings  # noqa: E402

QUERIES = ROOT / "knowledgebase" / "data" / "eval_queries.jsonl"
BLIND_QUERIES = ROOT / "tests" / "data" / "blind" / "faq_queries.jsonl"
QUALITY_KEYS = (
    "recall_at_1",
    "recall_at_3",
    "answered_correctly",
    "false_answer_rate",
    "unanswerable_answered",
    "wrong_answers",
    "answered_or_chosen",
    "unanswerable_offered_choice",
    "p50_ms",
    "p99_ms",
)
DAY = "2026-11-23"


def synthetic_entries(
    demo: list[FaqEntry], count: int, seed: int = 12345
) -> list[tuple[FaqEntry, FaqEntry, FaqEntry]]:
    """`count` made-up entries recombined from pairs of demo entries (clearly labelled), each
    with the two entries it was made from."""
    rng = random.Random(seed)

    def splice(a: str, b: str) -> str:
        return a[: max(2, len(a) // 2)] + b[len(b) // 2 :]

    out = []
    for i in range(count):
        a, b = rng.sample(demo, 2)
        alternatives = [
            splice(x, y) for x, y in zip(a.alternatives, reversed(b.alternatives), strict=False)
        ]
        sentences_a = a.answer.split("。")
        sentences_b = b.answer.split("。")
        answer = "。".join(
            sentences_a[: max(1, len(sentences_a) // 2)] + sentences_b[len(sentences_b) // 2 :]
        )
        made = FaqEntry(
            id=f"syn-{i:05d}",
            question=splice(a.question, b.question),
            alternatives=alternatives,
            answer=answer if len(answer) >= 2 else a.answer,
            unit=a.unit,
            tags=["synthetic"],
        )
        out.append((made, a, b))
    return out


def recombined_vectors(
    kb: KnowledgeBase, made: list[tuple[FaqEntry, FaqEntry, FaqEntry]], encode: bool
) -> dict[str, list[np.ndarray]]:
    """Vectors of synthetic entries (phrasings, then the whole entry). With `encode`, the
    spliced texts are encoded by e5; otherwise each vector is the normalised sum of the
    vectors of the two texts it was spliced from - the same cost to search, without an hour
    of encoding on a busy two-core machine."""
    index = kb.index
    if encode:
        return kb._encode_entries([m for m, _, _ in made])  # noqa: SLF001 - bench

    def rows(e: FaqEntry) -> np.ndarray:
        i = index._position[e.id]  # noqa: SLF001 - bench
        start = index.starts[i]
        return index.vectors[start : start + len(e.phrasings())]

    out = {}
    for m, a, b in made:
        va, vb = rows(a), rows(b)
        vecs = [va[0] + vb[0]] + [
            va[1 + k % (len(va) - 1)] + vb[-1 - k % (len(vb) - 1)]
            if len(va) > 1 and len(vb) > 1
            else va[0] + vb[0]
            for k in range(len(m.phrasings()) - 1)
        ]
        doc = index.doc_vectors[index._position[a.id]] + index.doc_vectors[index._position[b.id]]  # noqa: SLF001
        vecs.append(doc)
        out[m.id] = [v / np.linalg.norm(v) for v in vecs]
    return out


def latency(kb: KnowledgeBase, texts: list[str], repeat: int = 3, *, tag: str = "") -> dict:
    """Time of one ask for questions never seen before (`tag` keeps the phases' questions
    apart: the encoder's cache is shared between the demo and the large base)."""
    from datetime import date

    day = date.fromisoformat(DAY)
    for t in texts[:10]:
        kb.ask(t, day)
    times, cpu = [], []
    for _ in range(repeat):
        for t in texts:
            # a fresh question each time: nothing cached from the previous round
            question = f"{t}{tag}{'？' * (_ + 1)}"
            started, started_cpu = time.perf_counter(), time.process_time()
            kb.ask(question, day)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
    encode = []
    for t in texts:
        started = time.perf_counter()
        if kb.encoder:
            kb.encoder.embedder.encode([t + tag + "。"])
        encode.append((time.perf_counter() - started) * 1000)
    return {
        "asks": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "max_ms": round(float(np.max(times)), 2),
        # CPU time of the process per ask (all threads): what it costs without contention
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
        "load_average": os.getloadavg(),
        "encode_only_p50_ms": round(float(np.percentile(encode, 50)), 2) if kb.encoder else None,
    }


async def pgvector_latency(kb: KnowledgeBase, texts: list[str]) -> dict:
    if kb.encoder is None:
        return {}
    vectors = kb.encoder.encode(texts)
    times = []
    async with kb.pool.acquire() as conn:
        await store.ensure_vector_index(conn)
        await conn.execute("ANALYZE kb_phrasings")
        for vec in vectors[:10]:
            await store.nearest_phrasings(conn, vec, 20)
        for vec in vectors:
            started = time.perf_counter()
            await store.nearest_phrasings(conn, vec, 20)
            times.append((time.perf_counter() - started) * 1000)
    return {
        "what": "HNSW top-20 nearest phrasings, vector already encoded (no fusion)",
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


def in_memory_search_only(kb: KnowledgeBase, texts: list[str]) -> dict:
    """Scoring and ranking alone, the question's vector cached (encoding excluded)."""
    from datetime import date

    day = date.fromisoformat(DAY)
    for t in texts:
        kb.ask(t, day)  # fills the encoder's cache
    times = []
    for t in texts:
        started = time.perf_counter()
        kb.ask(t, day)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "what": "fusion over every entry with the question's vector cached",
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


def split_halves(kb: KnowledgeBase, queries: list[LabelledQuery], target: float) -> dict:
    """Choose the threshold on one half of the queries (lowest threshold with at most
    `target` false answers there), score the other half; both ways round."""
    from datetime import date

    day = date.fromisoformat(DAY)
    results = [kb.ask(q.query, day) for q in queries]
    rng = random.Random(7)
    order = list(range(len(queries)))
    rng.shuffle(order)
    halves = [sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])]
    out = []
    for tune, test in (halves, halves[::-1]):
        confidences = sorted({results[i].confidence for i in tune} | {1.0})
        chosen = 1.0
        for t in confidences:
            sub = [_with_threshold(results[i], t) for i in tune]
            m = score([queries[i] for i in tune], sub, [0.0] * len(tune))
            if (m["false_answer_rate"] or 0.0) <= target:
                chosen = t
                break
        sub = [_with_threshold(results[i], chosen) for i in test]
        m = score([queries[i] for i in test], sub, [0.0] * len(test))
        out.append(
            {"threshold": round(chosen, 4), **{k: v for k, v in m.items() if not k.startswith("p")}}
        )
    return {"target_false_answer_rate": target, "folds": out}


def _with_threshold(result, threshold: float):  # noqa: ANN001, ANN202
    from dataclasses import replace

    return replace(result, threshold=threshold)


async def run(args: argparse.Namespace) -> dict:
    settings = Settings.from_env()
    embedder = load_embedder_from_settings(settings)
    demo = [FaqEntry(**row) for row in read_jsonl(DEMO_FAQ)]
    demo_ids = {e.id for e in demo}
    queries = read_queries(Path(args.queries), demo_ids)
    texts = [q.query for q in queries]
    report: dict = {
        "embedding": getattr(embedder, "name", None),
        "queries_file": str(args.queries),
        "machine_load_average_at_start": os.getloadavg(),
        "day": DAY,
    }
    from datetime import date

    day = date.fromisoformat(DAY)
    async with temporary_database(settings) as dsn:
        async with open_kb(settings, dsn, embedder, demo=True) as kb:
            c = kb.calibration
            report["calibration"] = {**c.params(), "report": c.report} if c else None
            quality = evaluate(lambda q: kb.ask(q, day), queries)
            report["demo"] = {
                "entries": len(kb.index),
                "quality": quality,
                "split_threshold_check": split_halves(kb, queries, 0.05),
                "latency": latency(kb, texts),
                "search_only": in_memory_search_only(kb, texts),
            }
            started = time.perf_counter()
            made = synthetic_entries(demo, args.size - len(demo))
            extra = [m for m, _, _ in made]
            vectors = recombined_vectors(kb, made, args.encode_synthetic)
            async with kb.pool.acquire() as conn, conn.transaction():
                await store.drop_vector_index(conn)
                await store.save_entries(
                    conn,
                    extra,
                    actor="bench",
                    action="import",
                    at=_now(),
                    embeddings=vectors,
                    embedding_model=kb.encoder.name if kb.encoder else None,
                )
                await store.ensure_vector_index(conn)
            load_s = time.perf_counter() - started
            started = time.perf_counter()
            await kb.refresh()
            refresh_s = time.perf_counter() - started
            report["size"] = {
                "entries": len(kb.index),
                "synthetic": len(extra),
                "note": "demo entries plus synthetic recombinations of them (ids syn-*); "
                "demo calibration kept; synthetic vectors "
                + ("encoded by e5" if args.encode_synthetic else "recombined from the sources'")
                + ". quality_on_demo_queries is a stress figure, not the base's quality: every "
                "synthetic entry is spliced from the very entries the queries ask about, so "
                "each query faces ~28 near-copies of its answer",
                "bulk_load_s": round(load_s, 1),
                "index_rebuild_s": round(refresh_s, 2),
                "quality_on_demo_queries": evaluate(lambda q: kb.ask(q, day), queries),
                "latency": latency(kb, texts, tag="呢"),
                "search_only": in_memory_search_only(kb, texts),
                "pgvector_hnsw": await pgvector_latency(kb, texts),
            }
    return report


def _now():  # noqa: ANN202
    from services.core.clock import SystemClock

    return SystemClock().now()


async def bases(args: argparse.Namespace) -> dict:
    """(a) demo, (b) one question per entry, (c) another city's xlsx: blind and own queries."""
    from datetime import date

    from kb_city import demo_city_sheet

    settings = Settings.from_env()
    embedder = load_embedder_from_settings(settings)
    demo = [FaqEntry(**row) for row in read_jsonl(DEMO_FAQ)]
    ids = {e.id for e in demo}
    query_sets = {
        "blind": read_queries(Path(args.blind), ids),
        "own": read_queries(Path(args.queries), ids),
    }
    day = date.fromisoformat(DAY)
    loaders = {
        "a_demo": ("demo base as is (question + 3 alternatives per entry)", demo, None),
        "b_one_question": (
            "demo base, one question per entry (alternatives dropped)",
            [e.model_copy(update={"alternatives": []}) for e in demo],
            None,
        ),
        "c_city_xlsx": (
            "another city's one-question .xlsx (bench/kb_city.py) through KnowledgeBase."
            "import_file",
            None,
            demo_city_sheet(),
        ),
    }
    report: dict = {
        "embedding": getattr(embedder, "name", None),
        "day": DAY,
        "machine_load_average_at_start": os.getloadavg(),
        "query_sets": {
            name: {"file": str(p), "queries": len(q)}
            for name, p, q in (
                ("blind", args.blind, query_sets["blind"]),
                ("own", args.queries, query_sets["own"]),
            )
        },
        "bases": {},
    }
    for key, (what, entries, sheet) in loaders.items():
        async with temporary_database(settings) as dsn:
            async with open_kb(settings, dsn, embedder, demo=False) as kb:
                if sheet is not None:
                    imported = await kb.import_file(sheet, "xlsx", actor="bench", at=_now())
                    assert imported.committed, imported.errors
                    loaded = {"import": imported.to_dict()}
                else:
                    await kb.save_bulk(entries, actor="bench", action="import", at=_now())
                    await kb.refresh(recalibrate=True)
                    loaded = {}
                c = kb.calibration
                row: dict = {
                    "what": what,
                    "entries": len(kb.index),
                    "phrasings": len(kb.index.texts),
                    "calibration": None if c is None else c.report.get("source"),
                    "threshold": None if c is None else round(c.threshold, 4),
                    **loaded,
                }
                for name, queries in query_sets.items():
                    m = evaluate(lambda q: kb.ask(q, day), queries)
                    row[name] = {k: m[k] for k in QUALITY_KEYS}
                report["bases"][key] = row
                print(key, json.dumps({n: row[n] for n in query_sets}, ensure_ascii=False))
    return report


async def import_time(args: argparse.Namespace) -> dict:
    """Import of an N-entry one-question .xlsx in another city's style (the demo entries plus
    synthetic recombinations, bench/kb_city.py's layout) through KnowledgeBase.import_file into
    an empty base: parsing, validation, e5 encoding of every question and whole entry, storing,
    rebuilding the index and choosing the calibration - what a city waits for."""
    from kb_city import city_sheet

    from services.config import DEFAULT_UNITS_FILE
    from services.core.unit_directory import load_units

    settings = Settings.from_env()
    embedder = load_embedder_from_settings(settings)
    demo = [FaqEntry(**row) for row in read_jsonl(DEMO_FAQ)]
    made = [m for m, _, _ in synthetic_entries(demo, args.import_size - len(demo))]
    units = load_units(DEFAULT_UNITS_FILE)
    sheet = city_sheet(demo + made, {code: units.name(code) for code in units.codes})
    report: dict = {
        "embedding": getattr(embedder, "name", None),
        "entries": len(demo) + len(made),
        "machine_load_average_at_start": os.getloadavg(),
    }
    async with temporary_database(settings) as dsn:
        async with open_kb(settings, dsn, embedder, demo=False) as kb:
            started, cpu = time.perf_counter(), time.process_time()
            imported = await kb.import_file(sheet, "xlsx", actor="bench", at=_now())
            report["import_s"] = round(time.perf_counter() - started, 1)
            report["import_cpu_s"] = round(time.process_time() - cpu, 1)
            report["committed"] = imported.committed
            report["errors"] = len(imported.errors)
            report["indexed"] = len(kb.index)
            c = kb.calibration
            report["calibration"] = None if c is None else c.report.get("source")
    report["machine_load_average_at_end"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", default=str(QUERIES))
    parser.add_argument(
        "--blind",
        default=str(BLIND_QUERIES),
        help="the blind query set for --bases (tests/data/blind/faq_queries_v2.jsonl: the second)",
    )
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument(
        "--encode-synthetic", action="store_true", help="encode synthetic texts with e5 (slow)"
    )
    parser.add_argument(
        "--bases", action="store_true", help="demo / one-question / city xlsx on the blind set"
    )
    parser.add_argument(
        "--import-size",
        type=int,
        help="time importing a one-question .xlsx of this many entries (encoded by e5)",
    )
    parser.add_argument(
        "--calibrations",
        help="shipped calibrations to use instead of knowledgebase/data/calibration.json "
        "(e.g. an earlier version, to measure before and after on one machine)",
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.calibrations:
        from knowledgebase import service

        service.DEFAULT_CALIBRATIONS = Path(args.calibrations)
    name = "kb_import.json" if args.import_size else "kb_bases.json" if args.bases else "kb.json"
    args.out = args.out or str(ROOT / "bench" / "results" / name)
    job = import_time(args) if args.import_size else bases(args) if args.bases else run(args)
    report = asyncio.run(job)
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
