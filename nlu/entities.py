"""Entities in a citizen's message: phone numbers, request numbers, times and the address."""

from __future__ import annotations

import re
import warnings
from functools import cached_property

from nlu import phones as phone_numbers
from nlu.gazetteer import Gazetteer, Hit
from nlu.places import place_spans
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
_HOUSE_NUMBER = re.compile(
    r"\d+(?:号楼|号|栋|幢|座|单元|室|楼|层)(?:\d+(?:号|栋|幢|单元|室|楼|层))*"
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
        hits = self.gazetteer.find(text)
        known = [(h.start, h.end) for h in hits]
        # places cut at words (nlu.places); a house number only extends one
        places = place_spans(text, known)
        spans = known + places + [(m.start(), m.end()) for m in _HOUSE_NUMBER.finditer(text)]
        span = _longest_run(spans)
        if span is None:
            return None
        if not any(span[0] <= s and e <= span[1] for s, e in known + places):
            return None  # a lone house number is no address
        location = text[span[0] : span[1]]
        return self._describe(location, [h for h in hits if span[0] <= h.start < span[1]] or hits)

    def _describe(self, location: str, hits: list[Hit]) -> Address:
        address = Address(text=location)
        # the most specific hit names the place; the area is the town or street the citizen
        # named, else whichever hit knows it ("锦尚镇港边村": 锦尚镇, though the gazetteer has a
        # 港边村 in another town)
        named_areas = [h for h in hits if h.place.level in _AREA_LEVELS and h.place.area]
        if named_areas:
            address.area = named_areas[0].place.area
            address.territorial_unit = named_areas[0].place.unit
        for hit in sorted(hits, key=lambda h: _LEVEL_RANK.get(h.place.level, 9)):
            if address.place is None and hit.place.level not in _AREA_LEVELS:
                address.place = hit.place.name
            if address.area is None and hit.place.area:
                address.area = hit.place.area
                address.territorial_unit = hit.place.unit
        if hits or self.gazetteer.city in location:
            address.city = self.gazetteer.city
        try:
            record = cpca_record(self._cpca, location)
        except Exception:  # cpca is a best-effort enrichment; the location text stands anyway
            record = {}
        address.province = record.get("省") or None
        address.district = record.get("区") or None
        city = record.get("市") or None
        if city and address.district:
            address.city = address.district if address.district == self.gazetteer.city else city
        return address


def cpca_record(cpca, location: str) -> dict:  # noqa: ANN001 - the cpca module
    """cpca.transform([location]).to_dict("records")[0] without the pandas table: transform
    builds a one-row DataFrame around the record its per-address function returns, which
    cost 1.5 ms of CPU per address found (bench/profile_parse.py)."""
    one = getattr(cpca, "_get_one_addr", None)
    if one is None:  # a cpca release without it: the public way
        return cpca.transform([location]).to_dict("records")[0]
    return one(location, False, {})


_AREA_LEVELS = ("subdistrict", "town", "zone")
_LEVEL_RANK = {
    "landmark": 0,
    "community": 1,
    "village": 1,
    "road": 2,
    "zone": 3,
    "subdistrict": 4,
    "town": 4,
}


def _longest_run(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Merge spans that touch or overlap and return the longest merged run."""
    spans.sort()
    runs: list[list[int]] = []
    for start, end in spans:
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    best = max(runs, key=lambda r: r[1] - r[0], default=None)
    return (best[0], best[1]) if best else None
