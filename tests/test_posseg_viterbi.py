"""The array Viterbi (nlu/posseg_viterbi.py) finds jieba.posseg's paths and scores exactly:
on every run of unknown characters jieba meets in the held-out texts, and on random runs of
common, rare and unknown characters. Fast: no database, no model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nlu.features import _jieba
from nlu.posseg_viterbi import Viterbi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tables():
    _jieba()
    import jieba.posseg as posseg

    return posseg.char_state_tab_P, posseg.start_P, posseg.trans_P, posseg.emit_P


def _heldout_runs(tables) -> list[str]:
    """The character runs jieba.posseg hands its Viterbi on the held-out texts."""
    import jieba.posseg as posseg
    from jieba.posseg.viterbi import viterbi as original

    seen: list[str] = []

    def spy(obs, *rest):
        seen.append(obs)
        return original(obs, *rest)

    saved = posseg.viterbi
    posseg.viterbi = spy
    try:
        for name in ("heldout.jsonl", "heldout_emergency.jsonl", "heldout_dialogue_acts.jsonl"):
            for line in (ROOT / "nlu" / "data" / name).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    list(posseg.cut(json.loads(line)["text"]))
    finally:
        posseg.viterbi = saved
    return seen


def test_same_paths_as_jieba_on_the_heldout_runs(tables) -> None:
    from jieba.posseg.viterbi import viterbi as original

    fast = Viterbi(*tables)
    runs = _heldout_runs(tables)
    assert len(runs) > 500
    for obs in runs:
        assert fast(obs, *tables) == original(obs, *tables), obs


def test_same_paths_on_random_runs(tables) -> None:
    from jieba.posseg.viterbi import viterbi as original

    fast = Viterbi(*tables)
    rng = random.Random(14)
    known = sorted(tables[0])
    pool = known[:3000] + rng.sample(known, 500) + list("龘靐齉𠀀ぁアabc123，")
    for _ in range(1500):
        obs = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        assert fast(obs, *tables) == original(obs, *tables), obs


def test_other_tables_go_to_jiebas_function(tables) -> None:
    fast = Viterbi(*tables)
    char_states, start_p, trans_p, emit_p = tables
    other_start = {k: v - 1.0 for k, v in start_p.items()}
    from jieba.posseg.viterbi import viterbi as original

    assert fast("路灯", char_states, other_start, trans_p, emit_p) == original(
        "路灯", char_states, other_start, trans_p, emit_p
    )
