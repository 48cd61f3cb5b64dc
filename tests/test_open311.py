"""Open311 GeoReport v2 end to end: the service on a loopback port, real PostgreSQL, read with
a third-party client (`georeport` from PyPI) and checked against the specification's own
example documents (tests/data/open311/).

`georeport` 0.3.1 talks to any base URL and reads services, service definitions and requests
in JSON and XML; it cannot file a request (its README says so) and has no token or discovery
call, so those go over plain HTTP, form-encoded as the spec says. The older Python clients on
PyPI (`open311` 1.1, `three` 0.8) are Python 2 only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import xmltodict
from georeport import GeoReport

from channels import open311_keys
from channels.open311_services import OTHER, service_code
from services.core.unit_directory import load_units
from services.storage import revisits as revisit_store
from tests.support.chat import COMPLAINT, ChatClient, file_complaint
from tests.support.desk import login, make_user
from tests.support.serve_process import serve_env, serving
from tests.support.service import start_service

SPEC = Path(__file__).parent / "data" / "open311"
STREETLIGHT = service_code("路灯不亮")  # municipal-works
PARKING = service_code("违章停车")  # traffic-police, asks for the plate number
NEIGHBOURS = service_code("邻里纠纷")  # shared by the subdistricts: the place decides
FOOD = service_code("食品安全")  # a multivaluelist attribute


@pytest.fixture
async def svc(settings, clock, nlu_engine):
    """The service without its background scheduler (no revisit call races the test)."""
    running = await start_service(
        settings.with_overrides(scheduler_enabled=False), clock, nlu_engine
    )
    yield running
    await running.stop()


@pytest.fixture
async def api_key(svc) -> str:
    async with svc.ctx.pool.acquire() as conn:
        return await open311_keys.add(conn, "city-app", svc.ctx.clock.now())


def client(svc, fmt: str = "json") -> GeoReport:
    return GeoReport(f"{svc.url}/open311/v2", output_format=fmt)


async def call(fn, *args, **kwargs):
    """georeport is synchronous (requests): off the event loop the service runs on."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def parse(fmt: str, text: str) -> Any:
    return json.loads(text) if fmt == "json" else xmltodict.parse(text)


async def http(
    svc, method: str, path: str, fmt: str = "json", data: Any = None, params: Any = None
) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, f"{svc.url}/open311/v2/{path}.{fmt}", data=data, params=params
        ) as resp:
            text = await resp.text()
            return resp.status, parse(fmt, text), resp.headers["Content-Type"]


async def post(svc, api_key: str | None, fmt: str = "json", **form: Any) -> tuple[int, Any]:
    data = {k: v for k, v in form.items() if not isinstance(v, list)}
    pairs = [(k, v) for k, vs in form.items() if isinstance(vs, list) for v in vs]
    body = aiohttp.FormData(list(data.items()) + pairs)
    if api_key is not None:
        body.add_field("api_key", api_key)
    status, doc, _ = await http(svc, "POST", "requests", fmt, data=body)
    return status, doc


def xml_items(doc: Any, root: str, item: str) -> list[dict]:
    found = doc[root][item]
    return found if isinstance(found, list) else [found]


def error_of(fmt: str, doc: Any) -> dict:
    return doc[0] if fmt == "json" else xml_items(doc, "errors", "error")[0]


# -- services -------------------------------------------------------------------------------


