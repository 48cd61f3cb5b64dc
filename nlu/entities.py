"""Entities in a citizen's message: phone numbers, request numbers, times and the address."""

from __future__ import annotations

import re
import warnings
from functools import cached_property

from nlu import phones as phone_numbers
from nlu.gazetteer import Gazetteer, Hit
from nlu.types import Address, Entities

# 20261123-0042: eight digits of date, a dash, a daily sequence of four to six digits.
_REQUEST_NUMBER = re.compile(r"(?<!\d)(20\d{2}[01]\d[0-3]\d)-?(\d{4,6})(?!\d)")
_TIME = re.compile(
    r"(?:\d{4}年)?\d{1,2}月\d{1,2}[日号]"
    r"|\d{4}-\d{1,2}-\d{1,2}"
    r"|(?:今天|昨天|前天|明天|后天|今晚|昨晚|上周[一二三四五六日天]?|这周[一二三四五六日天]?|周[一二三四五六日天]|星期[一二三四五六日天])"
    r"|(?:凌晨|早上|上午|中午|下午|傍晚|晚上|半夜|夜里)?\d{1,2}[点:：](?:\d{1,2}分?|半)?"
    r"|(?:凌晨|早上|上午|中午|下午|傍晚|晚上|半夜|夜里)"
)
# Words after which a run of characters names a place.
_PLACE_SUFFIX = (
    "路|街|大道|巷|弄|村|社区|小区|花园|公寓|大厦|广场|市场|公园|中学|小学|幼儿园|医院|酒店|宾馆|"
    "工业区|工业园|园区|商城|服装城|车站|码头|菜市场|新村|山庄|苑|城|湾"
)
_PLACE = re.compile(r"[\u4e00-\u9fa5A-Za-z0-9]{1,8}?(?:" + _PLACE_SUFFIX + r")(?:[东西南北中]?段)?")
_HOUSE_NUMBER = re.compile(
    r"\d+(?:号楼|号|栋|幢|座|单元|室|楼|层)(?:\d+(?:号|栋|幢|单元|室|楼|层))*"
)
# Nor with these words, which speech gives without punctuation: "投诉金鹿花园小区".
_NOT_PLACE_WORDS = (
    "投诉",
    "举报",
    "反映",
    "反应",
    "咨询",
    "请问",
    "问一下",
    "问下",
    "一下",
    "住在",
    "位于",
    "我们",
    "那边",
    "这边",
    "关于",
    "就是",
    "还有",
    "现在",
    "今天",
    "昨天",
    "晚上",
    "白天",
)
# A place name does not start with these: "我家在振狮路" is about 振狮路, not 我家在振狮路.
_NOT_PLACE_START = set(
    "我你他她它在的了是就到从往去这那有个和跟给把被让说想要门口旁边附近对面楼下楼上家里"
)


def find_phones(text: str) -> list[str]:
    """Phone numbers in canonical form, in order (see `nlu.phones`)."""
    return [p.phone for p in phone_numbers.find(text)]


def find_request_numbers(text: str) -> list[str]:
    return [f"{m.group(1)}-{m.group(2)}" for m in _REQUEST_NUMBER.finditer(text)]


def find_times(text: str) -> list[str]:
    return [m.group(0) for m in _TIME.finditer(text) if m.group(0)]


class EntityExtractor:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer

    @cached_property
    def _cpca(self):  # noqa: ANN202 - a module
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import cpca
        return cpca

    def extract(self, text: str) -> Entities:
        # Numbers first, so that digits of a phone or request number are not read as an address.
        masked = _REQUEST_NUMBER.sub(lambda m: "#" * len(m.group(0)), text)
        found = phone_numbers.find(masked)
        for p in found:
            masked = masked[: p.start] + "#" * (p.end - p.start) + masked[p.end :]
        return Entities(
            phones=[p.phone for p in found],
            request_numbers=find_request_numbers(text),
            address=self.address(masked),
            times=find_times(masked),
        )

    def address(self, text: str) -> Address | None:
        spans: list[tuple[int, int]] = []
        hits = self.gazetteer.find(text)
        spans.extend((h.start, h.end) for h in hits)
        # Known names (and the city's) anchor a place: "反映一下凤里街道大仑社区" starts at 凤里.
        anchors = [h.start for h in hits] + [
            m.start() for m in re.finditer(re.escape(self.gazetteer.city), text)
        ]
        for m in _PLACE.finditer(text):
            start = _place_start(text, m.start(), m.end(), anchors)
            if m.end() - start >= 2:
                spans.append((start, m.end()))
        spans.extend((m.start(), m.end()) for m in _HOUSE_NUMBER.finditer(text))
        if not spans:
            return None
        span = _longest_run(spans)
        if span is None:
            return None
        location = text[span[0] : span[1]]
        if not hits and not _PLACE.search(location):
            return None  # a lone house number is no address
        return self._describe(location, [h for h in hits if span[0] <= h.start < span[1]] or hits)

    def _describe(self, location: str, hits: list[Hit]) -> Address:
        address = Address(text=location)
        # the most specific hit names the place, the area comes from whichever hit knows it
        for hit in sorted(hits, key=lambda h: _LEVEL_RANK.get(h.place.level, 9)):
            if address.place is None and hit.place.level not in ("subdistrict", "town", "zone"):
                address.place = hit.place.name
            if address.area is None and hit.place.area:
                address.area = hit.place.area
                address.territorial_unit = hit.place.unit
        if hits or self.gazetteer.city in location:
            address.city = self.gazetteer.city
        try:
            frame = self._cpca.transform([location])
            record = frame.to_dict("records")[0]
        except Exception:  # cpca is a best-effort enrichment; the location text stands anyway
            record = {}
        address.province = record.get("省") or None
        address.district = record.get("区") or None
        city = record.get("市") or None
        if city and address.district:
            address.city = address.district if address.district == self.gazetteer.city else city
        return address


_LEVEL_RANK = {
    "landmark": 0,
    "community": 1,
    "village": 1,
    "road": 2,
    "zone": 3,
    "subdistrict": 4,
    "town": 4,
}


def _place_start(text: str, start: int, end: int, anchors: list[int]) -> int:
    """Where a place name matched in [start, end) really begins: at the first known name
    inside it, else after the words and characters that never begin one."""
    inside = [a for a in anchors if start < a < end]
    if inside:
        return min(inside)
    moved = True
    while moved and start < end:
        moved = False
        for word in _NOT_PLACE_WORDS:
            if text.startswith(word, start):
                start += len(word)
                moved = True
        while start < end and text[start] in _NOT_PLACE_START:
            start += 1
            moved = True
    return start


def _longest_run(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Merge spans that touch or overlap (a gap of one character is allowed) and return the
    longest merged run."""
    spans.sort()
    runs: list[list[int]] = []
    for start, end in spans:
        if runs and start <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    best = max(runs, key=lambda r: r[1] - r[0], default=None)
    return (best[0], best[1]) if best else None
