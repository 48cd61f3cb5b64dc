"""`hotline kb ...`: import, export, ask, evaluate and calibrate the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from services.cli.common import CliError, emit, settings_from_env
from services.config import Settings


def _embedder(settings: Settings) -> Any:
    from services.nlu_loading import load_embedder_from_settings

    try:
        return load_embedder_from_settings(settings)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CliError(
            f"cannot load the embedding model from {settings.embedding_dir}: {exc}"
        ) from exc


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CliError(f"database: {exc}") from exc


async def _configured_dsn(settings: Settings) -> str:
    from services.storage import db

    return await db.resolve_dsn(settings.database_url, settings.pgdata_dir)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such file") from exc
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc}") from exc


# -- import / export ------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from knowledgebase import bulk
    from services.cli.kb_tools import open_kb
    from services.core.clock import SystemClock

    settings = settings_from_env()
    data = _read_file(args.file)
    try:
        fmt = bulk.format_of(args.file, args.format)
    except bulk.ImportFileError as exc:
        raise CliError(str(exc)) from exc
    embedder = _embedder(settings)

    async def run() -> Any:
        dsn = await _configured_dsn(settings)
        async with open_kb(settings, dsn, embedder, demo=False) as kb:
            return await kb.import_file(
                data,
                fmt,
                actor=args.actor,
                at=SystemClock().now(),
                partial=args.partial,
                kind=args.kind,
            )

    try:
        report = _run(run())
    except bulk.ImportFileError as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    out = report.to_dict()
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for err in report.errors:
            print(f"{args.file}: row {err.row}: {err.reason}", file=sys.stderr)
        if report.committed:
            print(
                f"imported {report.kind}: {report.created} new, {report.updated} changed, "
                f"{report.unchanged} unchanged; {len(report.errors)} bad rows skipped"
            )
        if report.ignored_columns:
            print(f"ignored columns: {', '.join(report.ignored_columns)}", file=sys.stderr)
    if not report.committed:
        print(
            f"hotline: error: {args.file}: {len(report.errors)} of {report.rows} rows are "
            "invalid; nothing was imported (fix them, or use --partial)",
            file=sys.stderr,
        )
        return 2
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from knowledgebase import bulk
    from services.cli.kb_tools import open_kb

    settings = settings_from_env()
    try:
        fmt = bulk.format_of(args.file, args.format)
    except bulk.ImportFileError as exc:
        raise CliError(str(exc)) from exc

    async def run() -> bytes:
        dsn = await _configured_dsn(settings)
        # no vectors are needed to write a file
        async with open_kb(settings, dsn, None, demo=False) as kb:
            return await kb.export(args.kind, fmt, args.status)

    data = _run(run())
    try:
        Path(args.file).write_bytes(data)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot write it: {exc}") from exc
    print(f"wrote {args.kind} to {args.file} ({len(data)} bytes)")
    return 0


# -- ask ------------------------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace) -> int:
    from services.cli.kb_tools import open_kb

    question = args.question.strip()
    if not question:
        raise CliError("the question is empty")
    if not 1 <= args.k <= 50:
        raise CliError("-k must be between 1 and 50")
    settings = settings_from_env()
    embedder = _embedder(settings)

    async def run() -> dict[str, Any]:
        dsn = await _configured_dsn(settings)
        async with open_kb(settings, dsn, embedder, demo=settings.load_demo_data) as kb:
            day = None if args.all else date.today()
            result = await asyncio.to_thread(kb.candidates, question, day, args.k)
            return {"question": question, "entries": len(kb.index), **result.to_dict()}

    out = _run(run())
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(
            f"would answer: {'yes, ' + out['answer_id'] if out['would_answer'] else 'no'} "
            f"(confidence {out['confidence']}, threshold {out['threshold']})"
        )
        for c in out["candidates"]:
            print(f"  {c['score']:.4f}  {c['id']}  {c['question']}")
    return 0


# -- eval -----------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from knowledgebase import bulk
    from knowledgebase.evaluation import QueryFileError, evaluate, read_queries
    from services.cli.kb_tools import open_kb, temporary_database
    from services.core.unit_directory import load_units

    settings = settings_from_env()
    units = load_units(settings.units_file)
    # JSONL as before; a city's spreadsheet (.csv, .xlsx) is read as `kb import` reads it
    fmt = Path(args.kb).suffix.lower().lstrip(".")
    fmt = fmt if fmt in ("csv", "xlsx") else "jsonl"
    try:
        parsed = bulk.parse(
            _read_file(args.kb),
            fmt,
            kind="entries",
            unit_names={units.name(c): c for c in units.codes},
        )
    except bulk.ImportFileError as exc:
        raise CliError(f"{args.kb}: {exc}") from exc
    if parsed.errors:
        where = "line" if fmt == "jsonl" else "row"
        shown = "; ".join(f"{where} {e.row}: {e.reason}" for e in parsed.errors[:20])
        raise CliError(f"{args.kb}: {len(parsed.errors)} bad lines: {shown}")
    entries = [e for _, e in parsed.records]
    try:
        queries = read_queries(Path(args.queries), {e.id for e in entries})
    except QueryFileError as exc:
        raise CliError(str(exc)) from exc
    embedder = _embedder(settings)
    try:
        today = date.fromisoformat(args.day) if args.day else date.today()
    except ValueError as exc:
        raise CliError(f"--day must be a date like 2026-11-23, got {args.day!r}") from exc

    async def run() -> dict[str, Any]:
        codes = set(units.codes)
        # the evaluated base may name units of another city: keep the entries, drop the link
        unknown = sum(1 for e in entries if e.unit and e.unit not in codes)
        local = [
            e if not e.unit or e.unit in codes else e.model_copy(update={"unit": None})
            for e in entries
        ]
        async with temporary_database(settings) as dsn:
            async with open_kb(settings, dsn, embedder, demo=False) as kb:
                await kb.save_bulk(local, actor="eval", action="import", at=_now())
                await kb.refresh(recalibrate=True)
                metrics = evaluate(lambda q: kb.ask(q, today), queries)
                c = kb.calibration
                metrics.update(
                    {
                        "entries": len(entries),
                        "unknown_units": unknown,
                        "embedding": kb.encoder.name if kb.encoder else None,
                        "threshold": None if c is None else round(kb.index.threshold, 4),
                        "calibration": (
                            "none (never answers by itself)"
                            if c is None
                            else c.report.get("source", "fitted on this base")
                        ),
                    }
                )
                return metrics

    emit(_run(run()), args.json)
    return 0


def _now():  # noqa: ANN202
    from services.core.clock import SystemClock

    return SystemClock().now()


# -- calibrate ------------------------------------------------------------------------------------


def cmd_calibrate(args: argparse.Namespace) -> int:
    from knowledgebase.service import DEFAULT_CALIBRATIONS
    from services.cli.kb_tools import open_kb, temporary_database

    settings = settings_from_env()
    embedder = _embedder(settings)

    async def run() -> dict[str, Any]:
        if args.write_default:
            async with temporary_database(settings) as dsn:
                async with open_kb(settings, dsn, embedder, demo=True) as kb:
                    return _default_written(kb, DEFAULT_CALIBRATIONS)
        dsn = await _configured_dsn(settings)
        async with open_kb(settings, dsn, embedder, demo=settings.load_demo_data) as kb:
            c = await kb.recalibrate()
            return {
                "signature": kb.signature,
                "calibration": None if c is None else {**c.params(), "report": c.report},
            }

    emit(_run(run()), args.json)
    return 0


def _default_written(kb: Any, path: Path) -> dict[str, Any]:
    c = kb.calibration
    if c is None:
        raise CliError("the demo base could not be calibrated")
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    report = {
        **c.report,
        "source": "default: fitted on the demo base (knowledgebase/data/faq.jsonl)",
    }
    existing[c.signature] = {"params": c.params(), "report": report}
    from knowledgebase.calibration import fit_decision, fit_one_question, one_question_index
    from knowledgebase.service import TUNING_QUERIES, one_question_key, tuning_queries

    # weights from the demo's alternatives asked of its questions; the answer decision from
    # the questions people wrote (knowledgebase/data/README.md), asked of the same base
    ranking = fit_one_question(kb.index, c.signature)
    one = fit_decision(
        one_question_index(kb.index),
        tuning_queries(),
        ranking,
        sources=[p.name for p in TUNING_QUERIES],
    )
    existing[one_question_key(c.signature)] = {
        "params": one.params(),
        "report": {
            **one.report,
            "ranking": {k: ranking.report[k] for k in ("method", "recall_at_1", "recall_at_3")},
            "source": "default for bases of one question per entry: fitted on the demo base "
            "reduced to its questions (knowledgebase/data/faq.jsonl)",
        },
    }
    path.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if kb.encoder is not None:
        from knowledgebase.service import DEMO_VECTORS
        from knowledgebase.vectors import save_shipped

        entries = kb.index.entries
        texts = [t for e in entries for t in e.phrasings()] + list(kb.index.docs)
        vectors = np.vstack([kb.index.vectors, kb.index.doc_vectors])
        save_shipped(DEMO_VECTORS, kb.encoder.name, texts, vectors)
    return {"written": str(path), "signature": c.signature, **c.params()}


def register(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="the knowledge base").add_subparsers(
        dest="kb_command", required=True
    )

    imp = kb.add_parser("import", help="import entries or providers (JSONL, CSV, XLSX)")
    imp.add_argument("file")
    imp.add_argument(
        "--partial", action="store_true", help="import the valid rows even if some are bad"
    )
    imp.add_argument("--kind", choices=("entries", "providers"), help="default: from the columns")
    imp.add_argument("--format", choices=("jsonl", "csv", "xlsx"), help="default: from the name")
    imp.add_argument("--actor", default="cli", help="recorded as who made the change")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_import)

    exp = kb.add_parser("export", help="export entries or providers (JSONL, CSV, XLSX)")
    exp.add_argument("file")
    exp.add_argument("--kind", choices=("entries", "providers"), default="entries")
    exp.add_argument("--format", choices=("jsonl", "csv", "xlsx"), help="default: from the name")
    exp.add_argument("--status", choices=("draft", "published", "retired"))
    exp.set_defaults(func=cmd_export)

    ask = kb.add_parser("ask", help="top candidates for a question, and whether it would answer")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, default=5)
    ask.add_argument(
        "--all", action="store_true", help="include drafts, retired and expired entries"
    )
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    ev = kb.add_parser("eval", help="evaluate on a base and labelled queries, in a temporary store")
    ev.add_argument(
        "--kb",
        required=True,
        help='JSONL lines {"id","question","answer","unit"}, or a .csv/.xlsx as for kb import',
    )
    ev.add_argument("--queries", required=True, help='JSONL lines {"query","faq_id" or null}')
    ev.add_argument("--day", help="answer as on this day (validity dates); default today")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    cal = kb.add_parser("calibrate", help="refit fusion weights and the answer threshold")
    cal.add_argument(
        "--write-default",
        action="store_true",
        help="fit on the demo base (temporary store) and write knowledgebase/data/calibration.json",
    )
    cal.add_argument("--json", action="store_true")
    cal.set_defaults(func=cmd_calibrate)
