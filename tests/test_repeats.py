"""Repeat reports: linked to the first report, counted, escalated past the threshold — the
six-year leaking roof is seen as one problem that keeps coming back."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp

from services.core.clock import CHINA_TZ
from services.dispatch.repeats import place_key
from services.storage.work_orders import Actor
from tests.support.desk import event_kinds, file_order, login, make_user, order_row, scheduler_for

START = datetime(2026, 3, 2, 10, tzinfo=CHINA_TZ)
ROOF = {
    "text": "湖滨街道金鸿小区",
    "area": "湖滨街道",
    "place": "金鸿小区",
    "territorial_unit": "hubin",
}
UNIT = Actor("handler", "unit")


def test_place_keys():
    assert place_key("湖滨街道金鸿小区", ROOF) == "湖滨街道|金鸿小区"
    assert place_key(" 长福路 120号 ", None) == "长福路120号"
    assert place_key("路边", None) is None
    assert place_key(None, None) is None


async def test_same_citizen_or_same_place_with_similar_words_is_linked(desk_service):
    svc = desk_service
    first, intake = await file_order(
        svc,
        START,
        content="我家楼顶漏水好几年了，物业一直不修",
        location="湖滨街道金鸿小区",
        address=ROOF,
        session="roof-owner",
    )
    assert intake.repeat is None
    again, intake = await file_order(
        svc,
        START + timedelta(days=3),
        content="楼顶又漏水了，物业还是不管，已经反映很多次",
        location="金鸿小区3号楼",
        address=None,
        session="roof-owner",
    )
    assert intake.repeat is not None
    assert (intake.repeat.root_number, intake.repeat.reports) == (first["request_number"], 2)
    assert intake.repeat.matched_on == "citizen"
    neighbour, intake = await file_order(
        svc,
        START + timedelta(days=5),
        content="金鸿小区楼顶漏水，物业一直不修",
        location="湖滨街道金鸿小区",
        address=ROOF,
        session="neighbour",
    )
    assert intake.repeat is not None and intake.repeat.matched_on == "place"
    assert intake.repeat.reports == 3
    # the same place, another problem; the same citizen, another problem: not repeats
    _, intake = await file_order(
        svc,
        START + timedelta(days=6),
        content="小区门口路灯不亮",
        location="湖滨街道金鸿小区",
        address=ROOF,
        session="neighbour",
    )
    assert intake.repeat is None
    _, intake = await file_order(
        svc,
        START + timedelta(days=7),
        content="想咨询一下公积金怎么提取",
        location=None,
        session="roof-owner",
        request_type="consult",
    )
    assert intake.repeat is None
    root = await order_row(svc, first["request_number"])
    assert root["repeat_count"] == 2
    row = await order_row(svc, again["request_number"])
    assert row["repeat_of"] == first["id"]
    assert await event_kinds(svc, first["id"]) == [
        "filed",
        "dispatched",
        "repeat_linked",
        "repeat_linked",
        "escalated",
    ]


async def test_the_leaking_roof_is_escalated_not_closed_121_times(desk_service, clock):
    svc = desk_service
    await make_user(svc, "sup", "supervisor")
    numbers = []
    when = START
    for i in range(4):
        order, intake = await file_order(
            svc,
            when,
            content=f"金鸿小区3号楼楼顶漏水{'，又漏了' * i}，物业不修",
            location="湖滨街道金鸿小区",
            address=ROOF,
            session="roof-owner",
        )
        numbers.append(order["request_number"])
        if i < 2:
            assert not (intake.repeat and intake.repeat.escalated)
            # each report "handled" and closed by itself, as in the six-year case
            async with svc.pool.acquire() as conn, conn.transaction():
                for kind in ("signed", "contacted", "resolved", "revisit_satisfied"):
                    await svc.desk.clocks.record(conn, order["id"], kind, UNIT, when)
        when += timedelta(days=40)
    # the third report crosses the threshold: the open orders of the chain are escalated
    third = await order_row(svc, numbers[2])
    fourth = await order_row(svc, numbers[3])
    assert third["escalated_at"] is not None and fourth["escalated_at"] is not None
    assert (await order_row(svc, numbers[0]))["repeat_count"] == 3
    assert (await order_row(svc, numbers[0]))["escalated_at"] is None  # closed before: not reopened
    assert (await event_kinds(svc, third["id"])).count("escalated") == 1
    async with svc.pool.acquire() as conn:
        queued = await conn.fetch(
            "SELECT payload FROM scheduler_jobs WHERE kind = 'notify_escalation' ORDER BY id"
        )
    assert [q["payload"]["reports"] for q in queued] == [3, 4]
    # the supervision desk is texted about it
    clock.current = when
    report = await scheduler_for(svc.ctx).run_once()
    assert report.by_kind["notify_escalation"] == 2
    assert [m["purpose"] for m in svc.notifier.sent] == ["escalation", "escalation"]
    assert "第3次反映" in svc.notifier.sent[0]["body"]
    async with aiohttp.ClientSession() as http:
        sup = await login(http, svc, "sup")
        status, body = await sup.get("/api/supervisor/escalations")
        assert status == 200
        listed = {o["request_number"]: o for o in body["orders"]}
        assert set(listed) == {numbers[2], numbers[3]}
        assert listed[numbers[3]]["repeat_of"] == numbers[0]


async def test_reports_outside_the_window_start_afresh(desk_service):
    svc = desk_service
    await file_order(
        svc,
        START,
        content="楼顶漏水物业不修",
        location="湖滨街道金鸿小区",
        address=ROOF,
        session="c",
    )
    window = svc.desk.dispatcher.repeat_policy.window_days
    _, intake = await file_order(
        svc,
        START + timedelta(days=window + 1),
        content="楼顶漏水物业不修",
        location="湖滨街道金鸿小区",
        address=ROOF,
        session="c",
    )
    assert intake.repeat is None