async def test_services_list_every_category_with_its_default_unit(svc):
    listed = await call(client(svc).get_service_list)
    units = load_units(svc.ctx.settings.units_file)
    categories = {duty for u in units.units for duty in u.duties}
    assert {s["service_name"] for s in listed} == categories | {"其他诉求"}
    assert len(listed) == len(categories) + 1 == 279
    by_code = {s["service_code"]: s for s in listed}
    # codes come from the category's name: stable whatever the directory's order
    assert STREETLIGHT == hashlib.sha256("路灯不亮".encode()).hexdigest()[:8]
    light = by_code[STREETLIGHT]
    assert (
        light["group"] == "市市政公用事业管理中心"
        and "承办单位：市市政公用事业管理中心" in light["description"]
    )
    assert (light["metadata"], light["type"]) == (False, "realtime")
    assert "湖滨街道办事处" in by_code[NEIGHBOURS]["description"]
    assert by_code[OTHER]["service_name"] == "其他诉求"
    assert by_code[PARKING]["metadata"] is True
    # the same list in XML, read by the client's XML path
    as_xml = await call(client(svc, "xml").get_service_list)
    assert [s["service_code"] for s in as_xml] == [s["service_code"] for s in listed]
    assert next(s for s in as_xml if s["service_code"] == PARKING)["metadata"] == "true"


async def test_service_definitions_name_the_attributes_a_category_needs(svc):
    parking = await call(client(svc).get_service_definition, PARKING)
    assert parking["service_code"] == PARKING
    [plate] = parking["attributes"]
    assert (plate["code"], plate["datatype"], plate["required"], plate["order"]) == (
        "plate_number",
        "string",
        True,
        1,
    )
    food = await call(client(svc, "xml").get_service_definition, FOOD)
    problem = xml_items(food, "attributes", "attribute")[1]
    assert problem["datatype"] == "multivaluelist"
    assert {"key": "expired", "name": "过期"} in xml_items(problem, "values", "value")
    light = await call(client(svc).get_service_definition, STREETLIGHT)
    assert light == {"service_code": STREETLIGHT, "attributes": []}


# -- the spec's example documents -----------------------------------------------------------


def spec_json(name: str) -> Any:
    text = (SPEC / f"{name}.json").read_text()
    # the spec prints numbers with leading zeros (001), which JSON does not allow
    return json.loads(re.sub(r'":\s*(0\d+)(?=\s*[,}])', r'":"\1"', text))


def spec_xml(name: str) -> Any:
    return xmltodict.parse((SPEC / f"{name}.xml").read_bytes())


def keys_of(items: list[dict]) -> set[str]:
    return set().union(*(item.keys() for item in items))


