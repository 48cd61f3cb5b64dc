"""Fixtures for the phone, SMS and WeChat channels: the fake provider APIs on loopback, and
the service configured for them as it would be for the real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from wechatpy.crypto import WeChatCrypto

from services.config import Settings
from tests.support.channels import (
    ACCOUNT_SID,
    AGENT_QUEUE,
    AUTH_TOKEN,
    CENTRE_NUMBER,
    PUBLIC_URL,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_APP_SECRET,
    WECHAT_TOKEN,
)
from tests.support.fakes.twilio_api import FakeTwilio
from tests.support.fakes.webhooks import Caller, Follower, Texter, TwilioWebhooks
from tests.support.fakes.wechat_api import FakeWeChat
from tests.support.service import Running, start_service


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = await FakeWeChat(WECHAT_APP_ID, WECHAT_APP_SECRET).start()
    yield fake
    await fake.stop()


@pytest.fixture
def channel_settings(
    settings: Settings, fake_twilio: FakeTwilio, fake_wechat: FakeWeChat
) -> Settings:
    return settings.with_overrides(
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=CENTRE_NUMBER,
        twilio_api_base_url=fake_twilio.url,
        twilio_agent_queue=AGENT_QUEUE,
        wechat_token=WECHAT_TOKEN,
        wechat_aes_key=WECHAT_AES_KEY,
        wechat_app_id=WECHAT_APP_ID,
        wechat_app_secret=WECHAT_APP_SECRET,
        wechat_api_base_url=fake_wechat.url,
        # the account accepts both while it moves to safe mode, so one service sees both
        wechat_mode="compat",
    )


@pytest.fixture
async def hotline(channel_settings: Settings, clock, nlu_engine) -> AsyncIterator[Running]:
    running = await start_service(channel_settings, clock, nlu_engine)
    yield running
    await running.stop()


@pytest.fixture
def twilio_hooks(hotline: Running) -> TwilioWebhooks:
    return TwilioWebhooks(hotline.url, PUBLIC_URL, ACCOUNT_SID, AUTH_TOKEN)


@pytest.fixture
def texter(twilio_hooks: TwilioWebhooks):  # noqa: ANN201
    def make(phone: str) -> Texter:
        return Texter(twilio_hooks, phone, CENTRE_NUMBER)

    return make


@pytest.fixture
def caller(twilio_hooks: TwilioWebhooks):  # noqa: ANN201
    def make(phone: str) -> Caller:
        return Caller(twilio_hooks, phone, CENTRE_NUMBER)

    return make


@pytest.fixture
def follower(hotline: Running, clock):  # noqa: ANN201
    def make(*, safe: bool = False, openid: str | None = None) -> Follower:
        crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID) if safe else None
        return Follower(hotline.url, WECHAT_TOKEN, clock, crypto=crypto, openid=openid)

    return make
