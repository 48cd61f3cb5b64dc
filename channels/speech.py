"""What speech recognition writes, made readable for the conversation service: the phone's
SpeechResult and a WeChat voice message's Recognition both spell numbers their own way."""

from __future__ import annotations

import re

_SPOKEN_DIGIT = dict(zip("零〇一幺二两三四五六七八九", "0011223456789", strict=True))
_SPOKEN_NUMBER = re.compile(
    r"[零〇一幺二两三四五六七八九0-9](?:[零〇一幺二两三四五六七八九0-9\s]|横杠|杠|-){6,}"
)


def normalize_speech(text: str) -> str:
    """Numbers as speech recognition may write them ("二零二六一一二三杠零零零一",
    "2026 1123 0001") as the digits the conversation looks for."""

    def digits(match: re.Match[str]) -> str:
        run = match.group(0).replace("横杠", "-").replace("杠", "-")
        return "".join(_SPOKEN_DIGIT.get(c, c) for c in run if not c.isspace())

    return _SPOKEN_NUMBER.sub(digits, text.strip())