async def test_our_documents_have_the_shape_of_the_spec_examples(svc, api_key):
    # services
    status, ours, ctype = await http(svc, "GET", "services", "xml")
    assert status == 200 and ctype == "text/xml; charset=utf-8"
    spec_services = xml_items(spec_xml("services"), "services", "service")
    assert keys_of(xml_items(ours, "services", "service")) == keys_of(spec_services)
    _, ours_json, ctype = await http(svc, "GET", "services")
    assert ctype == "application/json; charset=utf-8" and keys_of(ours_json) == keys_of(
        spec_json("services")
    )
    # a service definition, its attributes and their values
    spec_def = spec_json("service_definition")
    _, ours_def, _ = await http(svc, "GET", f"services/{FOOD}")
    assert ours_def.keys() == spec_def.keys()
    assert keys_of(ours_def["attributes"]) == keys_of(spec_def["attributes"])
    assert keys_of(ours_def["attributes"][1]["values"]) == keys_of(
        spec_def["attributes"][0]["values"]
    )
    _, ours_def_xml, _ = await http(svc, "GET", f"services/{FOOD}", "xml")
    spec_attr = xml_items(
        spec_xml("service_definition")["service_definition"], "attributes", "attribute"
    )
    assert keys_of(
        xml_items(ours_def_xml["service_definition"], "attributes", "attribute")
    ) == keys_of(spec_attr)
    # POST requests: the answer
    status, answer = await post(
        svc,
        api_key,
        "xml",
        service_code=STREETLIGHT,
        address_string="湖滨街道长福路",
        description="路灯不亮",
    )
    assert status == 200, answer
    spec_answer = xml_items(spec_xml("post_request"), "service_requests", "request")
    [mine] = xml_items(answer, "service_requests", "request")
    assert mine.keys() == spec_answer[0].keys()
    assert keys_of(spec_json("post_request")) == mine.keys()
    number = mine["service_request_id"]
    # GET requests and GET requests/{id}, JSON and XML
    spec_request = keys_of(spec_json("requests"))
    assert spec_request == keys_of(xml_items(spec_xml("request"), "service_requests", "request"))
    _, listed, _ = await http(svc, "GET", "requests")
    assert keys_of(listed) == spec_request
    _, one, _ = await http(svc, "GET", f"requests/{number}", "xml")
    assert keys_of(xml_items(one, "service_requests", "request")) == spec_request
    # errors
    status, error, _ = await http(svc, "GET", "requests/20990101-9999", "xml")
    assert status == 404
    spec_error = xml_items(spec_xml("errors"), "errors", "error")
    assert keys_of(xml_items(error, "errors", "error")) == keys_of(spec_error)
    _, error, _ = await http(svc, "GET", "requests/20990101-9999")
    assert keys_of(error) == keys_of(spec_json("errors"))
    # discovery
    _, found, _ = await http(svc, "GET", "discovery")
    spec_discovery = spec_json("discovery")
    assert found.keys() == spec_discovery.keys()
    assert keys_of(found["endpoints"]) == keys_of(spec_discovery["endpoints"])
    assert found["endpoints"][0]["url"] == f"{svc.url}/open311/v2"
    assert found["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    _, found_xml, _ = await http(svc, "GET", "discovery", "xml")
    assert found_xml["discovery"].keys() == spec_xml("discovery")["discovery"].keys()
    assert xml_items(found_xml["discovery"]["endpoints"]["endpoint"], "formats", "format") == [
        "application/json",
        "text/xml",
    ]


async def test_the_client_reads_the_spec_examples_and_ours_alike(svc, api_key, tmp_path):
    """The client's own XML reading of the spec's request example and of ours: same fields."""
    from aiohttp import web

    from tests.support.loopback import serve_on_loopback

    async def spec_request(_request: web.Request) -> web.Response:
        return web.Response(body=(SPEC / "request.xml").read_bytes(), content_type="text/xml")

    app = web.Application()
    app.router.add_get("/v2/requests/{id}.xml", spec_request)
    runner, url = await serve_on_loopback(app)
    try:
        theirs = await call(
            GeoReport(f"{url}/v2", output_format="xml").get_service_request, "638344"
        )
    finally:
        await runner.cleanup()
    _, answer = await post(svc, api_key, service_code=STREETLIGHT, lat="24.7311", long="118.6550")
    ours = await call(client(svc, "xml").get_service_request, answer[0]["service_request_id"])
    assert ours.keys() == theirs.keys()
    assert theirs["status"] == "closed" and ours["status"] == "open"


# -- filing: the same work order as from any channel ------------------------------------------


async def test_a_posted_request_is_dispatched_to_its_unit_and_its_status_follows(svc, api_key):
    ctx = svc.ctx
    status, answer = await post(
        svc,
        api_key,
        service_code=STREETLIGHT,
        address_string="湖滨街道长福路",
        description="长福路口的路灯不亮了，晚上很黑",
        phone="138 5990 1234",
        first_name="小明",
        email="xm@example.org",
    )
    assert status == 200, answer
    [filed] = answer
    number = filed["service_request_id"]
    assert re.fullmatch(r"\d{8}-\d{4}", number)  # the hotline's own request number
    assert "签收" in filed["service_notice"] and "token" not in filed
    async with ctx.pool.acquire() as conn:
        order = await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM work_order_events WHERE work_order_id = $1 ORDER BY id",
                order["id"],
            )
        ]
    assert (order["channel"], order["lead_unit"], order["status"]) == (
        "open311",
        "municipal-works",
        "dispatched",
    )
    assert order["contact_phone"] == "13859901234" and order["location"] == "湖滨街道长福路"
    assert order["request_type"] in ("seek_help", "complain")
    assert order["sign_for_due_at"] is not None  # the time limits run
    assert kinds == ["filed", "dispatched"]

    got = await call(client(svc).get_service_request, number)
    assert (got["status"], got["service_code"], got["service_name"]) == (
        "open",
        STREETLIGHT,
        "路灯不亮",
    )
    assert got["agency_responsible"] == "市市政公用事业管理中心"
    assert got["status_notes"].startswith("已派发至承办单位")
    assert got["description"] == "长福路口的路灯不亮了，晚上很黑"
    assert got["requested_datetime"] == "2026-11-23T10:00:00+08:00"
    assert got["expected_datetime"] is not None

    # the unit signs for it and resolves it in its own API; the request follows
    desk = SimpleNamespace(url=svc.url, pool=ctx.pool)
    await make_user(desk, "mw", "unit_handler", "municipal-works")
    async with aiohttp.ClientSession() as session:
        unit = await login(session, desk, "mw")
        assert (await unit.post(f"/api/unit/orders/{number}/sign"))[0] == 200
        done = await unit.post(
            f"/api/unit/orders/{number}/resolve", {"result": "已更换灯泡，恢复照明"}
        )
        assert done[0] == 200, done
    got = await call(client(svc, "xml").get_service_request, number)
    assert got["status"] == "open"  # resolved, waiting for the citizen's revisit
    assert "已更换灯泡，恢复照明" in got["status_notes"]
    # the revisit (an SMS to the phone given) says satisfied: closed
    async with ctx.pool.acquire() as conn, conn.transaction():
        [revisit] = await revisit_store.of_order(conn, order["id"])
        assert revisit["channel"] == "sms" and revisit["phone"] == "13859901234"
        await ctx.revisits.finish(conn, revisit, "satisfied", None, ctx.clock.now())
    got = await call(client(svc).get_service_request, number)
    assert got["status"] == "closed"
    assert "回访满意" in got["status_notes"] and "已更换灯泡" in got["status_notes"]
    closed = await call(client(svc).get_service_requests, status="closed")
    assert [r["service_request_id"] for r in closed] == [number]


