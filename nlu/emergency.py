"""Life-threatening emergencies are not 12345 matters: tell the caller whom to call at once."""

from __future__ import annotations

import re

from nlu.types import Emergency

# kind, pattern, numbers to call. The pattern only chooses the number; whether a message is
# an emergency at all is the classifier's call together with these cues (see `detect`).
_CUES: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    (
        "gas",
        re.compile(
            r"(煤气|燃气|天然气|液化气|瓦斯).{0,8}(泄漏|泄露|漏气|漏了|味.{0,3}(浓|重|大)|爆炸)"
        ),
        ("119",),
    ),
    ("fire", re.compile(r"着火|起火|失火|火灾|烧起来|火很大|火势|冒浓烟|浓烟|爆炸"), ("119",)),
    ("water", re.compile(r"落水|溺水|掉(进|到)?(河|海|水|池塘|水库)里|被水冲走"), ("110", "119")),
    ("trapped", re.compile(r"被困|困在"), ("119",)),
    ("suicide", re.compile(r"跳楼|轻生|自杀|割腕"), ("110", "120")),
    (
        "crime",
        re.compile(
            r"抢劫|抢包|持刀|拿刀|砍人|杀人|绑架|打人|斗殴|群殴|入室|正在偷|撬门|强奸|劫持|拐(走|卖)"
        ),
        ("110",),
    ),
    (
        "medical",
        re.compile(
            r"晕倒|昏迷|不省人事|没(有)?(了)?呼吸|心脏病|抽搐|大出血|流(了)?很多血|流血|受伤|摔伤|撞伤|中毒|喘不上气|口吐白沫|车祸"
        ),
        ("120",),
    ),
]

EMERGENCY_LABELS = {"110": "110（公安报警）", "119": "119（消防救援）", "120": "120（医疗急救）"}


def cues(text: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(kind, numbers) for kind, pattern, numbers in _CUES if pattern.search(text)]


def detect(text: str, emergency_probability: float, is_top_intent: bool) -> Emergency | None:
    """An emergency when the classifier says so, or when it half-thinks so and a cue agrees."""
    found = cues(text)
    if not (is_top_intent or (found and emergency_probability >= 0.15)):
        return None
    if not found:
        return Emergency(kind="unknown", numbers=("110", "119", "120"))
    numbers: list[str] = []
    for _, nums in found:
        numbers.extend(n for n in nums if n not in numbers)
    return Emergency(kind=found[0][0], numbers=tuple(sorted(numbers)))
