"""Repeat reports: the same problem reported again is linked to its first order, counted and,
past a threshold, escalated, so that a problem reported 121 times (the six-year leaking roof)
is seen as one problem that keeps coming back, not 121 unrelated orders each closed by itself.

An earlier order is the same problem when it was filed within the window and either comes
from the same citizen with similar words, or is at the same place with similar words. Words
are compared without the place (places alone say nothing about the problem). Every repeat
links to the first order of its chain (`repeat_of`), which counts the repeats; from the
threshold on (reports in all, the first included) every open order of the chain is escalated
once (event `escalated`) and the supervision desk gets an SMS.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.core.textsim import Profile
from services.deadlines.timelimits import OrderClocks
from services.storage import jobs, work_orders
from services.storage.work_orders import Actor

SYSTEM = Actor("repeats", "system")


@dataclass(frozen=True)
class RepeatPolicy:
    window_days: int = 180
    # reports of the same problem (the first included) from which the chain is escalated
    threshold: int = 3
    # similarity of the words (services/core/textsim.py), without the place. Retold complaints
    # score 0.25-0.7, different problems below 0.1 (examples in tests/test_repeats.py); the
    # same citizen needs less evidence than a stranger at the same place.
    same_citizen_similarity: float = 0.2
    same_place_similarity: float = 0.3


@dataclass
class RepeatLink:
    root_id: int
    root_number: str
    reports: int
    matched_on: str  # citizen or place
    similarity: float
    escalated: list[str]


_SPACE = re.compile(r"\s+")


def place_key(location: str | None, address: dict[str, Any] | None) -> str | None:
    """What identifies a place: the gazetteer's area and place when known, else the text."""
    if address and address.get("place"):
        return f"{address.get('area') or ''}|{address['place']}"
    if location:
        text = _SPACE.sub("", unicodedata.normalize("NFKC", location)).lower()
        return text if len(text) >= 4 else None
    return None


def _words(content: str, location: str | None) -> Profile:
    return Profile.of(content, remove=location)


async def link(
    conn: asyncpg.Connection,
    order: asyncpg.Record,
    at: datetime,
    policy: RepeatPolicy,
    clocks: OrderClocks,
) -> RepeatLink | None:
    """Link a just-filed order to the earlier report of the same problem, if there is one."""
    key = place_key(order["location"], order["address"])
    await work_orders.set_place_key(conn, order["id"], key)
    candidates = await work_orders.repeat_candidates(
        conn, order["id"], order["citizen_id"], key, at - timedelta(days=policy.window_days)
    )
    if not candidates:
        return None
    mine = _words(order["content"], order["location"])
    best: tuple[float, str, asyncpg.Record] | None = None
    for cand in candidates:
        score = mine.cosine(_words(cand["content"], cand["location"]))
        if cand["citizen_id"] == order["citizen_id"] and score >= policy.same_citizen_similarity:
            basis = "citizen"
        elif key is not None and cand["place_key"] == key and score >= policy.same_place_similarity:
            basis = "place"
        else:
            continue
        if best is None or score > best[0]:
            best = (score, basis, cand)
    if best is None:
        return None
    score, basis, cand = best
    root_id = cand["repeat_of"] or cand["id"]
    root = await work_orders.by_id(conn, root_id)
    repeats = await work_orders.link_repeat(conn, order["id"], root_id)
    reports = repeats + 1
    detail = {"similarity": round(score, 3), "matched_on": basis, "reports": reports}
    await clocks.record(
        conn,
        order["id"],
        "repeat_linked",
        SYSTEM,
        at,
        data={**detail, "repeat_of": root["request_number"]},
    )
    await clocks.record(
        conn,
        root_id,
        "repeat_linked",
        SYSTEM,
        at,
        data={**detail, "repeat": order["request_number"]},
    )
    escalated: list[str] = []
    if reports >= policy.threshold:
        for row in await work_orders.chain_to_escalate(conn, root_id):
            if await work_orders.mark_escalated(conn, row["id"], at):
                await clocks.record(
                    conn,
                    row["id"],
                    "escalated",
                    SYSTEM,
                    at,
                    note=f"同一问题已反映{reports}次",
                    data={
                        "reason": "repeat_reports",
                        "reports": reports,
                        "root": root["request_number"],
                    },
                )
                escalated.append(row["request_number"])
        await jobs.enqueue(
            conn,
            "notify_escalation",
            {"request_number": order["request_number"], "reports": reports},
            at,
            dedupe_key=f"escalation:{order['id']}",
        )
    return RepeatLink(root_id, root["request_number"], reports, basis, score, escalated)
