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
    embedder = None
    if not args.no_embeddings:
        from services.nlu_loading import load_embedder_from_settings

        embedder = load_embedder_from_settings(settings_from_env())
    emit(evaluate_csv(train, test, embedder=embedder), args.json)
    return 0


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
    ev_csv.add_argument("--json", action="store_true")
    ev_csv.set_defaults(func=cmd_eval_csv)

    cli_rasa.register(nlu)
