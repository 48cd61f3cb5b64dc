"""An agent takes over conversations that came in by SMS, WeChat and phone: the bot keeps
quiet, the agent's reply reaches the fake Twilio or WeChat API addressed to that citizen, and a
live call's speech turns and transcript reach the agent's socket (and page) as they arrive."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from channels.wechat import WECHAT
from tests.support.agent import agent_socket, frame, login, open_workspace, watch
from tests.support.browser import chromium_page
from tests.support.channels import PUBLIC_URL


async def _conversation(hotline, channel: str, session_key: str) -> dict[str, Any]:
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, mode FROM conversations WHERE channel = $1 AND session_key = $2",
            channel,
            session_key,
        )
    assert row is not None, (channel, session_key)
    return dict(row)


async def _authors_after(hotline, convo_id: int, message_id: int) -> list[tuple[str, str]]:
    async with hotline.ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT direction, author FROM messages WHERE conversation_id = $1 AND id > $2
               ORDER BY id""",
            convo_id,
            message_id,
        )
    return [(r["direction"], r["author"]) for r in rows]


async def _take_and_watch(http: aiohttp.ClientSession, hotline, convo_id: int):  # noqa: ANN202
    """An agent logged in with the socket open, holding the conversation and watching it."""
    agent = await login(http, hotline.url, "agent")
    ws = await agent_socket(http, agent)
    assert (await agent.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
    await watch(ws, convo_id)
    return agent, ws


def _message(text: str, author: str = "citizen"):  # noqa: ANN202
    """A pushed message with this text (and, for the citizen, the bot's reading of it)."""
    return lambda f: (
        f.get("type") == "message"
        and f["message"]["text"] == text
        and f["message"]["author"] == author
        and (author != "citizen" or f["message"]["nlu"] is not None)
    )


async def test_agent_replies_to_an_sms_conversation_by_sms(hotline, texter, fake_twilio):
    phone = "+8613859903001"
    sms = texter(phone)
    await sms.send("我要转人工")
    convo = await _conversation(hotline, "sms", "13859903001")
    assert convo["mode"] == "waiting_agent"
    async with aiohttp.ClientSession() as http:
        agent, ws = await _take_and_watch(http, hotline, convo["id"])

        said = "湖滨街道长福路的路灯坏了好几天，晚上很黑"
        quiet = await sms.send(said)
        assert quiet.status == 200 and quiet.messages == []  # the bot keeps quiet
        pushed = await frame(ws, _message(said))
        assert pushed["conversation_id"] == convo["id"]
        assert pushed["message"]["nlu"]["units"]

        text = "您好，我是12345坐席小王。长福路路灯的问题已记录，今天转市政中心处理。"
        status, sent = await agent.post(
            f"/api/agent/conversations/{convo['id']}/reply", {"text": text}
        )
        assert status == 200, sent
        assert sent["channel"] == "sms" and sent["delivery"]["status"] == "sent"
        await frame(ws, _message(text, "agent"))
        await ws.close()
    # the reply went through Twilio's REST API to the texter's own number, from the centre's
    assert fake_twilio.bodies_to(phone) == [text]
    assert fake_twilio.messages[-1]["from"] == "+15005550006"
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT purpose, status, conversation_id FROM outbound_messages WHERE body = $1", text
        )
    assert dict(row) == {"purpose": "agent_reply", "status": "sent", "conversation_id": convo["id"]}
    # nothing from the bot after the take-over: the citizen's line and the agent's
    assert await _authors_after(hotline, convo["id"], pushed["message"]["id"] - 1) == [
        ("in", "citizen"),
        ("out", "agent"),
    ]


async def test_agent_replies_to_a_wechat_follower_through_the_api(hotline, follower, fake_wechat):
    fan = follower()
    await fan.send_text("人工")
    convo = await _conversation(hotline, "wechat", fan.openid)
    assert convo["mode"] == "waiting_agent"
    async with aiohttp.ClientSession() as http:
        agent, ws = await _take_and_watch(http, hotline, convo["id"])

        said = "我家小区楼下的垃圾三天没人清运了"
        quiet = await fan.send_text(said)
        # "success": WeChat's "received, nothing to say"; no passive reply from the bot
        assert quiet.status == 200 and quiet.text == "success" and quiet.messages == []
        pushed = await frame(ws, _message(said))

        text = "您好，我是12345坐席。垃圾清运的问题已记录，今天转环卫部门处理，请留意回复。"
        status, sent = await agent.post(
            f"/api/agent/conversations/{convo['id']}/reply", {"text": text}
        )
        assert status == 200, sent
        assert sent["channel"] == "wechat" and sent["delivery"]["status"] == "sent"
        await ws.close()
    await hotline.runner.app[WECHAT].drain()  # anything the bot might still push
    # the customer-service message API, to this follower only, and nothing from the bot
    assert fake_wechat.texts_to(fan.openid) == [text]
    assert [m["touser"] for m in fake_wechat.sent] == [fan.openid]
    assert await _authors_after(hotline, convo["id"], pushed["message"]["id"] - 1) == [
        ("in", "citizen"),
        ("out", "agent"),
    ]


