"""Phones and openids never reach a log in clear: the record factory masks every logger's
records, and the places that log a recipient mask it themselves."""

from __future__ import annotations

import logging

from services.core.pii import install_log_masking, mask, mask_recipient
from tests.support.chat import ChatClient

OPENID = "oXyzAb3dEf5gHi7jKl9mNo1pQr2s"


def test_mask_forms():
    assert mask("13912341234") == "139****1234"
    assert mask("+8613912341234") == "+86139****1234"
    assert mask("call 8613912341234 now") == "call 86139****1234 now"
    assert mask("+14155550123") == "+141****0123"
    assert mask(f"from {OPENID}:") == "from oXyz****:"
    # what is not a phone or an openid stays: request numbers, times, ids
    for text in ("20261123-0001", "2026-11-23T10:00:00", "order 12345", "orders"):
        assert mask(text) == text
    assert mask_recipient("13912341234") == "139****1234"
    assert mask_recipient("someone@example") == "som****le"


def test_every_logger_is_masked(caplog):
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("any.module.at.all").info("texted %s and %s", "13912341234", OPENID)
        logging.getLogger().warning("raw 8613812345678")
    text = caplog.text
    assert "13912341234" not in text and OPENID not in text and "8613812345678" not in text
    assert "139****1234" in text and "oXyz****" in text and "86138****5678" in text


async def test_a_served_conversation_logs_no_phone(service, caplog):
    with caplog.at_level(logging.DEBUG):
        client = ChatClient(service.url)
        await client.say("我要投诉，湖滨街道长福路口那家川菜馆油烟直接排到我家窗户")
        await client.say("我的电话是13859907777")
        logging.getLogger("services.conversation").info("handled %s", "13859907777")
    assert "13859907777" not in caplog.text
    assert "138****7777" in caplog.text
