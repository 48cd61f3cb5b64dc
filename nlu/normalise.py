"""One spelling for the variants citizens type: full-width letters and digits, traditional
characters, compatibility forms.

Messages written outside the team come in traditional characters (Taiwan, Hong Kong and
overseas callers, some input methods) and with full-width Latin letters and digits; the
training data is mostly simplified and half-width. Both sides go through the same function
before features are taken, so an n-gram learnt in one spelling matches the other.
"""

from __future__ import annotations

import threading
import unicodedata

_lock = threading.Lock()
_converter = None


def _t2s():
    global _converter
    with _lock:
        if _converter is None:
            import opencc  # OpenCC's phrase-aware traditional -> simplified dictionaries

            _converter = opencc.OpenCC("t2s")
    return _converter


def normalise(text: str) -> str:
    """NFKC (full-width ＡＢＣ１２３ -> ABC123, ㊣-style forms) then traditional -> simplified."""
    return _t2s().convert(unicodedata.normalize("NFKC", text))
