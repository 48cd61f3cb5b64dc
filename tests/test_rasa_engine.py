"""The Rasa engine against real Rasa 3.6 servers: the Python 3.10 virtualenv from
.ci/rasa-setup, both models trained by `hotline nlu rasa-train` (cached under
HOTLINE_TEST_CACHE by the training data's fingerprint), served by `hotline nlu rasa-serve` on
free loopback ports, and asked over HTTP by nlu.rasa_engine.RasaEngine.

The session skips only when Rasa cannot be installed here at all (no Python 3.10, or the
package index unreachable), and says so loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nlu.evaluate import evaluate_engine, read_jsonl
from nlu.gazetteer import Gazetteer
from nlu.rasa_engine import RasaEngine, RasaError
from nlu.rasa_export import (
    INTENT_PROJECT,
    ROUTING_PROJECT,
    clean,
    export,
    fingerprint,
    load_faqs,
)
from nlu.rasa_runtime import read_trained
from nlu.training_data import DATA_DIR, HELDOUT_FILE, TRAINING_DIR, read_file
from nlu.types import REQUEST_TYPES
from tests.support.processes import free_port, stop_process
from tests.support.rasa import RASA_FIGURES
from tests.support.service import CACHE_DIR

ROOT = Path(__file__).resolve().parents[1]
CONVERSATION_HELDOUT = DATA_DIR / "heldout_conversation.jsonl"
# the knowledge base's own held-out questions (never exported: only faq.jsonl is)
KB_QUESTIONS = ROOT / "knowledgebase" / "data" / "eval_queries.jsonl"
SETUP_MISSING = {3: "no Python 3.10 on this machine", 4: "the package index is unreachable"}


def _warn(config: pytest.Config, message: str) -> None:
    """A line on the terminal now, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(f"!!! WARNING: {message}", file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"!!! WARNING: {message}", yellow=True, bold=True)