async def test_live_call_turns_and_transcript_reach_the_watching_agent(hotline, caller):
    call = caller("+8613859903003")
    async with aiohttp.ClientSession() as http:
        agent = await login(http, hotline.url, "agent")
        ws = await agent_socket(http, agent)
        await call.dial()
        # an angry caller is put on the agents' queue while the bot still talks to them
        angry = "气死了长福路的路灯坏了一个月都没人管"
        await call.say(angry)
        queued = await frame(ws, lambda f: f["type"] == "queue" and "angry" in f["item"]["flags"])
        convo_id = queued["item"]["conversation_id"]
        assert queued["item"]["channel"] == "voice" and queued["item"]["mode"] == "bot"
        await watch(ws, convo_id)

        # the next speech turn, as the webhook posts it: the caller's words with the bot's
        # reading, then what the bot said back
        turn = await call.say("就在湖滨街道长福路口")
        assert turn.gather is not None  # still the bot's call
        heard = await frame(ws, _message("就在湖滨街道长福路口"))
        assert heard["conversation_id"] == convo_id
        assert "intent_confidence" in heard["message"]["nlu"]
        bot = await frame(ws, lambda f: f["type"] == "message" and f["message"]["author"] == "bot")
        assert bot["message"]["text"] and bot["message"]["id"] > heard["message"]["id"]

        # the agent takes over: the caller's next turn puts them through, transcribed live
        assert (await agent.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
        through = await call.say("喂，有人吗")
        assert through.enqueue and through.gather is None
        assert '<Transcription languageCode="zh-CN" partialResults="false"' in through.text
        assert f'statusCallbackUrl="{PUBLIC_URL}/twilio/voice/transcription"' in through.text
        assert 'track="both_tracks"' in through.text

        assert (await call.transcript("", "", 0, event="transcription-started")).status == 204
        said = "路灯杆上的灯罩也掉下来了，砸到人怎么办"
        assert (await call.transcript("inbound_track", said, 1)).status == 204
        got = await frame(ws, _message(said))
        assert got["conversation_id"] == convo_id and got["message"]["nlu"]["units"]
        answer = "好的，我马上给您登记，转市政中心今天派人去看。"
        assert (await call.transcript("outbound_track", answer, 2)).status == 204
        await frame(ws, _message(answer, "agent"))
        # Twilio retries a callback it got no answer to: stored once
        assert (await call.transcript("inbound_track", said, 1)).status == 204
        assert (await call.transcript("outbound_track", answer, 2)).status == 204
        # refused before anything is stored
        assert (await call.transcript("inbound_track", "x", 3, data="{not json")).status == 400
        assert (await call.transcript("sideways_track", "x", 4)).status == 400
        params = {"CallSid": call.call_sid, "TranscriptionEvent": "transcription-content"}
        forged = await call.hooks.post("/twilio/voice/transcription", params, signature="0" * 28)
        assert forged.status == 403
        await ws.close()
    async with hotline.ctx.pool.acquire() as conn:
        texts = [
            (r["author"], r["text"])
            for r in await conn.fetch(
                """SELECT author, text FROM messages WHERE conversation_id = $1
                   AND id >= $2 ORDER BY id""",
                convo_id,
                got["message"]["id"],
            )
        ]
    assert texts == [("citizen", said), ("agent", answer)]


@pytest.mark.browser
async def test_the_workspace_page_shows_a_call_transcript_as_it_is_said(hotline, caller):
    call = caller("+8613859903004")
    await call.dial()
    await call.press("0")  # to an agent
    convo = await _conversation(hotline, "voice", call.call_sid)
    assert convo["mode"] == "waiting_agent"
    async with chromium_page() as page:
        await open_workspace(page, hotline.url, "agent")
        item = page.locator(f"#queue li[data-id='{convo['id']}']")
        await item.wait_for(timeout=10000)
        await item.click()
        await page.wait_for_selector(f"body[data-watching='{convo['id']}']", timeout=10000)
        await page.click("#take")
        await page.wait_for_selector(f"#queue li[data-id='{convo['id']}'][data-mode='agent']")
        said = "我要反映长福路口的井盖丢了，晚上很危险"
        await call.transcript("inbound_track", said, 1)
        line = page.locator("#history .msg.in", has_text=said)
        await line.wait_for(timeout=10000)
        assert "来电人" in await line.inner_text()
        assert "意图" in await line.locator(".reading").inner_text()
        answer = "好的，我给您登记并转市政中心处理。"
        await call.transcript("outbound_track", answer, 2)
        await page.locator("#history .msg.agent", has_text=answer).wait_for(timeout=10000)
        # the suggestions follow what the caller said on the phone
        await page.wait_for_function(
            "() => document.getElementById('wo-content').value.includes('井盖')", timeout=10000
        )
