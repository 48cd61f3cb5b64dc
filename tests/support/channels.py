"""The phone, SMS and WeChat tests' side of the providers: the Twilio account and the WeChat
official account the service is configured with (the fakes in tests/support/fakes/ play the
providers), and small readers of what the channels answer."""

from __future__ import annotations

import re

ACCOUNT_SID = "AC" + "5a1b" * 8
AUTH_TOKEN = "9f" * 16
CENTRE_NUMBER = "+15005550006"
PUBLIC_URL = "https://12345.shishi.example.gov.cn"
WECHAT_TOKEN = "hotline12345token"
WECHAT_AES_KEY = "MTIzNDVzaGlzaGktaG90bGluZS1hZXMta2V5LTAwMDE"
WECHAT_APP_ID = "wx5c1a2b3c4d5e6f70"
WECHAT_APP_SECRET = "s" * 32
AGENT_QUEUE = "shishi-12345-agents"

_NUMBER = re.compile(r"20\d{6}-\d{4,6}")
_SPOKEN = re.compile(r"2 0(?: \d){6} 杠(?: \d){4,6}")


def spoken_number(number: str) -> str:
    return " ".join("杠" if c == "-" else c for c in number)


def number_in(texts: list[str]) -> str:
    """The request number in replies, written or read out digit by digit."""
    for text in texts:
        match = _NUMBER.search(text)
        if match:
            return match.group(0)
        match = _SPOKEN.search(text)
        if match:
            return match.group(0).replace(" ", "").replace("杠", "-")
    raise AssertionError(f"no request number in {texts}")