def _cli(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "nlu", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class RasaSetup:
    venv: Path
    models: Path  # the folder rasa-train wrote
    env: dict[str, str]
    timings: dict[str, float]


@pytest.fixture(scope="session")
def rasa_setup(request: pytest.FixtureRequest) -> RasaSetup:
    """The virtualenv and both trained models: installed and trained once, then cached."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    setup = subprocess.run(
        ["bash", str(ROOT / ".ci" / "rasa-setup")], capture_output=True, text=True, timeout=1800
    )
    timings["setup_s"] = round(time.perf_counter() - started, 1)
    if setup.returncode in SETUP_MISSING:
        reason = (
            f"Rasa tests SKIPPED: {SETUP_MISSING[setup.returncode]} "
            f"(.ci/rasa-setup: {setup.stderr.strip()[-300:]})"
        )
        _warn(request.config, reason)
        pytest.skip(reason)
    assert setup.returncode == 0, f".ci/rasa-setup failed:\n{setup.stderr[-3000:]}"
    venv = Path(setup.stdout.strip().splitlines()[-1])

    models = CACHE_DIR / "rasa" / fingerprint()
    # models of earlier training data are ~230 MB each and never used again
    for old in models.parent.glob("*"):
        if old != models and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    env = dict(os.environ, HOTLINE_RASA_VENV=str(venv), HOTLINE_DATA_DIR=str(models / "data"))
    trained = read_trained(models)
    if trained is None:
        started = time.perf_counter()
        done = _cli("rasa-train", "--out", str(models), "--json", env=env, timeout=3600)
        assert done.returncode == 0, f"rasa-train failed: {done.stderr[-3000:]}"
        timings["train_s"] = round(time.perf_counter() - started, 1)
        trained = read_trained(models)
        assert trained is not None and json.loads(done.stdout)["models"] == trained.models
        timings.update({f"train_{p}_s": s for p, s in trained.seconds.items()})
    timings.update({f"model_{p}_mb": mb for p, mb in trained.megabytes.items()})
    request.config.stash[RASA_FIGURES] = timings
    return RasaSetup(venv, models, env, timings)


@pytest.fixture(scope="session")
def rasa_engine(rasa_setup: RasaSetup) -> Iterator[RasaEngine]:
    """`hotline nlu rasa-serve` on two free loopback ports, and an engine asking it."""
    intent_url = f"http://127.0.0.1:{free_port()}"
    routing_url = f"http://127.0.0.1:{free_port()}"
    env = dict(rasa_setup.env, HOTLINE_RASA_URL=intent_url, HOTLINE_RASA_ROUTING_URL=routing_url)
    log = rasa_setup.models / "serve-test.log"
    started = time.perf_counter()
    with log.open("w") as fh:
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "nlu",
                "rasa-serve",
                "--out",
                str(rasa_setup.models),
            ],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    engine = RasaEngine(intent_url, routing_url)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                engine.check()
                break
            except RasaError:
                assert serve.poll() is None, f"rasa-serve exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"Rasa not ready: {log.read_text()[-3000:]}"
                time.sleep(1)
        rasa_setup.timings["serve_ready_s"] = round(time.perf_counter() - started, 1)
        yield engine
    finally:
        engine.close()
        stop_process(serve, grace=60)  # rasa-serve stops both Rasa servers on SIGTERM


# -- the export ---------------------------------------------------------------------------


def test_export_is_a_rasa_project_without_heldout_text(tmp_path):
    report = export(tmp_path)
    # (heldout_conversation.jsonl shares one-word replies such as 好的 with the training data)
    held = {r.text for r in read_jsonl(HELDOUT_FILE)}
    gazetteer = Gazetteer.load()
    for project in (INTENT_PROJECT, ROUTING_PROJECT):
        directory = tmp_path / project
        config = yaml.safe_load((directory / "config.yml").read_text(encoding="utf-8"))
        names = [step["name"] for step in config["pipeline"]]
        assert names[0] == "JiebaTokenizer" and "DIETClassifier" in names
        assert (directory / config["pipeline"][0]["dictionary_path"] / "userdict.txt").is_file()
        nlu = yaml.safe_load((directory / "data" / "nlu.yml").read_text(encoding="utf-8"))
        texts = [
            line[2:] for entry in nlu["nlu"] for line in entry["examples"].splitlines() if line
        ]
        assert texts and not held.intersection(texts)
        # files in subfolders of the training data (the voices set of issue 14) are exported
        voices = read_file(sorted((TRAINING_DIR / "voices").glob("*.yml"))[0])
        assert {clean(e.text, gazetteer) for e in voices[:3]} <= set(texts)
    intents = yaml.safe_load((tmp_path / INTENT_PROJECT / "domain.yml").read_text("utf-8"))
    # the request types are one retrieval intent, `request/<type>`, as the built-in engine's
    # one request class; a ResponseSelector per retrieval intent names the type or the FAQ
    assert {"request", "greet", "emergency", "faq"} <= set(intents["intents"])
    assert not set(REQUEST_TYPES) & set(intents["intents"])
    config = yaml.safe_load((tmp_path / INTENT_PROJECT / "config.yml").read_text("utf-8"))
    selectors = [
        s["retrieval_intent"] for s in config["pipeline"] if s["name"] == "ResponseSelector"
    ]
    assert sorted(selectors) == ["faq", "request"]
    nlu = yaml.safe_load((tmp_path / INTENT_PROJECT / "data" / "nlu.yml").read_text("utf-8"))
    labels = {entry["intent"] for entry in nlu["nlu"]}
    assert {f"request/{t}" for t in REQUEST_TYPES} <= labels
    assert {f"utter_request/{t}" for t in REQUEST_TYPES} <= set(intents["responses"])
    assert len(intents["responses"]) == len(load_faqs()) + len(REQUEST_TYPES)
    routing = yaml.safe_load((tmp_path / ROUTING_PROJECT / "domain.yml").read_text("utf-8"))
    assert "unit_territorial" in routing["intents"] and "unit_hubin" not in routing["intents"]
    assert report.routing_intents == len(routing["intents"]) == 55


def test_commands_need_the_virtualenv(tmp_path):
    env = dict(
        os.environ, HOTLINE_RASA_VENV=str(tmp_path / "no-venv"), HOTLINE_DATA_DIR=str(tmp_path)
    )
    done = _cli("rasa-train", "--out", str(tmp_path / "out"), env=env, timeout=120)
    assert done.returncode == 2
    assert "rasa-setup" in done.stderr and "Traceback" not in done.stderr
    done = _cli("rasa-serve", "--out", str(tmp_path / "out"), env=env, timeout=120)
    assert done.returncode == 2 and "rasa-train" in done.stderr
    down = f"http://127.0.0.1:{free_port()}"
    env.update(HOTLINE_RASA_URL=down, HOTLINE_RASA_ROUTING_URL=down)
    done = _cli("eval", "--engine", "rasa", "--data", str(HELDOUT_FILE), env=env, timeout=120)
    assert done.returncode == 2 and "rasa-serve" in done.stderr and "Traceback" not in done.stderr


def test_engine_reports_a_server_that_is_down():
    engine = RasaEngine(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    started = time.perf_counter()
    with pytest.raises(RasaError, match="does not answer"):
        engine.parse("楼下饭店油烟太大了")
    assert time.perf_counter() - started < 10
    # what needs no server still has its defined result
    assert engine.parse("   ").problem == "empty"
    engine.close()


def _answers(engine: RasaEngine, intents: dict, routing: dict | None = None) -> None:
    """The two servers' /model/parse answers, as Rasa 3.6 shapes them, for the mapping tests
    (the real servers are asked in the `rasa`-marked tests below)."""
    routing = routing or {"intent_ranking": [{"name": "unit_police", "confidence": 0.9}]}
    engine.intents.parse = lambda _text: intents
    engine.routing.parse = lambda _text: routing


def _request_selector(ranking: dict[str, float]) -> dict:
    return {
        "request": {
            "response": {"intent_response_key": f"request/{max(ranking, key=ranking.get)}"},
            "ranking": [
                {"intent_response_key": f"request/{t}", "confidence": c} for t, c in ranking.items()
            ],
        }
    }


def test_request_intent_and_type_from_the_request_selector():
    engine = RasaEngine(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    # DIET's one request class (request + faq) wins: the intent is the selector's type
    _answers(
        engine,
        {
            "intent_ranking": [
                {"name": "request", "confidence": 0.5},
                {"name": "greet", "confidence": 0.3},
                {"name": "faq", "confidence": 0.2},
            ],
            "response_selector": _request_selector(
                {"report": 0.6, "complain": 0.3, "consult": 0.1}
            ),
        },
    )
    result = engine.parse("小区门口有人占道摆摊")
    assert (result.intent, result.request_type) == ("report", "report")
    assert result.intent_confidence == pytest.approx(0.7)
    assert result.request_type_confidence == pytest.approx(0.6)
    assert [u.code for u in result.units] == ["police"]
    # a conversation intent wins: it is the intent, the request type is still the selector's
    _answers(
        engine,
        {
            "intent_ranking": [
                {"name": "query_progress", "confidence": 0.8},
                {"name": "request", "confidence": 0.2},
            ],
            "response_selector": _request_selector({"complain": 0.9, "report": 0.1}),
        },
    )
    result = engine.parse("我上次反映的事办得怎么样了")
    assert (result.intent, result.request_type) == ("query_progress", "complain")
    assert result.intent_confidence == pytest.approx(0.8)
    # a model exported with the six types as DIET intents (EXPORT_FORMAT 1) is still read
    _answers(
        engine,
        {
            "intent_ranking": [
                {"name": "complain", "confidence": 0.3},
                {"name": "seek_help", "confidence": 0.25},
                {"name": "greet", "confidence": 0.35},
                {"name": "faq", "confidence": 0.1},
            ]
        },
    )
    result = engine.parse("楼上漏水到我家")
    assert result.intent == "complain" and result.intent_confidence == pytest.approx(0.65)
    assert result.request_type_confidence == pytest.approx(0.3 / 0.65)
    engine.close()


# -- against the real servers -------------------------------------------------------------


@pytest.mark.rasa
def test_heldout_accuracy(rasa_engine, rasa_setup):
    report = evaluate_engine(rasa_engine, read_jsonl(HELDOUT_FILE))
    conversation = evaluate_engine(rasa_engine, read_jsonl(CONVERSATION_HELDOUT))
    questions = [
        row
        for row in (
            json.loads(line)
            for line in KB_QUESTIONS.read_text("utf-8").splitlines()
            if line.strip()
        )
        if row.get("faq_id")
    ]
    faq_hits = 0
    for row in questions:
        faq = rasa_engine.parse_full(row["query"]).faq
        faq_hits += faq is not None and faq.id == row["faq_id"]
    rasa_setup.timings.update(
        {
            "unit_top1": report["unit_top1"],
            "unit_top3": report["unit_top3"],
            "request_type_accuracy": report["intent_accuracy"],
            "abstain_rate": report["abstain_rate"],
            "accuracy_when_answered": report["accuracy_when_answered"],
            "conversation_accuracy": conversation["intent_accuracy"],
            "faq_recall_at_1": round(faq_hits / len(questions), 4),
            "p50_ms": report["p50_ms"],
            "p99_ms": report["p99_ms"],
        }
    )
    # 64 units: chance is 1.6% top-1, 4.7% top-3; 332 FAQ answers. Measured with the fixed
    # seed: 91.9%, 96.7%, request types 88.8%, 96.4% when answered, conversation 83.3%,
    # FAQ 55.6%; the floors leave room for changes to the training data. Conversation intents
    # fell to 74.2% when the held-out conversation set lost the 52 lines that had leaked from
    # the training data (issue 14): the old 83.3% was flattered by them. It fell again to 69.2%
    # (2026-12-03, third session) when 117 request-type examples and 40 relabels by DOMAIN.md's
    # definitions grew the request types: the built-in engine answered that with one `request`
    # intent beside a request-type classifier (MODEL_FORMAT 5). The export now does the same
    # the Rasa way (EXPORT_FORMAT 2, issue 14): the retrieval intent `request/<type>`, one DIET
    # intent and a request-type ResponseSelector, DIET with scale_loss. Measured 2026-12-03:
    # unit top-1 / top-3 94.5% / 96.7% (as before), request types 90.6% -> 93.4%, 98.6% right
    # when routed (as before), conversation intents 69.2% -> 84.2% (81.7% in a first training
    # of the same intent model without the FAQ selector: trainings differ by a few points),
    # FAQ 57.1% -> 62.6% (the FAQ selector's settings unchanged). Conversation floor 0.75.
    assert report["unit_top1"] >= 0.85, report
    assert report["unit_top3"] >= 0.93, report
    assert report["intent_accuracy"] >= 0.84, report
    assert report["accuracy_when_answered"] >= 0.93, report
    assert conversation["intent_accuracy"] >= 0.75, conversation
    assert faq_hits / len(questions) >= 0.45, faq_hits


@pytest.mark.rasa
def test_eval_command_with_the_rasa_engine(rasa_engine, rasa_setup):
    env = dict(
        rasa_setup.env,
        HOTLINE_RASA_URL=rasa_engine.intents.url,
        HOTLINE_RASA_ROUTING_URL=rasa_engine.routing.url,
    )
    args = ("eval", "--engine", "rasa", "--data", str(CONVERSATION_HELDOUT), "--json")
    done = _cli(*args, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["engine"] == "rasa" and report["messages"] == 120
    assert report["intent_accuracy"] >= 0.75, report  # 84.2% measured, see test_heldout_accuracy


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("厨房煤气泄漏了，味道特别浓，我老婆已经晕倒了", {"119", "120"}),
        ("对面楼着火了，火很大，好多烟往上冒", {"119"}),
        ("有人拿着刀在超市门口抢劫，现在还在这里", {"110"}),
    ],
)
def test_emergencies(rasa_engine, text, numbers):
    result = rasa_engine.parse(text)
    assert result.engine == "rasa"
    assert result.intent == "emergency" and result.emergency is not None
    assert numbers <= set(result.emergency.numbers)


@pytest.mark.rasa
def test_odd_input_has_defined_results(rasa_engine):
    for text, problem in [("", "empty"), ("😀😡🙏🔥", "no_words"), ("。。。！！", "no_words")]:
        result = rasa_engine.parse(text)
        assert result.problem == problem and result.units == [] and result.emergency is None
    huge = rasa_engine.parse("我家楼下的KTV每天晚上唱到凌晨两三点，吵得孩子没法睡觉。" * 3500)
    assert huge.problem == "too_long" and huge.request_type in {"complain", "report"}
    mixed = rasa_engine.parse("我的iPhone在Didi网约车上丢了, driver不接电话 help")
    assert mixed.problem is None and len(mixed.units) == 3
    # a leading "/" would make Rasa read the message as an intent name
    slash = rasa_engine.parse("/greet 楼下饭店油烟太大了")
    assert slash.intent in {"complain", "report"} and slash.units
    only_place = rasa_engine.parse("湖滨街道")  # nothing left after masking places
    assert only_place.problem is None and only_place.entities.address is not None


@pytest.mark.rasa
def test_routing_territorial_entities_and_faq(rasa_engine):
    local = rasa_engine.parse("永宁镇梅林村村委会门口的村道坑坑洼洼，下雨全是积水，村里没人管")
    assert "yongning" in [u.code for u in local.units]
    assert local.entities.address is not None and local.entities.address.area == "永宁镇"
    fumes = rasa_engine.parse(
        "我家楼下那家饭店厨房油烟直接排到我家窗户，呛得没法开窗，电话13859901234"
    )
    assert fumes.entities.phones == ["13859901234"]
    assert fumes.request_type == "complain"
    assert all(0.0 <= u.probability <= 1.0 for u in fumes.units)
    faq = load_faqs()[0]
    answer = rasa_engine.parse_full(faq["question"])
    assert answer.result.intent == "consult"
    assert answer.faq is not None and answer.faq.id == faq["id"] and answer.faq.answer
