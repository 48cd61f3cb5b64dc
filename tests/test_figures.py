"""The public figures agree with a hand count on a seeded history; suggestions are adopted
or not over the unit API; the CSV and the performance page (headless Chromium) show them."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from datetime import datetime

import aiohttp

from services.core.clock import CHINA_TZ
from services.storage.work_orders import Actor
from tests.support.browser import chromium_page, require_cjk_font
from tests.support.desk import file_order, login, make_user, suggestion

UNIT = Actor("h-works", "unit")
WORKS = "municipal-works"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


FENGLI = {"text": "凤里街道宝岛路", "area": "凤里街道", "territorial_unit": "fengli"}


async def seed(svc, clock) -> dict[str, str]:
    """Eight orders in the period (and one before it) with a known history; see the test."""

    async def do(order, kind, when, **kw):
        async with svc.pool.acquire() as conn, conn.transaction():
            await svc.desk.clocks.record(conn, order["id"], kind, UNIT, when, unit=WORKS, **kw)

    mon = at(2026, 11, 23, 10)
    # before the period: never counted
    await file_order(svc, at(2026, 10, 1, 10), content="公园长椅坏了", location="城东公园")
    a, _ = await file_order(svc, mon)
    b, _ = await file_order(svc, mon, content="井盖丢了", location="凤里街道宝岛路", address=FENGLI)
    c, _ = await file_order(
        svc, mon, content="河道有人倒垃圾", location="凤里街道宝岛路", address=FENGLI
    )
    d, _ = await file_order(svc, mon, content="建议在长福路增设公交站", request_type="suggest")
    e, _ = await file_order(svc, mon, content="建议延长图书馆开放时间", request_type="suggest")
    g, _ = await file_order(
        svc, mon, content="不知道归谁管", suggestions=[suggestion(WORKS, 0.3, confident=False)]
    )
    h, _ = await file_order(
        svc, mon, content="垃圾桶满了没人清理", suggestions=[suggestion("ecology", 0.3, False)]
    )
    f, _ = await file_order(svc, at(2026, 11, 30, 10))
    async with svc.pool.acquire() as conn:
        # F came in by phone (file_order files web orders); the repeat detector linked it to A
        await conn.execute("UPDATE work_orders SET channel = 'voice' WHERE id = $1", f["id"])
        assert (
            await conn.fetchval("SELECT repeat_of FROM work_orders WHERE id = $1", f["id"])
            == (a["id"])
        )

    # H waited in the manual queue past its dispatch deadline (Tuesday 10:00)
    async with svc.pool.acquire() as conn, conn.transaction():
        await svc.desk.dispatcher.dispatch(
            conn, h["id"], "ecology", [], Actor("agent", "agent"), at(2026, 11, 25, 10)
        )

    await do(a, "signed", at(2026, 11, 23, 11))
    await do(a, "contacted", at(2026, 11, 23, 12), note="已联系")
    await do(a, "resolved", at(2026, 11, 23, 14), note="已修复")
    await do(a, "revisit_satisfied", at(2026, 11, 23, 16))

    await do(b, "signed", at(2026, 11, 23, 11))
    await do(b, "resolved", at(2026, 11, 24, 10), note="已补装井盖")
    await svc.desk.supervision.raise_dissatisfied_light(
        b["id"], comment="井盖还是松的", at=at(2026, 11, 24, 11)
    )

    for order in (d, e):
        await do(order, "signed", at(2026, 11, 23, 11))
    await do(d, "contacted", at(2026, 11, 23, 12), note="已联系")

    await make_user(svc, "h-works", "unit_handler", WORKS)
    await make_user(svc, "h-eco", "unit_handler", "ecology")
    clock.current = at(2026, 11, 25, 9)
    async with aiohttp.ClientSession() as http:
        unit = await login(http, svc, "h-works")
        other = await login(http, svc, "h-eco")
        path = f"/api/unit/orders/{d['request_number']}/suggestion"
        assert (await unit.post(path, {"adopted": "yes", "reason": "x"}))[1]["error"] == (
            "bad_adopted"
        )
        assert (await unit.post(path, {"adopted": True}))[1]["error"] == "missing_reason"
        assert (await other.post(path, {"adopted": True, "reason": "x"}))[0] == 404
        not_suggestion = f"/api/unit/orders/{a['request_number']}/suggestion"
        assert (await unit.post(not_suggestion, {"adopted": True, "reason": "x"}))[0] == 409
        status, body = await unit.post(path, {"adopted": True, "reason": "已纳入公交线网优化"})
        assert (status, body["adopted"]) == (200, True), body
        again = await unit.post(path, {"adopted": False, "reason": "改主意"})
        assert (again[0], again[1]["error"]) == (409, "already_decided")
        status, _ = await unit.post(
            f"/api/unit/orders/{e['request_number']}/suggestion",
            {"adopted": False, "reason": "场馆编制不足，暂不具备条件"},
        )
        assert status == 200
    await do(d, "resolved", at(2026, 11, 25, 10), note="已答复")
    await do(d, "revisit_no_answer", at(2026, 11, 27, 10))

    await do(f, "signed", at(2026, 11, 30, 11))
    await do(f, "resolved", at(2026, 11, 30, 15), note="已修复")
    await do(f, "revisit_satisfied", at(2026, 11, 30, 16))
    del c, g  # C is never signed; G waits in the manual dispatch queue; H is never signed
    return {"a": a["request_number"]}


async def test_a_unit_adopts_a_suggestion_or_not_with_a_reason(desk_service, clock):
    svc = desk_service
    now = at(2026, 11, 23, 10)
    clock.current = now
    kept, _ = await file_order(svc, now, content="建议增设公交站", request_type="suggest")
    declined, _ = await file_order(svc, now, content="建议延长开放时间", request_type="suggest")
    await make_user(svc, "h-works", "unit_handler", WORKS)
    async with aiohttp.ClientSession() as http:
        unit = await login(http, svc, "h-works")
        for order in (kept, declined):
            assert (await unit.post(f"/api/unit/orders/{order['request_number']}/sign"))[0] == 200
        path = f"/api/unit/orders/{kept['request_number']}/suggestion"
        assert (await unit.post(path, {"adopted": True, "reason": "  "}))[1]["error"] == (
            "missing_reason"
        )
        status, body = await unit.post(path, {"adopted": True, "reason": "已纳入公交线网优化"})
        assert (status, body["adopted"]) == (200, True), body
        status, body = await unit.post(
            f"/api/unit/orders/{declined['request_number']}/suggestion",
            {"adopted": False, "reason": "场馆编制不足，暂不具备条件"},
        )
        assert (status, body["adopted"]) == (200, False), body
    async with svc.pool.acquire() as conn:
        decisions = [
            (r["work_order_id"], r["kind"], r["note"], r["unit"], r["data"]["adopted"])
            for r in await conn.fetch(
                """SELECT work_order_id, kind, note, unit, data FROM work_order_events
                   WHERE kind LIKE 'suggestion_%' ORDER BY id"""
            )
        ]
    assert decisions == [
        (kept["id"], "suggestion_adopted", "已纳入公交线网优化", WORKS, True),
        (declined["id"], "suggestion_not_adopted", "场馆编制不足，暂不具备条件", WORKS, False),
    ]


async def get_json(svc, path: str):
    async with aiohttp.ClientSession() as http, http.get(svc.url + path) as resp:
        return resp.status, await resp.json()


PERIOD = "from=2026-11-23&to=2026-12-06"


async def test_figures_agree_with_a_hand_count(desk_service, clock):
    svc = desk_service
    await seed(svc, clock)
    clock.current = at(2026, 12, 20, 9)  # every deadline of the seeded orders has passed

    status, body = await get_json(svc, f"/api/public/figures?by=unit&{PERIOD}")
    assert status == 200, body
    rows = {r["key"]: r for r in body["rows"]}
    assert set(rows) == {WORKS, "ecology", ""}
    # by hand: A B C D E F with municipal-works, H with ecology; G never dispatched
    expected = {
        WORKS: {
            "volume": 6,
            "completed": 4,  # A B D F
            "replied": 4,  # A B D F (contacted or resolved); E only signed, C nothing
            "dispatch_counted": 6,
            "dispatch_on_time": 6,  # all dispatched automatically on arrival
            "sign_for_counted": 6,
            "sign_for_on_time": 5,  # all but C
            "contact_counted": 6,
            "contact_on_time": 2,  # A D
            "handling_counted": 6,
            "handling_on_time": 4,  # A B D F
            "revisit_satisfied": 2,  # A F
            "revisit_dissatisfied": 1,  # B
            "revisit_no_answer": 1,  # D
            "suggestions_decided": 2,  # D adopted, E not
            "suggestions_adopted": 1,
            "repeats": 1,  # F
        },
        "ecology": {
            "volume": 1,
            "completed": 0,
            "replied": 0,
            "dispatch_counted": 1,
            "dispatch_on_time": 0,  # H dispatched Wednesday, due Tuesday 10:00
            "sign_for_counted": 1,  # its deadlines have all passed, nothing done
            "sign_for_on_time": 0,
            "contact_counted": 1,
            "contact_on_time": 0,
            "handling_counted": 1,
            "handling_on_time": 0,
            "revisit_satisfied": 0,
            "revisit_dissatisfied": 0,
            "revisit_no_answer": 0,
            "suggestions_decided": 0,
            "suggestions_adopted": 0,
            "repeats": 0,
        },
    }
    for key, counts in expected.items():
        assert {k: rows[key][k] for k in counts} == counts, key
    works = rows[WORKS]
    assert works["label"] == svc.ctx.units.name(WORKS)
    rates = {k: v for k, v in works.items() if k.endswith("_rate")}
    assert rates == {
        "completion_rate": round(4 / 6, 4),
        "reply_rate": round(4 / 6, 4),
        "dispatch_on_time_rate": 1.0,
        "sign_for_on_time_rate": round(5 / 6, 4),
        "contact_on_time_rate": round(2 / 6, 4),
        "handling_on_time_rate": round(4 / 6, 4),
        "satisfaction_rate": 0.5,  # A F of A B D F: no answer is not satisfied
        "adoption_rate": 0.5,
    }
    assert works["revisits"] == 4
    eco = rows["ecology"]
    assert (eco["dispatch_on_time_rate"], eco["satisfaction_rate"], eco["adoption_rate"]) == (
        0.0,
        None,  # no revisit yet: no rate, not 0 or 100%
        None,
    )
    waiting = rows[""]
    assert (waiting["label"], waiting["volume"], waiting["completed"]) == ("待分派", 1, 0)
    # G is past its dispatch deadline in the queue: counted, late; no unit step counted
    assert (waiting["dispatch_counted"], waiting["dispatch_on_time"]) == (1, 0)
    assert (waiting["sign_for_counted"], waiting["handling_counted"]) == (0, 0)

    async def volumes(by: str, period: str = PERIOD) -> dict[str, int]:
        status, body = await get_json(svc, f"/api/public/figures?by={by}&{period}")
        assert status == 200, body
        return {r["label"]: r["volume"] for r in body["rows"]}

    assert await volumes("day") == {"2026-11-23": 7, "2026-11-30": 1}
    assert await volumes("week") == {"2026-W48": 7, "2026-W49": 1}
    assert await volumes("month") == {"2026-11": 8}
    assert await volumes("matter") == {"投诉": 6, "建议": 2}
    assert await volumes("channel") == {"web": 7, "voice": 1}
    # the October order counts in its own period only; F alone from 30 November
    assert await volumes("month", "from=2026-10-01&to=2026-10-31") == {"2026-10": 1}
    _, late = await get_json(svc, "/api/public/figures?by=unit&from=2026-11-30&to=2026-12-06")
    [f_row] = late["rows"]
    assert (f_row["volume"], f_row["repeats"], f_row["revisit_satisfied"]) == (1, 1, 1)

    _, topics = await get_json(svc, f"/api/public/hot-topics?{PERIOD}")
    assert [(t["week"], t["area"], t["topic"], t["reports"]) for t in topics["topics"]] == [
        ("2026-W48", "湖滨街道", WORKS, 4),  # A D E G
        ("2026-W48", "凤里街道", WORKS, 2),  # B C
        ("2026-W48", "湖滨街道", "ecology", 1),  # H
        ("2026-W49", "湖滨街道", WORKS, 1),  # F
    ]
    assert topics["topics"][2]["label"] == svc.ctx.units.name("ecology")

    async with aiohttp.ClientSession() as http:
        async with http.get(svc.url + f"/api/public/figures.csv?by=unit&{PERIOD}") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Disposition"].endswith('.csv"')
            text = (await resp.read()).decode("utf-8-sig")
        table = list(csv.DictReader(io.StringIO(text)))
        assert [r["key"] for r in table] == ["", "ecology", WORKS]
        works_csv = next(r for r in table if r["key"] == WORKS)
        assert works_csv == {k: "" if works[k] is None else str(works[k]) for k in works_csv}, (
            "the CSV holds the JSON figures"
        )
        assert (works_csv["volume"], works_csv["satisfaction_rate"]) == ("6", "0.5")
        assert table[0]["satisfaction_rate"] == "", "no rate is an empty cell, not 0"
        for bad, error in (
            ("by=colour", "bad_by"),
            ("from=2026-13-01", "bad_from"),
            ("from=2026-12-01&to=2026-11-01", "bad_period"),
        ):
            async with http.get(svc.url + f"/api/public/figures?{bad}") as resp:
                assert resp.status == 400
                assert (await resp.json())["error"] == error


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA/RGB bytes) of an 8-bit non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            left = cur[i - bpp] if i >= bpp else 0
            up = prev[i]
            ul = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                cur[i] = (cur[i] + left) & 255
            elif kind == 2:
                cur[i] = (cur[i] + up) & 255
            elif kind == 3:
                cur[i] = (cur[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                cur[i] = (
                    cur[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)
                ) & 255
        rows.append(bytes(cur))
        prev = cur
    return width, bpp, rows


async def glyphs_shot(page, card: str) -> tuple[dict, tuple[int, int, list[bytes]]]:
    """The box of a summary card's label text (not the whole card) and its screenshot."""
    box = await page.evaluate(
        """(name) => {
            const text = document.querySelector(`.card[data-name='${name}']`).firstChild;
            const range = document.createRange();
            range.selectNodeContents(text);
            const r = range.getBoundingClientRect();
            const size = parseFloat(getComputedStyle(text.parentElement).fontSize);
            return {x: r.x, y: r.y, width: r.width, height: r.height, fontSize: size};
        }""",
        card,
    )
    clip = {k: box[k] for k in ("x", "y", "width", "height")}
    return box, png_pixels(await page.screenshot(clip=clip))


