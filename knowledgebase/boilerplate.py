"""A city's reply template: text most answers of a base begin or end with.

Cities' knowledge bases are often written to a template ("您好！…如仍有疑问，可拨打12345热线
咨询。"). That text says nothing about which entry answers a question, yet it is part of every
whole-entry text the retrieval scores (e5 vector, character n-grams, BM25): it pulls every
entry towards every other and towards any question about the hotline. So the whole-entry
text that is scored leaves it out; citizens still get the full answer.

The template is found in the base itself: the longest start (and end) shared by at least half
of the answers of a base of at least MIN_ENTRIES entries. Measured on the demo base exported
as another city's spreadsheet (bench/kb_city.py) with the team's queries: false answers
3.2 % -> 1.1 %, recall@1 0.945 -> 0.948. The demo base itself has no such text and is
unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Below this many entries "half the answers" is too few to call anything a template.
MIN_ENTRIES = 20
MIN_SHARE = 0.5
MIN_CHARS = 2


@dataclass(frozen=True)
class Boilerplate:
    prefix: str = ""
    suffix: str = ""

    def __bool__(self) -> bool:
        return bool(self.prefix or self.suffix)

    def remove_from(self, answer: str) -> str:
        """The answer without the template; never empty (an answer that is all template
        stays as it is)."""
        text = answer
        if self.prefix and text.startswith(self.prefix):
            text = text[len(self.prefix) :]
        if self.suffix and text.endswith(self.suffix):
            text = text[: len(text) - len(self.suffix)]
        return text if text.strip() else answer


def find(answers: Sequence[str]) -> Boilerplate:
    """The template shared by at least half of `answers` (nothing for a small base)."""
    if len(answers) < MIN_ENTRIES:
        return Boilerplate()
    return Boilerplate(
        prefix=_shared(answers, lambda a, k: a[:k]),
        suffix=_shared(answers, lambda a, k: a[len(a) - k :]),
    )


def _shared(answers: Sequence[str], cut: Callable[[str, int], str]) -> str:
    need = MIN_SHARE * len(answers)
    found, k = "", 1
    while True:
        # only answers longer than the cut: something of each must remain
        counts = Counter(cut(a, k) for a in answers if len(a) > k)
        if not counts:
            break
        text, n = counts.most_common(1)[0]
        if n < need:
            break
        found, k = text, k + 1
    return found if len(found) >= MIN_CHARS else ""