async def test_other_requests_are_routed_by_the_nlu_or_wait_at_the_dispatch_desk(svc, api_key):
    ctx = svc.ctx
    _, [routed] = await post(
        svc, api_key, service_code=OTHER, description=COMPLAINT, address_string="湖滨街道长福路"
    )
    _, [unsure] = await post(
        svc, api_key, service_code=OTHER, description="有个事情想反映一下", address_id="A-1093"
    )
    async with ctx.pool.acquire() as conn:
        rows = {
            r["request_number"]: r
            for r in await conn.fetch("SELECT request_number, lead_unit, status FROM work_orders")
        }
    assert (
        rows[routed["service_request_id"]]["lead_unit"],
        rows[routed["service_request_id"]]["status"],
    ) == ("ecology", "dispatched")
    assert rows[unsure["service_request_id"]]["status"] == "awaiting_dispatch"
    desk = SimpleNamespace(url=svc.url, pool=ctx.pool)
    await make_user(desk, "ag", "agent")
    async with aiohttp.ClientSession() as session:
        agent = await login(session, desk, "ag")
        status, queue = await agent.get("/api/dispatch/queue")
    assert status == 200
    assert [o["request_number"] for o in queue["orders"]] == [unsure["service_request_id"]]
    assert queue["orders"][0]["channel"] == "open311"
    got = await call(client(svc).get_service_request, unsure["service_request_id"])
    assert got["agency_responsible"] is None and got["address"] == "地址编号 A-1093"
    assert got["address_id"] == "A-1093" and "派发" in got["service_notice"]


async def test_a_shared_category_goes_to_the_territorial_unit_of_the_place(svc, api_key):
    _, [filed] = await post(
        svc,
        api_key,
        service_code=NEIGHBOURS,
        description="楼上邻居天天半夜吵架",
        address_string="凤里街道新华路",
    )
    got = await call(client(svc).get_service_request, filed["service_request_id"])
    assert got["agency_responsible"] == "凤里街道办事处"


