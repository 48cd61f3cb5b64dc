"""The knowledge-base HTTP API on a real loopback server: editors log in as knowledge
editors; agents see candidates; everyone else is refused."""

from __future__ import annotations

import aiohttp

from services.staff import accounts as auth
from tests.support.chat import ChatClient

PASSWORD = "correct horse battery"


async def login_as(service, conn, username: str, role: str) -> dict[str, str]:
    await auth.create_user(conn, username, PASSWORD, role)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{service.url}/api/auth/login", json={"username": username, "password": PASSWORD}
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


async def call(service, method: str, path: str, headers=None, **kwargs):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{service.url}{path}", headers=headers, **kwargs) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json() if "json" in ctype else await resp.read()
            return resp.status, body


async def test_editor_lifecycle_over_http(service, conn):
    editor = await login_as(service, conn, "editor1", auth.KNOWLEDGE_EDITOR)
    status, created = await call(
        service,
        "POST",
        "/api/kb/entries",
        editor,
        json={
            "question": "石狮市民卡在哪里办理？",
            "alternatives": ["市民卡怎么办", "办市民卡去哪"],
            "answer": "携带身份证到市行政服务中心一楼综合窗口办理，当场制卡。",
            "unit": "admin-service",
        },
    )
    assert status == 201, created
    entry_id = created["id"]
    assert created["status"] == "draft" and created["created_by"] == "editor1"

    citizen = ChatClient(service.url)
    reply = await citizen.say("市民卡在哪办理")
    assert created["answer"] not in reply["replies"]  # a draft never answers

    status, published = await call(
        service, "POST", f"/api/kb/entries/{entry_id}/publish", editor, json={"version": 1}
    )
    assert status == 200 and published["status"] == "published" and published["version"] == 2
    status, stale = await call(
        service,
        "PATCH",
        f"/api/kb/entries/{entry_id}",
        editor,
        json={"answer": "旧的修改内容", "version": 1},
    )
    assert status == 409 and stale["error"] == "version_conflict" and stale["current_version"] == 2
    status, bad = await call(
        service, "PATCH", f"/api/kb/entries/{entry_id}", editor, json={"answer": ""}
    )
    assert status == 400 and bad["error"] == "invalid" and "answer" in bad["reason"]

    status, found = await call(service, "GET", "/api/kb/entries?q=市民卡哪里办", editor)
    assert status == 200 and found["entries"][0]["id"] == entry_id

    status, history = await call(service, "GET", f"/api/kb/entries/{entry_id}/history", editor)
    assert [v["action"] for v in history["versions"]] == ["create", "publish"]
    assert {v["changed_by"] for v in history["versions"]} == {"editor1"}

    status, retired = await call(service, "POST", f"/api/kb/entries/{entry_id}/retire", editor)
    assert status == 200 and retired["status"] == "retired"
    status, again = await call(service, "POST", f"/api/kb/entries/{entry_id}/retire", editor)
    assert status == 409 and again["error"] == "bad_transition"
    status, missing = await call(service, "GET", "/api/kb/entries/no-such-id", editor)
    assert status == 404


async def test_roles_are_enforced(service, conn):
    status, body = await call(service, "GET", "/api/kb/entries")
    assert status == 401 and body["error"] == "unauthorized"
    agent = await login_as(service, conn, "agent1", auth.AGENT)
    status, body = await call(
        service, "POST", "/api/kb/entries", agent, json={"question": "问题？"}
    )
    assert status == 403 and body["error"] == "forbidden"
    status, body = await call(service, "GET", "/api/kb/export", agent)
    assert status == 403
    assert await conn.fetchval("SELECT count(*) FROM kb_entries WHERE id NOT LIKE 'faq-%'") == 0


async def test_agent_sees_candidates_for_a_question_the_base_does_not_answer(service, conn):
    agent = await login_as(service, conn, "agent2", auth.AGENT)
    status, body = await call(service, "GET", "/api/kb/candidates?q=医保卡丢了怎么办&k=3", agent)
    assert status == 200 and body["would_answer"] and body["answer_id"] == "faq-0078"
    question = "我想问问石狮有没有给新生儿家庭发放的尿布补贴"
    status, body = await call(service, "GET", f"/api/kb/candidates?q={question}&k=5", agent)
    assert status == 200 and not body["would_answer"]
    assert len(body["candidates"]) == 5 and body["confidence"] < body["threshold"]
    assert {"id", "question", "score", "features"} <= set(body["candidates"][0])
    status, body = await call(service, "GET", "/api/kb/candidates?q=x&all=1", agent)
    assert status == 403
    status, body = await call(service, "GET", "/api/kb/candidates", agent)
    assert status == 400 and body["error"] == "empty"


async def test_http_import_rejects_bad_rows_and_exports(service, conn):
    editor = await login_as(service, conn, "editor2", auth.KNOWLEDGE_EDITOR)
    bad = (
        "id,question,answer,unit\nh-1,好的问题？,好的答复。,hrss\nh-2,坏的问题？,,hrss\n"
    ).encode()
    before = await conn.fetchval("SELECT count(*) FROM kb_entry_versions")
    form = aiohttp.FormData()
    form.add_field("file", bad, filename="entries.csv", content_type="text/csv")
    status, body = await call(service, "POST", "/api/kb/import", editor, data=form)
    assert status == 422 and body["error"] == "import_rejected"
    assert body["report"]["errors"] == [{"row": 3, "id": "h-2", "reason": "answer: is required"}]
    assert await conn.fetchval("SELECT count(*) FROM kb_entry_versions") == before

    status, body = await call(
        service, "POST", "/api/kb/import?partial=1&format=csv", editor, data=bad
    )
    assert status == 200 and body["committed"] and body["created"] == 1

    status, body = await call(service, "POST", "/api/kb/import?format=csv", editor, data=b"")
    assert status == 400 and body["error"] == "empty"
    status, body = await call(service, "POST", "/api/kb/import", editor, data=b"\x00\x01")
    assert status == 400 and body["error"] == "bad_file"

    status, data = await call(service, "GET", "/api/kb/export?format=csv", editor)
    assert status == 200 and data.decode("utf-8-sig").startswith("id,question,alternatives")
    status, body = await call(service, "GET", "/api/kb/export?format=pdf", editor)
    assert status == 400


async def test_feedback_after_an_automatic_answer_reaches_the_statistics(service, conn):
    editor = await login_as(service, conn, "editor3", auth.KNOWLEDGE_EDITOR)
    for _ in range(3):
        citizen = ChatClient(service.url)
        await citizen.say("医保卡丢了怎么办")
        await citizen.say("没有")
    status, body = await call(service, "GET", "/api/kb/feedback/stats?min_ratings=3", editor)
    assert status == 200
    assert body["often_failing"] == ["faq-0078"]
    stats = body["entries"][0]
    assert stats["answers"] == 3 and stats["not_helpful"] == 3 and stats["often_fails"]
