"""Which entries often fail: citizens' answers to "did this help?" per entry.

A raw failure share misleads on small numbers (1 of 1 is 100%), so entries are ranked by the
lower bound of the 90% Wilson interval of their failure share: an entry is flagged when even
that cautious estimate is at or above `flag_share`, with at least `min_ratings` ratings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Z = 1.645  # two-sided 90%


def wilson_lower(failures: int, n: int, z: float = Z) -> float:
    if n == 0:
        return 0.0
    p = failures / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def failure_stats(
    rows: Iterable[Any], *, min_ratings: int = 3, flag_share: float = 0.25
) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        rated = r["helpful"] + r["not_helpful"]
        lower = wilson_lower(r["not_helpful"], rated)
        out.append(
            {
                "entry_id": r["entry_id"],
                "question": r["question"],
                "unit": r["unit"],
                "status": r["status"],
                "answers": r["answers"],
                "rated": rated,
                "helpful": r["helpful"],
                "not_helpful": r["not_helpful"],
                "failure_share": round(r["not_helpful"] / rated, 4) if rated else None,
                "failure_lower_bound": round(lower, 4),
                "often_fails": rated >= min_ratings and lower >= flag_share,
                "last_answer": r["last_answer"].isoformat() if r["last_answer"] else None,
            }
        )
    out.sort(
        key=lambda s: (
            -s["often_fails"],
            -s["failure_lower_bound"],
            -s["not_helpful"],
            s["entry_id"],
        )
    )
    return out


# Answers to "did this solve your problem?" beyond a plain yes or no.
_HELPED = {
    "有用",
    "有帮助",
    "解决了",
    "已解决",
    "清楚了",
    "明白了",
    "知道了",
    "懂了",
    "谢谢",
    "好的谢谢",
}
_NOT_HELPED = {
    "没有",
    "没用",
    "没有用",
    "没帮助",
    "没有帮助",
    "没解决",
    "没有解决",
    "不清楚",
    "看不懂",
    "没看懂",
}


def helpful_reply(text: str, short_intent: str | None) -> bool | None:
    """True / False when a reply rates the answer, None when it is something else (a new
    question, say). `short_intent` is the NLU's reading of a short yes/no reply."""
    key = "".join(ch for ch in text if ch.isalnum())
    if key in _NOT_HELPED:
        return False
    if key in _HELPED:
        return True
    if short_intent in ("affirm", "deny"):
        return short_intent == "affirm"
    return None