def ink(image: tuple[int, int, list[bytes]]) -> int:
    """Dark pixels (text) in a screenshot."""
    width, bpp, rows = image
    return sum(1 for line in rows for x in range(width) if line[x * bpp] < 0x80)


async def test_performance_page_renders_the_figures(desk_service, clock, tmp_path):
    svc = desk_service
    await seed(svc, clock)
    clock.current = at(2026, 12, 20, 9)
    require_cjk_font()
    async with chromium_page() as page:
        await page.set_viewport_size({"width": 1200, "height": 1400})
        await page.goto(svc.url + "/performance?from=2026-11-23&to=2026-12-06&by=unit")
        await page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        assert await page.locator("#error").text_content() == ""
        head = await page.locator("#table tr").first.locator("th").all_text_contents()
        assert head[4:8] == ["派单及时率", "签收及时率", "联系及时率", "办理及时率"]
        cells = await page.locator(f"#table tr[data-key='{WORKS}'] td").all_text_contents()
        # the hand count of test_figures_agree_with_a_hand_count, as the page shows it
        assert cells == [
            svc.ctx.units.name(WORKS),
            "6",
            "66.7%",  # completed
            "66.7%",  # replied
            "100.0%",  # dispatch on time
            "83.3%",  # signed for on time
            "33.3%",  # contacted on time
            "66.7%",  # resolved on time
            "4",  # revisits
            "50.0%",  # satisfied
            "50.0%",  # suggestions adopted
            "1",  # repeat reports
        ]
        eco = await page.locator("#table tr[data-key='ecology'] td").all_text_contents()
        assert eco[1] == "1" and eco[4] == "0.0%" and eco[9] == "—"
        cards = {
            name: await page.locator(f".card[data-name='{name}'] b").text_content()
            for name in ("受理量", "办结率", "回复率", "回访满意率", "建言采纳率")
        }
        assert cards == {
            "受理量": "8",
            "办结率": "50.0%",  # 4 of 8
            "回复率": "50.0%",
            "回访满意率": "50.0%",
            "建言采纳率": "50.0%",
        }
        assert await page.locator("svg[data-chart='bars'] rect").count() == 6  # 3 groups x 2
        assert await page.locator("svg[data-chart='trend'] circle").count() == 2
        topics = [
            await r.locator("td").all_text_contents()
            for r in await page.locator("#topics tr").all()
        ][1:]
        assert topics[:2] == [
            ["2026-W48", "湖滨街道", svc.ctx.units.name(WORKS), "4"],
            ["2026-W48", "凤里街道", svc.ctx.units.name(WORKS), "2"],
        ]
        assert (await page.locator("#csv").get_attribute("href")).startswith(
            "/api/public/figures.csv?by=unit&from=2026-11-23"
        )
        await page.screenshot(path=str(tmp_path / "performance.png"), full_page=True)
        shot = tmp_path / "bars.png"
        await page.locator("svg[data-chart='bars']").screenshot(path=str(shot))
        labels = {name: await glyphs_shot(page, name) for name in ("受理量", "办结率", "回复率")}
    # Chinese is drawn in a CJK font, not as boxes: an ideograph is 1em wide (a missing-glyph
    # box is about 0.37em), and two different labels of three characters look different
    # (without the font both are the same three boxes)
    for name, (box, _) in labels.items():
        assert abs(box["width"] - 3 * box["fontSize"]) < 1.5, (name, box)
    done, replied = labels["办结率"][1], labels["回复率"][1]
    assert done[0] == replied[0] and done[2] != replied[2], "办结率 and 回复率 render alike"
    assert ink(done) > 60 and ink(replied) > 60
    width, bpp, rows = png_pixels(shot.read_bytes())
    # the completed share is drawn in the page's red (#b71c1c): the bars are really there
    red = sum(
        1
        for line in rows
        for x in range(width)
        if abs(line[x * bpp] - 0xB7) < 12 and line[x * bpp + 1] < 0x40 and line[x * bpp + 2] < 0x40
    )
    assert red > 2000, red
