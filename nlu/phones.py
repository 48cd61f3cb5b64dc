"""Phone numbers in a citizen's words, validated and normalised with libphonenumber.

Citizens write and say numbers every which way: inside a sentence, in groups with spaces or
dashes ("139 5951 2345", "0595-8888 1234"), in Chinese digits as they are read aloud
("幺三八五九九零一二三四"), with +86, 86 or 0086 in front, a local landline without its area
code, or the same number twice in a row. libphonenumber (`phonenumbers`) knows which of these
digit strings are real Chinese mobiles and landlines; this module only turns the words into
digits first and handles the two cases its matcher does not: a local number without area
code and a number repeated without a pause.

The canonical form is what the rest of the service stores and compares ("13859901234" for a
mobile, "059588123456" for a landline with its trunk 0, E.164 for a foreign number): one
spelling per person, so a caller, a texter and a web citizen who typed the number are linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import Leniency, PhoneNumber, PhoneNumberMatcher, PhoneNumberType

REGION = "CN"
# The default city's area code (石狮 lies in 泉州, 0595): an 8-digit landline given without
# its area code is a local one.
CITY_AREA_CODE = "0595"

# One character per digit, so positions in the converted text are positions in the original.
_DIGIT_CHARS = "零〇○幺一二两三四五六七八九０１２３４５６７８９"
_DIGIT_VALUES = "000112234567890123456789"
_TO_DIGITS = str.maketrans(_DIGIT_CHARS, _DIGIT_VALUES)
_D = f"[0-9{_DIGIT_CHARS}]"
# A run read out digit by digit: seven or more digits, a space, dash or comma between groups
# (speech recognition puts commas where the caller paused: "一三八，五九九零，一二三四").
_DIGIT_RUN = re.compile(rf"{_D}(?:[ \-，,、]?{_D}){{6,}}")
_PAUSES = str.maketrans("，,、", "   ")
# Numbers that are not phones and whose digits could hold one: request numbers
# (20261123-0042), ID-card numbers (18 digits or 17 and X; 15 for old cards) and any other
# long unbroken run of digits (order and account numbers).
_NOT_PHONE = re.compile(
    r"(?<!\d)(?:20\d{2}[01]\d[0-3]\d-\d{4,6}|[1-9]\d{16}[\dXx]|[1-9]\d{14})(?![\dXx])"
)
# A run long enough to be two numbers said one after the other, maybe in groups.
_LONG_RUN = re.compile(r"(?<![\d+])\d(?:[ \-]?\d){19,25}(?!\d)")
# A local landline: eight digits, maybe split 4-4, alone (not part of a longer number).
_LOCAL = re.compile(r"(?<![\d\-+])(?<!\d )(\d{4})[ \-]?(\d{4})(?![\d\-])(?! \d)")
_DATE = re.compile(r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
# Words that say a bare eight-digit number is a phone number.
_PHONE_WORDS = re.compile(r"电话|手机|座机|号码|联系|拨打|打给|回电|来电|致电|tel|call", re.I)


@dataclass(frozen=True)
class PhoneMatch:
    start: int
    end: int
    phone: str  # canonical form


def to_digits(text: str) -> str:
    """The text with every run of spoken or written digits turned into ASCII digits, same
    length: "电话幺三八五九九零一二三四" → "电话13859901234"."""
    return _DIGIT_RUN.sub(lambda m: _spoken_run(m.group(0)), text)


def _spoken_run(run: str) -> str:
    digits = run.translate(_TO_DIGITS)
    if digits == run:
        return run  # written in digits already: commas there separate numbers, keep them
    return digits.translate(_PAUSES)


def canonical_of(number: PhoneNumber) -> str:
    """The service's form of a parsed number (see the module docstring)."""
    if number.country_code != 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.national_significant_number(number)
    kind = phonenumbers.number_type(number)
    if (
        kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
        and national[0] == "1"
    ):
        return national
    if kind in (PhoneNumberType.TOLL_FREE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN):
        return national  # 400/800 numbers are dialled without a trunk 0
    return "0" + national


def parse(raw: str) -> PhoneNumber | None:
    """One number on its own ("+86 138 5990 1234", "0595-88123456"), if valid."""
    try:
        number = phonenumbers.parse(raw, REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def find(text: str) -> list[PhoneMatch]:
    """Every phone number in the text, in order of appearance."""
    digits = to_digits(text)
    # blank out what must not be read as a phone, keeping positions
    digits = _NOT_PHONE.sub(lambda m: "_" * len(m.group(0)), digits)
    found: list[PhoneMatch] = []
    for m in PhoneNumberMatcher(digits, REGION, leniency=Leniency.VALID):
        found.append(PhoneMatch(m.start, m.end, canonical_of(m.number)))
    taken = _blank(digits, found)
    for m in _LONG_RUN.finditer(digits):
        if all(p.end <= m.start() or p.start >= m.end() for p in found):
            found.extend(_split_repeated(m.group(0), m.start()))
    taken = _blank(taken, found)
    if _PHONE_WORDS.search(text) or _mostly_number(text):
        for m in _LOCAL.finditer(taken):
            local = m.group(1) + m.group(2)
            if _DATE.fullmatch(local):
                continue
            number = parse(CITY_AREA_CODE + local)
            if number is not None and phonenumbers.number_type(number) in (
                PhoneNumberType.FIXED_LINE,
                PhoneNumberType.FIXED_LINE_OR_MOBILE,
            ):
                found.append(PhoneMatch(m.start(), m.end(), canonical_of(number)))
    return sorted(found, key=lambda p: p.start)


def _blank(text: str, matches: list[PhoneMatch]) -> str:
    chars = list(text)
    for match in matches:
        chars[match.start : match.end] = "_" * (match.end - match.start)
    return "".join(chars)


def _split_repeated(run: str, offset: int) -> list[PhoneMatch]:
    """A run of digits that is two or more whole numbers said one after the other
    ("139… 139…"), else nothing: a long run that does not split into valid numbers is some
    other number, never a phone glued to the next digits."""
    places = [i for i, ch in enumerate(run) if ch.isdigit()]  # digit index -> run index
    pieces = _segment("".join(run[i] for i in places))
    if pieces is None or len(pieces) < 2:
        return []
    out, at = [], 0
    for piece in pieces:
        number = parse(piece)
        assert number is not None  # _segment keeps valid pieces only
        start, end = offset + places[at], offset + places[at + len(piece) - 1] + 1
        out.append(PhoneMatch(start, end, canonical_of(number)))
        at += len(piece)
    return out


def _segment(run: str) -> list[str] | None:
    if not run:
        return []
    for size in (11, 12):  # a mobile (11) or a landline with its area code (11 or 12)
        head = run[:size]
        if len(head) == size and head[0] in "01" and parse(head) is not None:
            rest = _segment(run[size:])
            if rest is not None:
                return [head, *rest]
    return None


def _mostly_number(text: str) -> bool:
    """A reply that is little more than a number ("88881234", "是8888 1234的"): asked for a
    phone, that is the answer."""
    return len(re.sub(r"[\d\s\-，。,.!！]", "", text)) <= 4
