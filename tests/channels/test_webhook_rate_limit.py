"""Signed webhooks are never rate limited (Twilio and WeChat send many from few addresses);
requests that fail the signature check are, per address: 429 with Retry-After."""

from __future__ import annotations

import pytest

from services.config import Settings
from tests.support.service import settings_for


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return settings_for(database_url, tmp_path / "data").with_overrides(
        rate_webhook_refused="3/minute"
    )


async def test_refused_webhooks_are_limited_and_signed_ones_are_not(texter, twilio_hooks):
    sms = texter("+8613859903101")
    # more signed texts than the refusal limit: all answered
    for n in range(5):
        reply = await sms.send(f"你好{n}")
        assert reply.status == 200, reply.text
    for _ in range(3):
        reply = await twilio_hooks.post("/twilio/sms", sms.params("你好"), signature="x")
        assert reply.status == 403 and reply.json()["error"] == "bad_signature"
    refused = await twilio_hooks.post("/twilio/sms", sms.params("你好"), signature="x")
    assert refused.status == 429
    body = refused.json()
    assert body["error"] == "rate_limited" and body["limit"] == "webhook_refused"
    assert body["retry_after"] >= 1
    # verified before anything else: a signed request from the same address still passes
    assert (await sms.send("还在吗")).status == 200
    assert (await twilio_hooks.post("/twilio/sms", sms.params("x"), signature="x")).status == 429
