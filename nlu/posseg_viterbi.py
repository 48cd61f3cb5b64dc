"""jieba.posseg's Viterbi over its 256 part-of-speech states, on numpy arrays.

The place finder (nlu/places.py) tags every message with jieba.posseg, which runs this HMM
on each run of characters its dictionary does not know. In pure Python it was the largest
part of the tagging: 0.9 of 1.1 ms of CPU per held-out message (bench/profile_parse.py).
This is the same algorithm with the same arithmetic - each score is (previous + transition)
+ emission in float64, a missing transition is -inf and a missing emission -3.14e100 - and
the same choices: the best previous state by score, ties to the greater state (Python's max
over (score, state) tuples), the last state likewise. So its paths are jieba's, state for
state (tests/test_posseg_viterbi.py compares them on every run of the held-out texts and on
random ones); `install` puts it in jieba.posseg's place once, for the whole process.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

MIN_FLOAT = -3.14e100  # jieba.posseg.viterbi's
_installed = False
_lock = threading.Lock()


class Viterbi:
    """jieba.posseg.viterbi.viterbi(obs, states, start_p, trans_p, emit_p) for the tables it
    was made from; other tables go to jieba's own function."""

    def __init__(self, char_states: dict, start_p: dict, trans_p: dict, emit_p: dict) -> None:
        from jieba.posseg.viterbi import viterbi as original  # the module's, not our own

        self.original = original
        self.tables = (char_states, start_p, trans_p, emit_p)
        self.states = sorted(trans_p)  # Python's order of the state tuples: ties go up
        index = {s: i for i, s in enumerate(self.states)}
        n = len(self.states)
        self.trans = np.full((n, n), -np.inf)
        self.follows = np.zeros((n, n), dtype=bool)  # y is a key of trans_p[x]
        for x, nexts in trans_p.items():
            for y, p in nexts.items():
                self.trans[index[x], index[y]] = p
                self.follows[index[x], index[y]] = True
        self.has_next = np.array([len(trans_p[s]) > 0 for s in self.states])
        self.start = np.array([start_p[s] for s in self.states])
        self.index = index
        self.char_states = char_states
        self.emit_p = emit_p
        self.everything = np.arange(n)

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - one instance per process
    def _emission(self, char: str) -> np.ndarray:
        return np.array([self.emit_p[s].get(char, MIN_FLOAT) for s in self.states])

    @functools.lru_cache(maxsize=8192)  # noqa: B019
    def _possible(self, char: str) -> np.ndarray:
        """The states a character may take (all when the table does not know it), as a mask."""
        mask = np.zeros(len(self.states), dtype=bool)
        known = self.char_states.get(char)
        if known is None:
            mask[:] = True
        else:
            mask[[self.index[s] for s in known]] = True
        return mask

    def __call__(self, obs, states, start_p, trans_p, emit_p):  # noqa: ANN001, ANN204 - jieba's
        given = (states, start_p, trans_p, emit_p)
        if not obs or any(a is not b for a, b in zip(given, self.tables, strict=True)):
            return self.original(obs, states, start_p, trans_p, emit_p)
        keys = np.flatnonzero(self._possible(obs[0]))
        scores = self.start[keys] + self._emission(obs[0])[keys]
        steps: list[tuple[np.ndarray, np.ndarray]] = []  # per step: its states, their previous
        for char in obs[1:]:
            live = self.has_next[keys]
            prev, prev_scores = keys[live], scores[live]
            if prev.size == 0:
                raise ValueError("max() arg is an empty sequence")  # as jieba's would
            expected = self.follows[prev].any(axis=0)
            now = np.flatnonzero(self._possible(char) & expected)
            if now.size == 0:
                now = np.flatnonzero(expected) if expected.any() else self.everything
            table = (prev_scores[:, None] + self.trans[np.ix_(prev, now)]) + self._emission(char)[
                now
            ][None, :]
            # the best previous state per column; of equal scores the last (greatest) one
            best = prev.size - 1 - np.argmax(table[::-1], axis=0)
            scores = table[best, np.arange(now.size)]
            steps.append((now, prev[best]))
            keys = now
        last = keys.size - 1 - int(np.argmax(scores[::-1]))
        prob, state = float(scores[last]), int(keys[last])
        route = [None] * len(obs)
        for i in range(len(obs) - 1, 0, -1):
            route[i] = self.states[state]
            now, came_from = steps[i - 1]
            state = int(came_from[np.searchsorted(now, state)])
        route[0] = self.states[state]
        return prob, route


def install() -> None:
    """Use the array Viterbi in jieba.posseg from now on (once; jieba's tables)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        import jieba.posseg as posseg

        posseg.viterbi = Viterbi(
            posseg.char_state_tab_P, posseg.start_P, posseg.trans_P, posseg.emit_P
        )
        _installed = True
