"""The public figures agree with a hand count on a seeded history; suggestions are adopted
or not over the unit API; the CSV and the performance page (headless Chromium) show them."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from datetime import datetime

import aiohttp

from services.clock import CHINA_TZ
from services.storage.work_orders import Actor
from tests.browser import chromium_page
from tests.desk_support import file_order, login, make_user, suggestion

UNIT = Actor("h-works", "unit")
WORKS = "municipal-works"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


async def seed(svc, clock) -> dict[str, str]:
    """Seven orders in the period (and one before it) with a known history; see the test."""

    async def do(order, kind, when, **kw):
        async with svc.pool.acquire() as conn, conn.transaction():
            await svc.desk.clocks.record(conn, order["id"], kind, UNIT, when, unit=WORKS, **kw)

    mon = at(2026, 11, 23, 10)
    # before the period: never counted
    await file_order(svc, at(2026, 10, 1, 10), content="公园长椅坏了", location="城东公园")
    a, _ = await file_order(svc, mon)
    b, _ = await file_order(svc, mon, content="井盖丢了", location="凤里街道宝岛路")
    c, _ = await file_order(svc, mon, content="河道有人倒垃圾")
    d, _ = await file_order(svc, mon, content="建议在长福路增设公交站", request_type="suggest")
    e, _ = await file_order(svc, mon, content="建议延长图书馆开放时间", request_type="suggest")
    g, _ = await file_order(
        svc, mon, content="不知道归谁管", suggestions=[suggestion(WORKS, 0.3, confident=False)]
    )
    f, _ = await file_order(svc, at(2026, 11, 30, 10))
    async with svc.pool.acquire() as conn:
        # F came in by phone (file_order files web orders); the repeat detector linked it to A
        await conn.execute("UPDATE work_orders SET channel = 'voice' WHERE id = $1", f["id"])
        assert (
            await conn.fetchval("SELECT repeat_of FROM work_orders WHERE id = $1", f["id"])
            == (a["id"])
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
    del c, g  # C is never signed; G waits in the manual dispatch queue
    return {"a": a["request_number"]}


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
    assert set(rows) == {WORKS, ""}
    works = rows[WORKS]
    # by hand: A B C D E F with municipal-works; G never dispatched
    expected = {
        "volume": 6,
        "completed": 4,  # A B D F
        "replied": 4,  # A B D F (contacted or resolved); E only signed, C nothing
        "sign_for_counted": 6,
        "sign_for_on_time": 5,  # all but C
        "contact_counted": 6,
        "contact_on_time": 2,  # A D
        "handling_counted": 6,
        "handling_on_time": 4,  # A B D F
        "revisit_satisfied": 2,  # A F
        "revisit_dissatisfied": 1,  # B
        "revisit_no_answer": 1,  # D
        "suggestions_decided": 2,
        "suggestions_adopted": 1,
        "repeats": 1,  # F
    }
    assert {k: works[k] for k in expected} == expected
    assert works["completion_rate"] == round(4 / 6, 4)
    assert works["satisfaction_rate"] == 0.5  # no answer is not satisfied
    assert works["adoption_rate"] == 0.5
    assert works["contact_on_time_rate"] == round(2 / 6, 4)
    assert (rows[""]["volume"], rows[""]["completed"], rows[""]["label"]) == (1, 0, "待分派")

    _, by_week = await get_json(svc, f"/api/public/figures?by=week&{PERIOD}")
    assert [(r["key"], r["volume"]) for r in by_week["rows"]] == [("2026-W48", 6), ("2026-W49", 1)]
    _, by_matter = await get_json(svc, f"/api/public/figures?by=matter&{PERIOD}")
    assert {r["label"]: r["volume"] for r in by_matter["rows"]} == {"投诉": 5, "建议": 2}
    _, by_channel = await get_json(svc, f"/api/public/figures?by=channel&{PERIOD}")
    assert {r["key"]: r["volume"] for r in by_channel["rows"]} == {"web": 6, "voice": 1}

    _, topics = await get_json(svc, f"/api/public/hot-topics?{PERIOD}")
    first = topics["topics"][0]
    assert (first["week"], first["area"], first["topic"], first["reports"]) == (
        "2026-W48",
        "湖滨街道",
        WORKS,
        6,
    )

    async with aiohttp.ClientSession() as http:
        async with http.get(svc.url + f"/api/public/figures.csv?by=unit&{PERIOD}") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Disposition"].endswith('.csv"')
            text = (await resp.read()).decode("utf-8-sig")
        table = list(csv.DictReader(io.StringIO(text)))
        works_csv = next(r for r in table if r["key"] == WORKS)
        assert (works_csv["volume"], works_csv["satisfaction_rate"]) == ("6", "0.5")
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


async def test_performance_page_renders_the_figures(desk_service, clock, tmp_path):
    svc = desk_service
    await seed(svc, clock)
    clock.current = at(2026, 12, 20, 9)
    async with chromium_page() as page:
        await page.set_viewport_size({"width": 1200, "height": 1400})
        await page.goto(svc.url + "/performance?from=2026-11-23&to=2026-12-06&by=unit")
        await page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        assert await page.locator("#error").text_content() == ""
        row = page.locator(f"#table tr[data-key='{WORKS}'] td")
        cells = await row.all_text_contents()
        assert cells[0] == svc.ctx.units.name(WORKS)
        assert cells[1:3] == ["6", "66.7%"]
        assert cells[8] == "50.0%"  # satisfaction
        card = await page.locator(".card[data-name='受理量'] b").text_content()
        assert card == "7"
        assert await page.locator("svg[data-chart='bars'] rect").count() == 4  # 2 groups x 2
        assert await page.locator("svg[data-chart='trend'] circle").count() == 2
        assert "湖滨街道" in await page.locator("#topics").text_content()
        assert (await page.locator("#csv").get_attribute("href")).startswith(
            "/api/public/figures.csv?by=unit&from=2026-11-23"
        )
        await page.screenshot(path=str(tmp_path / "performance.png"), full_page=True)
        shot = tmp_path / "bars.png"
        await page.locator("svg[data-chart='bars']").screenshot(path=str(shot))
    width, bpp, rows = png_pixels(shot.read_bytes())
    # the completed share is drawn in the page's red (#b71c1c): the bars are really there
    red = sum(
        1
        for line in rows
        for x in range(width)
        if abs(line[x * bpp] - 0xB7) < 12 and line[x * bpp + 1] < 0x40 and line[x * bpp + 2] < 0x40
    )
    assert red > 2000, red
