"""Small readers of what the channels answer."""

from __future__ import annotations

import re

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
