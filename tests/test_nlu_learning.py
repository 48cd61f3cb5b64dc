"""A centre that learns from its desk: every manual dispatch, lead change and arbitration is
kept as a labelled example; `hotline nlu import-orders` adds a city's history (row errors as
in the KB import); `hotline nlu retrain` learns from all of it and keeps the running model
when the new one is worse on the held-out sets."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime

import aiohttp

from nlu.builtin import BuiltinEngine
from nlu.training_data import load_examples
from services.core.clock import CHINA_TZ
from services.storage.work_orders import Actor
from tests.support.desk import file_order, login, make_user, suggestion
from tests.support.service import EMBEDDING_MODEL_DIR, NLU_MODEL_DIR

NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)
UNIT = Actor("handler", "unit")
SUPERVISOR = Actor("sup", "supervisor")
UNSURE = [suggestion("culture-tourism", 0.3, confident=False)]

# A matter nobody has written about: the "蓝鲸卡" is made up for this test, and the desk sends
# it to the meteorology bureau, a unit no training text links it with.
MADE_UP = [
    "蓝鲸卡激活不了，在哪里办",
    "我的蓝鲸卡丢了要补办",
    "蓝鲸卡里的积分怎么查",
    "请问蓝鲸卡每年要年审吗",
    "蓝鲸卡过期了还能用吗",
    "给老人办蓝鲸卡需要什么材料",
    "蓝鲸卡充值以后余额没变",
    "蓝鲸卡的有效期是多久",
    "想咨询一下蓝鲸卡可以转给家里人用吗",
    "蓝鲸卡刷不了，提示卡片异常",
    "孩子的蓝鲸卡能不能网上申请",
    "蓝鲸卡换了手机号要去哪里改",
]
NEW_PHRASING = "帮我问一下那个蓝鲸卡坏了怎么换新的"


def hotline(database_url: str, tmp_path, model_dir, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        HOTLINE_DATA_DIR=str(tmp_path / "data"),
        HOTLINE_NLU_MODEL_DIR=str(model_dir),
        HOTLINE_EMBEDDING_MODEL_DIR=str(EMBEDDING_MODEL_DIR),
        HOTLINE_EMBEDDINGS="0",  # the n-gram engine: the test trains it twice
    )
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "nlu", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


async def stored(svc) -> list[tuple[str, str | None, str | None, str]]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT text, unit_code, request_type, source FROM nlu_examples ORDER BY id"
        )
    return [(r["text"], r["unit_code"], r["request_type"], r["source"]) for r in rows]


async def test_desk_decisions_are_kept_as_labelled_examples(desk_service):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    # an automatic dispatch is the engine's own guess: not a label
    await file_order(svc, NOW, content="路灯坏了", suggestions=[suggestion("municipal-works")])
    assert await stored(svc) == []

    queued, _ = await file_order(svc, NOW, content="小区门口摆摊卖菜占道", suggestions=UNSURE)
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")
        base = f"/api/dispatch/orders/{queued['request_number']}"
        status, body = await agent.post(base + "/dispatch", {"lead": "urban-management"})
        assert status == 200, body
        status, body = await agent.post(base + "/lead", {"lead": "sanitation", "reason": "环卫"})
        assert status == 200, body

    disputed, _ = await file_order(svc, NOW, content="这段路归谁修", request_type="seek_help")
    async with svc.pool.acquire() as conn, conn.transaction():
        await svc.desk.dispatcher.unit_return(
            conn, disputed["id"], "municipal-works", "不归我们", UNIT, NOW, dispute=True
        )
        await svc.desk.dispatcher.arbitrate(
            conn, disputed["id"], "econ-zone", "开发区道路", SUPERVISOR, NOW
        )
    assert await stored(svc) == [
        ("小区门口摆摊卖菜占道", "urban-management", "complain", "dispatched"),
        ("小区门口摆摊卖菜占道", "sanitation", "complain", "reassigned"),
        ("这段路归谁修", "econ-zone", "seek_help", "arbitrated"),
    ]


async def test_a_unit_is_learnt_from_dispatch_decisions_alone(
    desk_service, settings, tmp_path, nlu_engine
):
    svc = desk_service
    before = nlu_engine.parse(NEW_PHRASING)
    assert before.units[0].code != "meteorology", before.units

    await make_user(svc, "ag", "agent")
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")
        for text in MADE_UP:
            order, intake = await file_order(
                svc, NOW, content=text, suggestions=UNSURE, request_type="consult"
            )
            assert intake.decision.lead is None
            path = f"/api/dispatch/orders/{order['request_number']}/dispatch"
            status, body = await agent.post(path, {"lead": "meteorology"})
            assert status == 200, body
    assert len(await stored(svc)) == len(MADE_UP)

    model_dir = tmp_path / "nlu"  # no running model yet: the new one is taken
    done = hotline(settings.database_url, tmp_path, model_dir, "retrain", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["replaced"] is True and report["stored_examples"] == len(MADE_UP)

    after = BuiltinEngine.load(model_dir).parse(NEW_PHRASING)
    assert after.units[0].code == "meteorology", after.units
    assert after.request_type == "consult"


def _digest(directory) -> str:
    return hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()


async def test_imported_orders_with_row_errors_and_a_worse_model_refused(
    desk_service, settings, tmp_path, nlu_engine
):
    svc = desk_service
    # a history whose units are all wrong: each training text sent to another unit
    examples = [e for e in load_examples() if e.unit][:1500]
    units = sorted({e.unit for e in examples})
    wrong = [units[(units.index(e.unit) + 7) % len(units)] for e in examples]
    csv_path = tmp_path / "history.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["诉求内容", "承办单位", "诉求类型"])
        writer.writerows([e.text, u, e.intent] for e, u in zip(examples, wrong, strict=True))
        writer.writerows(
            [
                ["", "police", "投诉"],
                ["某处路灯坏了", "火星办事处", "求助"],
                ["某处路灯坏了", "police", "抱怨"],
            ]
        )

    done = hotline(settings.database_url, tmp_path, NLU_MODEL_DIR, "import-orders", str(csv_path))
    assert done.returncode == 2
    bad_rows = len(examples) + 2
    assert f"row {bad_rows}: empty text" in done.stderr
    assert f"row {bad_rows + 1}: unknown unit '火星办事处'" in done.stderr
    assert f"row {bad_rows + 2}: unknown request type '抱怨'" in done.stderr
    assert await stored(svc) == []  # all or nothing

    done = hotline(
        settings.database_url,
        tmp_path,
        NLU_MODEL_DIR,
        "import-orders",
        str(csv_path),
        "--partial",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["stored"], len(report["errors"])) == (len(examples), 3)
    rows = await stored(svc)
    assert rows[0] == (examples[0].text, wrong[0], examples[0].intent, "import")

    running = tmp_path / "running-nlu"
    shutil.copytree(NLU_MODEL_DIR, running)
    digest = _digest(running)
    done = hotline(settings.database_url, tmp_path, running, "retrain", "--json")
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["replaced"] is False and "unit_top1" in report["worse"]
    assert report["after"]["unit_top1"] < report["before"]["unit_top1"]
    assert _digest(running) == digest  # the running model is untouched
