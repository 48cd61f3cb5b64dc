"""How alike two short Chinese texts are: cosine of their character uni- and bigram counts.

Used where the service compares a new order with earlier ones (repeat reports, arbitration
precedents). Chinese needs no segmentation for this: character bigrams carry most of the
words, and the same complaint retold ("楼顶漏水" / "屋顶一直漏水") shares many of them.
Punctuation and spaces are dropped; digits are kept, house numbers matter.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections import Counter
from dataclasses import dataclass


def _clean(text: str) -> str:
    return "".join(
        ch.lower()
        for ch in unicodedata.normalize("NFKC", text)
        if ch.isalnum() and not unicodedata.category(ch).startswith("P")
    )


@dataclass(frozen=True)
class Profile:
    counts: Counter
    norm: float

    @classmethod
    def of(cls, text: str, remove: str | None = None) -> Profile:
        """The n-gram profile of `text`, without the words of `remove` (e.g. its location)."""
        return _profile(text, remove)

    @classmethod
    def build(cls, text: str, remove: str | None) -> Profile:
        if remove:
            text = text.replace(remove, " ")
        clean = _clean(text)
        grams: Counter = Counter(clean)
        # bigrams count double: they carry the words, single characters only back them up
        for a, b in zip(clean, clean[1:], strict=False):
            grams[a + b] += 2
        norm = math.sqrt(sum(v * v for v in grams.values()))
        return cls(grams, norm)

    def cosine(self, other: Profile) -> float:
        if not self.norm or not other.norm:
            return 0.0
        small, large = (
            (self.counts, other.counts)
            if len(self.counts) <= len(other.counts)
            else (other.counts, self.counts)
        )
        dot = sum(v * large.get(k, 0) for k, v in small.items())
        return dot / (self.norm * other.norm)


# Orders are compared with the same earlier orders again and again (a busy place, a citizen
# who writes often); their words never change, so their profiles are kept.
@functools.lru_cache(maxsize=20_000)
def _profile(text: str, remove: str | None) -> Profile:
    return Profile.build(text, remove)


def similarity(a: str, b: str) -> float:
    return Profile.of(a).cosine(Profile.of(b))
