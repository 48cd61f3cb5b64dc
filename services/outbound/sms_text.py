"""Text for SMS: long texts cut at sentence ends into numbered messages, and what each costs.

A Chinese SMS is UCS-2: 70 characters fit one segment, longer ones travel as 67-character
segments joined by the phone. Very long concatenated messages arrive out of order or
truncated on some handsets, so a long reply goes out as several messages of at most
`max_chars` characters, each cut where a sentence ends and numbered "(1/3)".
"""

from __future__ import annotations

import math
import re

# Where a message may be cut, best first.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
_CLAUSE_END = re.compile(r"(?<=[，,、：:])")
# The GSM 7-bit default alphabet (basic set); anything else makes the message UCS-2.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def segments(text: str) -> int:
    """How many SMS segments the text takes."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        units = len(text) + sum(1 for c in text if c in _GSM7_EXTENDED)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)  # UTF-16 code units
    return 1 if units <= 70 else math.ceil(units / 67)


def _pieces(text: str, limit: int) -> list[str]:
    """The text as pieces of at most `limit` characters, cut at sentence ends where possible,
    else at clause ends, else anywhere."""
    out: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(text) if s):
        if len(sentence) <= limit:
            out.append(sentence)
            continue
        for clause in (c for c in _CLAUSE_END.split(sentence) if c):
            out.extend(clause[i : i + limit] for i in range(0, len(clause), limit))
    return out


def _pack(pieces: list[str], limit: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(piece) > limit:
            parts.append(current)
            current = ""
        current += piece
    if current:
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def split_message(text: str, max_chars: int = 300) -> list[str]:
    """The text as one or more messages of at most `max_chars` characters each, numbered
    "(1/3)" when there are several."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    # leave room for the "(12/12)" prefix
    limit = max_chars - 7
    parts = _pack(_pieces(text, limit), limit)
    return [f"({i}/{len(parts)}){p}" for i, p in enumerate(parts, 1)]
