"""Running Rasa for the project: train the exported projects and serve the two models, with
the Rasa of the Python 3.10 virtualenv that .ci/rasa-setup builds. Used by the `hotline nlu
rasa-*` commands and by the test that runs a real Rasa server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from nlu.rasa_export import INTENT_PROJECT, ROUTING_PROJECT, ExportReport, export, fingerprint

PROJECTS = (INTENT_PROJECT, ROUTING_PROJECT)
MODELS_META = "hotline.json"
SETUP_HINT = "run `bash .ci/rasa-setup` (a Python 3.10 virtualenv with Rasa 3.6)"


class RasaRuntimeError(RuntimeError):
    pass


def rasa_executable(venv: Path) -> Path:
    rasa = venv / "bin" / "rasa"
    if not rasa.is_file() or not os.access(rasa, os.X_OK):
        raise RasaRuntimeError(f"no Rasa in {venv}: {SETUP_HINT}, or set HOTLINE_RASA_VENV")
    return rasa


def rasa_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        # Rasa's training cache would keep a second copy of every model (~1 GB) in the project
        # folder; each training here starts from a fresh export anyway
        RASA_MAX_CACHE_SIZE="0",
        # the hotline's own virtualenv must not leak into Rasa's Python 3.10
        PYTHONNOUSERSITE="1",
    )
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


@dataclass
class TrainedModels:
    directory: Path  # holds projects/, models/ and logs/
    fingerprint: str
    models: dict[str, str]  # project -> model file
    seconds: dict[str, float]
    megabytes: dict[str, float]
    examples: dict[str, int]

    def model(self, project: str) -> Path:
        return Path(self.models[project])


def models_dir(out: Path) -> Path:
    return out / "models"


def read_trained(out: Path) -> TrainedModels | None:
    """The models `train` left in `out`, when all of them are there."""
    try:
        meta = json.loads((models_dir(out) / MODELS_META).read_text(encoding="utf-8"))
        # the folder may have moved since (a copied cache): paths are taken from where it is
        trained = TrainedModels(
            **{
                **meta,
                "directory": out,
                "models": {p: str(models_dir(out) / f"{p}.tar.gz") for p in PROJECTS},
            }
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if all(trained.model(p).is_file() for p in PROJECTS):
        return trained
    return None


def train(
    venv: Path,
    out: Path,
    *,
    parallel: bool = True,
    epochs: dict[str, int] | None = None,
    log=print,
) -> TrainedModels:
    """Export the project data into `out/projects` and train both models into `out/models`.

    TensorFlow keeps about one core busy per training here, so on two cores the two projects
    train side by side.
    """
    rasa = rasa_executable(venv)
    out = out.resolve()
    report: ExportReport = export(out / "projects", epochs=epochs)
    target = models_dir(out)
    target.mkdir(parents=True, exist_ok=True)
    (target / MODELS_META).unlink(missing_ok=True)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    running: dict[str, subprocess.Popen] = {}

    def start(project: str) -> None:
        project_dir = out / "projects" / project
        log(f"training the Rasa {project} model (log: {logs / f'train-{project}.log'})")
        started[project] = time.perf_counter()
        with (logs / f"train-{project}.log").open("wb") as fh:
            running[project] = subprocess.Popen(
                [
                    str(rasa),
                    "train",
                    "nlu",
                    "--config",
                    "config.yml",
                    "--domain",
                    "domain.yml",
                    "--nlu",
                    "data",
                    "--out",
                    str(target),
                    "--fixed-model-name",
                    project,
                ],  # fmt: skip
                cwd=project_dir,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=rasa_environment(),
                start_new_session=True,
            )

    def finish(project: str) -> None:
        process = running.pop(project)
        code = process.wait()
        seconds[project] = round(time.perf_counter() - started[project], 1)
        if code != 0:
            tail = _tail(logs / f"train-{project}.log")
            raise RasaRuntimeError(
                f"rasa train nlu ({project}) failed with exit code {code}: {tail}"
            )
        log(f"trained the Rasa {project} model in {seconds[project]:.0f} s")

    try:
        if parallel:
            for project in PROJECTS:
                start(project)
            while running:
                done = [p for p, process in running.items() if process.poll() is not None]
                for project in done:
                    finish(project)
                if not done:
                    time.sleep(0.5)
        else:
            for project in PROJECTS:
                start(project)
                finish(project)
    finally:
        for process in running.values():
            _stop(process)

    models = {p: str(target / f"{p}.tar.gz") for p in PROJECTS}
    trained = TrainedModels(
        directory=out,
        fingerprint=report.fingerprint,
        models=models,
        seconds=seconds,
        megabytes={p: round(Path(m).stat().st_size / 1e6, 1) for p, m in models.items()},
        examples={
            "intent": report.intent_examples,
            "faq": report.faq_examples,
            "routing": report.routing_examples,
        },
    )
    payload = {**asdict(trained), "directory": str(out)}
    (target / MODELS_META).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return trained


@dataclass
class RasaServer:
    project: str
    url: str
    process: subprocess.Popen
    log_file: Path
    ready_seconds: float | None = None

    def stop(self) -> None:
        _stop(self.process)


def start_server(venv: Path, model: Path, host: str, port: int, log_file: Path) -> RasaServer:
    rasa = rasa_executable(venv)
    if not model.is_file():
        raise RasaRuntimeError(f"no trained Rasa model at {model}: run `hotline nlu rasa-train`")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as fh:
        process = subprocess.Popen(
            [
                str(rasa),
                "run",
                "--enable-api",
                "-i",
                host,
                "-p",
                str(port),
                "-m",
                str(model),
            ],  # fmt: skip
            cwd=log_file.parent,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=rasa_environment(),
            start_new_session=True,
        )
    return RasaServer(model.name.split(".")[0], f"http://{host}:{port}", process, log_file)


def ensure_trained(venv: Path, out: Path, *, log=print) -> TrainedModels:
    """The models in `out` when they were trained on the current data, else train them."""
    trained = read_trained(out)
    if trained is not None and trained.fingerprint == fingerprint():
        return trained
    return train(venv, out, log=log)


def serve_models(
    venv: Path,
    trained: TrainedModels,
    urls: dict[str, str],
    *,
    log_dir: Path,
    timeout: float = 300.0,
) -> list[RasaServer]:
    """Both servers started and ready (`urls`: project -> http://127.0.0.1:port); the caller
    stops them."""
    servers: list[RasaServer] = []
    try:
        for project in PROJECTS:
            host, port = split_url(urls[project])
            servers.append(
                start_server(
                    venv, trained.model(project), host, port, log_dir / f"serve-{project}.log"
                )
            )
        wait_ready(servers, timeout)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def wait_ready(servers: list[RasaServer], timeout: float = 300.0) -> None:
    """Block until every server has its model loaded (GET /status answers 200)."""
    started = time.perf_counter()
    pending = list(servers)
    while pending:
        for server in list(pending):
            if server.process.poll() is not None:
                raise RasaRuntimeError(
                    f"the Rasa {server.project} server exited with code "
                    f"{server.process.returncode}: {_tail(server.log_file)}"
                )
            if _status_ok(server.url):
                server.ready_seconds = round(time.perf_counter() - started, 1)
                pending.remove(server)
        if pending and time.perf_counter() - started > timeout:
            for server in servers:
                server.stop()
            raise RasaRuntimeError(
                f"the Rasa {pending[0].project} server was not ready after {timeout:.0f} s: "
                f"{_tail(pending[0].log_file)}"
            )
        if pending:
            time.sleep(0.5)


def split_url(url: str) -> tuple[str, int]:
    """Host and port of a server URL that a local `rasa run` can listen on."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RasaRuntimeError(f"cannot serve Rasa at {url}: give a plain http://host:port URL")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        # `rasa run --enable-api` lets anyone who reaches it replace the model
        raise RasaRuntimeError(
            f"cannot serve Rasa at {url}: its HTTP API has no authentication here, so it "
            "listens on loopback only (127.0.0.1)"
        )
    return parts.hostname, parts.port or 80


def _status_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/status", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # the process leads its own session (start_new_session), so this ends only what it started
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    # Rasa's progress bars redraw with carriage returns; keep the last state of each line
    kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) + f" (full log: {path})"
