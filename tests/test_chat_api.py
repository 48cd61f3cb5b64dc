"""The web chat API end to end: real HTTP on loopback, real PostgreSQL."""

from __future__ import annotations

import aiohttp

from tests.support.chat import COMPLAINT, ChatClient, file_complaint
from tests.support.service import start_service


async def test_complaint_is_filed_with_number_and_unit(service, conn):
    client = ChatClient(service.url)
    result = await file_complaint(client)
    number = result["request_number"]
    assert any(number in r for r in result["replies"])
    order = await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)
    assert order["request_type"] == "complain"
    assert order["lead_unit"] == "ecology"
    assert order["status"] == "dispatched"
    assert order["contact_phone"] == "13859901234"
    assert "川菜馆" in order["content"]
    assert "长福路" in order["location"]
    kinds = [
        r["kind"]
        for r in await conn.fetch(
            "SELECT kind FROM work_order_events WHERE work_order_id = $1 ORDER BY id", order["id"]
        )
    ]
    assert kinds == ["filed", "dispatched"]


async def test_missing_location_is_asked_for(service, conn):
    client = ChatClient(service.url)
    first = await client.say("路灯坏了好几天了，晚上黑乎乎的很危险")
    assert any("地点" in r for r in first["replies"])
    second = await client.say("凤里街道新华路中段")
    assert any("电话" in r for r in second["replies"])
    await client.say("0595-88123456")
    done = await client.say("是的")
    order = await conn.fetchrow(
        "SELECT * FROM work_orders WHERE request_number = $1", done["request_number"]
    )
    assert order["location"].startswith("凤里街道新华路")
    assert order["contact_phone"] == "0595-88123456".replace("-", "")


async def test_resend_of_same_client_message_id_is_stored_once(service, conn):
    client = ChatClient(service.url)
    await client.say(COMPLAINT)
    await client.say("13859901234")
    first = await client.say("确认", client_message_id="confirm-1")
    again = await client.say("确认", client_message_id="confirm-1")
    assert again["duplicate"] is True
    assert again["request_number"] == first["request_number"]
    assert again["replies"] == first["replies"]
    assert (
        await conn.fetchval("SELECT count(*) FROM messages WHERE client_message_id = 'confirm-1'")
        == 1
    )
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 1


async def _post_raw(
    url: str, data: bytes, content_type: str = "application/json"
) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/api/chat/messages", data=data, headers={"Content-Type": content_type}
        ) as resp:
            return resp.status, await resp.json()


async def test_bad_messages_get_json_errors_and_store_nothing(service, conn):
    cases = [
        (b'{"session_id": "s1", "client_message_id": "a", "text": ""}', 400, "empty"),
        (b'{"session_id": "s1", "client_message_id": "b", "text": "   \\n "}', 400, "empty"),
        (
            '{"session_id": "s1", "client_message_id": "c", "text": "%s"}' % ("噪" * 2001),
            413,
            "too_long",
        ),
        (b'{"session_id": "s1", "text": "\xff\xfe\xb0\xa1"}', 400, "bad_encoding"),
        ('{"session_id": "s1", "text": "\u6295\u8bc9"'.encode("gbk"), 400, "bad_encoding"),
        (b'{"session_id": "s1", "text": ', 400, "bad_json"),
        (b'["not", "an", "object"]', 400, "bad_json"),
        (b'{"text": "hello"}', 400, "bad_session_id"),
        (b'{"session_id": "s1", "text": 42}', 400, "bad_text"),
        (b'{"session_id": "s1", "text": "a\\u0000b"}', 400, "bad_text"),
    ]
    for body, status, code in cases:
        data = body.encode("utf-8") if isinstance(body, str) else body
        got_status, got = await _post_raw(service.url, data)
        assert (got_status, got["error"]) == (status, code), (body[:60], got)
        assert got["reason"]
    # a body over the HTTP limit is refused before it is read
    got_status, got = await _post_raw(
        service.url, b"x" * (service.ctx.settings.max_body_bytes + 10)
    )
    assert got_status == 413 and got["error"] == "too_large"
    assert await conn.fetchval("SELECT count(*) FROM messages") == 0
    assert await conn.fetchval("SELECT count(*) FROM conversations") == 0
    assert await conn.fetchval("SELECT count(*) FROM citizens") == 0


async def test_unknown_route_is_json_404(service):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{service.url}/api/nothing") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "not_found"


async def test_conversation_continues_after_restart(settings, clock, nlu_engine):
    running = await start_service(settings, clock, nlu_engine)
    client = ChatClient(running.url)
    try:
        first = await client.say(COMPLAINT)
        assert any("电话" in r for r in first["replies"])
    finally:
        await running.stop()
    running = await start_service(settings, clock, nlu_engine)
    client.base_url = running.url
    try:
        second = await client.say("13859901234")
        assert any("请确认" in r for r in second["replies"]), second
        third = await client.say("确认")
        assert third["request_number"]
        assert third["conversation_id"] == first["conversation_id"]
    finally:
        await running.stop()


async def test_progress_query_by_request_number(service):
    filer = ChatClient(service.url)
    number = (await file_complaint(filer))["request_number"]
    other = ChatClient(service.url)
    answer = await other.say(f"你好，我想查一下{number}这个单子办得怎么样了")
    assert any(number in r and "市生态环境局" in r for r in answer["replies"]), answer
    missing = await other.say("查询 20200101-9999")
    assert any("没有查到" in r for r in missing["replies"])


async def test_asking_for_a_person_hands_over(service, conn):
    client = ChatClient(service.url)
    result = await client.say("转人工")
    assert result["mode"] == "waiting_agent"
    row = await conn.fetchrow(
        "SELECT mode, handoff_reason FROM conversations WHERE id = $1", result["conversation_id"]
    )
    assert tuple(row) == ("waiting_agent", "asked_for_agent")
    later = await client.say("还在吗")
    assert later["mode"] == "waiting_agent"


async def test_emergency_is_not_filed(service, conn):
    client = ChatClient(service.url)
    result = await client.say("救命！我们楼下着火了，烟很大，有人被困在三楼")
    assert "119" in result["emergency"]
    assert any("119" in r for r in result["replies"])
    assert result["request_number"] is None
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0
