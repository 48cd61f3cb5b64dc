"""`hotline nlu ...`: train and evaluate the NLU engines."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.cli import rasa as cli_rasa
from services.cli.common import CliError, emit, settings_from_env


def _engine(name: str):
    settings = settings_from_env()
    if name == "builtin":
        from services.nlu_loading import load_builtin

        return load_builtin(settings)
    if name == "rasa":
        try:
            from nlu.rasa_engine import RasaEngine, RasaError
        except ImportError as exc:
            raise CliError(f"the Rasa engine is not available: {exc}") from exc
        engine = RasaEngine.from_settings(settings)
        try:
            engine.check()  # both servers up with a model, before any message is parsed
        except RasaError as exc:
            raise CliError(str(exc)) from exc
        return engine
    raise CliError(f"unknown engine {name!r}")


def cmd_train(args: argparse.Namespace) -> int:
    from services.nlu_loading import train_builtin_from_settings

    settings = settings_from_env()
    report = train_builtin_from_settings(settings)
    emit(
        {
            "model_dir": str(settings.nlu_dir),
            "examples": report.examples,
            "intents": report.intents,
            "units": report.units,
            "unit_threshold": round(report.unit_threshold, 4),
            "cv_unit_accuracy": round(report.cv_unit_accuracy, 4),
            "embedding": report.extra.get("embedding"),
            "seconds": round(report.seconds, 2),
        },
        args.json,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nlu.evaluate import EvalDataError, evaluate_engine, format_report, read_jsonl

    try:
        rows = read_jsonl(Path(args.data))
    except EvalDataError as exc:
        raise CliError(str(exc)) from exc
    report = evaluate_engine(_engine(args.engine), rows)
    if args.json:
        emit(report, True)
    else:
        print(format_report(report))
    return 0


def cmd_eval_csv(args: argparse.Namespace) -> int:
    from nlu.evaluate import EvalDataError, evaluate_csv, read_csv_column_pair

    try:
        train = read_csv_column_pair(Path(args.train), args.text_col, args.label_col)
        test = read_csv_column_pair(Path(args.test), args.text_col, args.label_col)
    except EvalDataError as exc:
        raise CliError(str(exc)) from exc
    if args.embed_chars is not None and args.embed_chars < 1:
        raise CliError("--embed-chars must be a positive number of characters")
    embedder = None
    if not args.no_embeddings:
        from services.nlu_loading import load_embedder_from_settings

        embedder = load_embedder_from_settings(settings_from_env())
    emit(evaluate_csv(train, test, embedder=embedder, embed_chars=args.embed_chars), args.json)
    return 0


def _unit_resolver(settings):
    """A unit code or name -> its code, from the configured unit directory."""
    from services.core.unit_directory import load_units

    units = load_units(settings.units_file)
    by_name = {u.name: u.code for u in units.units}

    def resolve(value: str) -> str | None:
        return value if value in units else by_name.get(value)

    return resolve


def cmd_import_orders(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    import asyncpg

    from nlu import orders_file
    from services.core.clock import SystemClock
    from services.storage import db, nlu_examples

    settings = settings_from_env()
    try:
        data = Path(args.file).read_bytes()
        parsed = orders_file.parse_orders(
            data, orders_file.format_of(args.file), _unit_resolver(settings)
        )
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read it: {exc}") from exc
    except orders_file.OrdersFileError as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    commit = not parsed.errors or args.partial

    async def store() -> int:
        dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
        pool = await db.connect(dsn, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await nlu_examples.insert_many(
                    conn,
                    [(o.text, o.unit, o.request_type) for o in parsed.orders],
                    "import",
                    args.actor,
                    SystemClock().now(),
                )
        finally:
            await pool.close()

    stored = 0
    if commit and parsed.orders:
        try:
            stored = asyncio.run(store())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise CliError(f"database: {exc}") from exc
    out = {
        "file": args.file,
        "rows": len(parsed.orders) + len(parsed.errors),
        "stored": stored,
        "committed": commit,
        "errors": [e.to_dict() for e in parsed.errors],
    }
    if args.json:
        emit(out, True)
    else:
        for err in parsed.errors:
            print(f"{args.file}: row {err.row}: {err.reason}", file=sys.stderr)
        if commit:
            print(
                f"stored {stored} labelled orders; {len(parsed.errors)} bad rows skipped "
                "(hotline nlu retrain learns from them)"
            )
        else:
            print(
                f"nothing stored: {len(parsed.errors)} bad rows (fix them, or --partial to "
                "store the good ones)",
                file=sys.stderr,
            )
    return 0 if commit else 2


def cmd_retrain(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from nlu.retrain import retrain, stored_to_examples
    from services.nlu_loading import load_embedder_from_settings
    from services.storage import db, nlu_examples

    settings = settings_from_env()

    async def fetch() -> list:
        dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
        pool = await db.connect(dsn, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await nlu_examples.all_examples(conn)
        finally:
            await pool.close()

    try:
        records = asyncio.run(fetch())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CliError(f"database: {exc}") from exc
    stored = stored_to_examples([(r["text"], r["unit_code"], r["request_type"]) for r in records])
    report = retrain(settings.nlu_dir, stored, embedder=load_embedder_from_settings(settings))
    out = {"model_dir": str(settings.nlu_dir), **report.to_dict()}
    if args.json:
        emit(out, True)
    else:
        emit(out, False)
        if not report.replaced:
            print(
                f"the running model is kept: the new one is worse on the held-out sets "
                f"({', '.join(report.worse)})"
            )
    return 0 if report.replaced else 3


def register(sub: argparse._SubParsersAction) -> None:
    nlu = sub.add_parser("nlu", help="train and evaluate the NLU").add_subparsers(
        dest="nlu_command", required=True
    )

    train = nlu.add_parser("train", help="train the built-in engine from the project data")
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=cmd_train)

    ev = nlu.add_parser("eval", help="evaluate an engine on labelled messages (JSONL)")
    ev.add_argument("--data", required=True, help='JSONL lines {"text", "intent", "unit"}')
    ev.add_argument("--engine", choices=("builtin", "rasa"), default="builtin")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    ev_csv = nlu.add_parser(
        "eval-csv", help="train the classifier on one labelled CSV, score it on another"
    )
    ev_csv.add_argument("--train", required=True)
    ev_csv.add_argument("--test", required=True)
    ev_csv.add_argument("--text-col", required=True)
    ev_csv.add_argument("--label-col", required=True)
    ev_csv.add_argument("--no-embeddings", action="store_true", help="n-gram features only")
    ev_csv.add_argument(
        "--embed-chars",
        type=int,
        default=64,
        help="embed only the first N characters of each text; n-grams see all (default 64: "
        "chosen by cross-validation on real title + detail messages, docs/figures.md; it bounds "
        "the encoder's memory on long messages, 3.9 GB at 512 tokens)",
    )
    ev_csv.add_argument("--json", action="store_true")
    ev_csv.set_defaults(func=cmd_eval_csv)

    imp = nlu.add_parser(
        "import-orders",
        help="store a city's historical work orders (CSV/XLSX: text, unit, request type) "
        "as labelled examples",
    )
    imp.add_argument(
        "file", help=".csv or .xlsx; header row: text/内容, unit/承办单位, request_type/诉求类型"
    )
    imp.add_argument(
        "--partial", action="store_true", help="store the good rows even if some rows are bad"
    )
    imp.add_argument("--actor", default="import", help="recorded as who added them")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_import_orders)

    re_ = nlu.add_parser(
        "retrain",
        help="retrain the built-in engine from the YAML files plus every stored example; "
        "keep the running model if the new one is worse on the held-out sets",
    )
    re_.add_argument("--json", action="store_true")
    re_.set_defaults(func=cmd_retrain)

    cli_rasa.register(nlu)
