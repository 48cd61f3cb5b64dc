"""`hotline nlu rasa-export | rasa-train | rasa-serve`: the optional Rasa engine's models."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from services.cli.common import CliError, emit, settings_from_env


def cmd_export(args: argparse.Namespace) -> int:
    from nlu.rasa_export import export
    from nlu.training_data import TrainingDataError

    try:
        report = export(Path(args.dir))
    except (TrainingDataError, OSError, ValueError) as exc:
        raise CliError(f"cannot export the Rasa projects: {exc}") from exc
    emit(
        {
            "directory": str(report.directory),
            "projects": ["intents", "routing"],
            "fingerprint": report.fingerprint,
            "intent_examples": report.intent_examples,
            "faq_examples": report.faq_examples,
            "routing_examples": report.routing_examples,
            "routing_intents": report.routing_intents,
        },
        args.json,
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nlu.rasa_runtime import RasaRuntimeError, train

    settings = settings_from_env()
    out = Path(args.out) if args.out else settings.rasa_dir
    progress = (lambda _msg: None) if args.json else (lambda msg: print(msg, flush=True))
    try:
        trained = train(settings.rasa_venv, out, parallel=not args.one_at_a_time, log=progress)
    except (RasaRuntimeError, OSError) as exc:
        raise CliError(str(exc)) from exc
    emit(
        {
            "directory": str(trained.directory),
            "models": trained.models,
            "fingerprint": trained.fingerprint,
            "seconds": trained.seconds,
            "megabytes": trained.megabytes,
            "examples": trained.examples,
        },
        args.json,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from nlu.rasa_export import fingerprint
    from nlu.rasa_runtime import RasaRuntimeError, read_trained, serve_models

    settings = settings_from_env()
    out = Path(args.out) if args.out else settings.rasa_dir
    trained = read_trained(out)
    if trained is None:
        raise CliError(f"no trained Rasa models in {out}: run `hotline nlu rasa-train` first")
    if trained.fingerprint != fingerprint():
        print(
            "warning: the Rasa models were trained on other training data or settings than "
            "the project's current ones; run `hotline nlu rasa-train` to update them",
            file=sys.stderr,
        )
    urls = {"intents": settings.rasa_url, "routing": settings.rasa_routing_url}
    print(f"starting Rasa at {urls['intents']} and {urls['routing']} (about a minute)", flush=True)
    servers = []
    try:
        servers = serve_models(
            settings.rasa_venv, trained, urls, log_dir=out / "logs", timeout=args.timeout
        )
        for server in servers:
            print(f"{server.project}: {server.url} ready in {server.ready_seconds} s", flush=True)
        # serve until stopped; a server that dies ends the command, pointing at its log
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            for server in servers:
                if server.process.poll() is not None:
                    raise CliError(
                        f"the Rasa {server.project} server exited with code "
                        f"{server.process.returncode} (log: {server.log_file})"
                    )
            time.sleep(1)
    except RasaRuntimeError as exc:
        raise CliError(str(exc)) from exc
    finally:
        for server in servers:
            server.stop()


def register(nlu: argparse._SubParsersAction) -> None:
    export = nlu.add_parser("rasa-export", help="write the training data as two Rasa 3.6 projects")
    export.add_argument("dir", help="folder for intents/ and routing/")
    export.add_argument("--json", action="store_true")
    export.set_defaults(func=cmd_export)

    train = nlu.add_parser(
        "rasa-train", help="export and train both Rasa models (needs .ci/rasa-setup)"
    )
    train.add_argument("--out", help="folder for projects/, models/, logs/ (default: data dir)")
    train.add_argument(
        "--one-at-a-time", action="store_true", help="train the two models one after the other"
    )
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=cmd_train)

    serve = nlu.add_parser(
        "rasa-serve", help="serve both trained Rasa models at HOTLINE_RASA_URL / _ROUTING_URL"
    )
    serve.add_argument("--out", help="the folder rasa-train wrote (default: data dir)")
    serve.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for ready")
    serve.set_defaults(func=cmd_serve)