async def test_attributes_are_checked_and_kept_with_the_order(svc, api_key):
    status, error = await post(svc, api_key, service_code=PARKING, address_string="湖滨街道长福路")
    assert status == 400 and "plate_number" in error[0]["description"]
    status, error = await post(
        svc,
        api_key,
        service_code=PARKING,
        address_string="湖滨街道长福路",
        **{"attribute[colour]": "red"},
    )
    assert status == 400 and "no attribute 'colour'" in error[0]["description"]
    status, error = await post(
        svc,
        api_key,
        service_code=FOOD,
        address_string="湖滨街道",
        **{"attribute[merchant]": "某超市", "attribute[problem][]": ["expired", "rotten"]},
    )
    assert status == 400 and "rotten" in error[0]["description"]
    status, [filed] = await post(
        svc,
        api_key,
        service_code=FOOD,
        address_string="湖滨街道宝岛路",
        description="买到的牛奶有问题",
        **{"attribute[merchant]": "好又多超市", "attribute[problem][]": ["expired", "no_label"]},
    )
    assert status == 200
    async with svc.ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT o.content, o.lead_unit, r.attributes FROM work_orders o
               JOIN open311_requests r ON r.work_order_id = o.id WHERE o.request_number = $1""",
            filed["service_request_id"],
        )
    assert row["attributes"] == {"merchant": "好又多超市", "problem": ["expired", "no_label"]}
    assert (
        row["content"]
        == "买到的牛奶有问题\n商家或单位名称：好又多超市\n问题（可多选）：过期、无标签"
    )
    assert row["lead_unit"] == "market-regulation"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_errors_are_the_spec_error_document(svc, api_key, fmt):
    async def refused(status: int, doc: Any, words: str) -> None:
        error = error_of(fmt, doc)
        assert int(error["code"]) == status and words in error["description"], error

    place = {"address_string": "湖滨街道长福路"}
    status, doc = await post(svc, None, fmt, service_code=STREETLIGHT, **place)
    assert status == 403
    await refused(403, doc, "api_key is missing")
    status, doc = await post(svc, "not-a-key", fmt, service_code=STREETLIGHT, **place)
    await refused(403, doc, "not valid")
    status, doc = await post(svc, api_key, fmt, **place)
    await refused(400, doc, "service_code was not provided")
    status, doc = await post(svc, api_key, fmt, service_code="nope", **place)
    await refused(404, doc, "'nope' was not found")
    status, doc = await post(svc, api_key, fmt, service_code=STREETLIGHT)
    await refused(400, doc, "a location is required")
    status, doc = await post(svc, api_key, fmt, service_code=STREETLIGHT, lat="24.7")
    await refused(400, doc, "lat and long go together")
    status, doc = await post(svc, api_key, fmt, service_code=STREETLIGHT, phone="12", **place)
    await refused(400, doc, "not a phone number")
    # an emergency is not a 12345 matter: nothing is filed, the numbers to dial are said
    status, doc = await post(
        svc, api_key, fmt, service_code=OTHER, description="家里着火了", **place
    )
    await refused(400, doc, "119")
    for path, params, words in (
        ("requests/20990101-9999", None, "was not found"),
        ("tokens/nosuchtoken", None, "was not found"),
        ("services/nope", None, "was not found"),
        ("requests", {"status": "pending"}, "open or closed"),
        (
            "requests",
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            "90 days",
        ),
        ("requests", {"start_date": "yesterday"}, "w3 datetime"),
        ("requests", {"start_date": "2026-01-01T00:00:00"}, "timezone"),
        ("nothing-here", None, "no such resource"),
    ):
        status, doc, ctype = await http(svc, "GET", path, fmt, params=params)
        assert ctype == ("text/xml" if fmt == "xml" else "application/json") + "; charset=utf-8"
        await refused(status, doc, words)
    async with svc.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_requests_filters(svc, api_key, clock):
    _, [light] = await post(svc, api_key, service_code=STREETLIGHT, address_string="湖滨街道长福路")
    clock.advance(hours=2)
    _, [food] = await post(
        svc,
        api_key,
        service_code=FOOD,
        address_string="湖滨街道",
        **{"attribute[merchant]": "某超市"},
    )
    web = await file_complaint(ChatClient(svc.url))  # the web chat's order, not listed
    geo = client(svc)
    listed = await call(geo.get_service_requests)
    assert [r["service_request_id"] for r in listed] == [
        food["service_request_id"],
        light["service_request_id"],
    ]
    only_food = await call(geo.get_service_requests, service_code=FOOD)
    assert [r["service_request_id"] for r in only_food] == [food["service_request_id"]]
    assert await call(geo.get_service_requests, status="closed") == []
    assert len(await call(geo.get_service_requests, status="open,closed")) == 2
    late = await call(
        geo.get_service_requests, start_date="2026-11-23T03:00:00Z", end_date="2026-11-23T05:00:00Z"
    )
    assert [r["service_request_id"] for r in late] == [food["service_request_id"]]
    # service_request_id overrides the rest and finds any channel's order, without its words
    both = await call(
        geo.get_service_requests,
        service_request_id=f"{web['request_number']},{light['service_request_id']}",
        service_code=FOOD,
    )
    assert [r["service_request_id"] for r in both] == [
        web["request_number"],
        light["service_request_id"],
    ]
    assert both[0]["description"] is None and both[0]["address"] is None
    assert both[0]["service_code"] is None and both[0]["agency_responsible"] == "市生态环境局"


async def test_batch_mode_answers_with_a_token(settings, clock, nlu_engine):
    running = await start_service(
        settings.with_overrides(scheduler_enabled=False, open311_type="batch"), clock, nlu_engine
    )
    try:
        async with running.ctx.pool.acquire() as conn:
            key = await open311_keys.add(conn, "batch-app", clock.now())
        services = await call(client(running).get_service_list)
        assert {s["type"] for s in services} == {"batch"}
        _, [answer] = await post(running, key, service_code=STREETLIGHT, address_string="湖滨街道")
        assert "service_request_id" not in answer
        status, doc, _ = await http(running, "GET", f"tokens/{answer['token']}", "xml")
        assert status == 200
        [found] = xml_items(doc, "service_requests", "request")
        assert found["token"] == answer["token"] and re.fullmatch(
            r"\d{8}-\d{4}", found["service_request_id"]
        )
    finally:
        await running.stop()


def hotline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_api_keys_from_the_command_line_against_hotline_serve(database_url, tmp_path):
    env = serve_env(database_url, tmp_path)
    made = hotline(env, "apikeys", "add", "provincial-platform", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    again = hotline(env, "apikeys", "add", "provincial-platform")
    assert again.returncode == 2 and "has an active key already" in again.stderr
    assert "Traceback" not in again.stderr
    with serving(env) as url:
        running = SimpleNamespace(url=url)
        services = await call(GeoReport(f"{url}/open311/v2").get_service_list)
        assert len(services) == 279
        status, [filed] = await post(
            running, key, service_code=STREETLIGHT, address_string="凤里街道新华路"
        )
        assert status == 200, filed
        got = await call(
            GeoReport(f"{url}/open311/v2", output_format="xml").get_service_request,
            filed["service_request_id"],
        )
        assert got["service_code"] == STREETLIGHT
        listed = hotline(env, "apikeys", "list", "--json")
        [row] = json.loads(listed.stdout)["keys"]
        assert (row["name"], row["requests"], row["revoked_at"]) == ("provincial-platform", 1, None)
        assert row["last_used_at"] is not None
        assert key not in listed.stdout  # only its hash is kept
        revoked = hotline(env, "apikeys", "revoke", "provincial-platform")
        assert revoked.returncode == 0, revoked.stderr
        status, doc = await post(
            running, key, service_code=STREETLIGHT, address_string="凤里街道新华路"
        )
        assert status == 403 and "not valid" in doc[0]["description"]
    unknown = hotline(env, "apikeys", "revoke", "nobody")
    assert unknown.returncode == 2 and "no active key" in unknown.stderr
