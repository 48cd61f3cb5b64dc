"""The dialogue-act classifier: its training data, its held-out accuracy, and that the state
changes what a reply means."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from nlu.dialogue_acts import (
    ACTS,
    STATES,
    default_model,
    entity_reader,
    evaluate,
    load_examples,
    normalise,
    read_heldout,
)
from nlu.training_data import read_file

BLIND_DIALOGUES = Path(__file__).parent / "data" / "blind" / "dialogues.jsonl"


@pytest.fixture(scope="module")
def model():
    return default_model()


def test_the_training_data_names_known_acts_and_states():
    examples = load_examples()
    assert len(examples) > 900
    assert {e.intent for e in examples} <= set(ACTS)
    assert {e.state for e in examples} <= {*STATES, "any"}
    for state in STATES:
        assert sum(1 for e in examples if e.state == state) >= 20, state


def test_state_metadata_per_example_is_read(tmp_path):
    path = tmp_path / "acts.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: affirm\n  metadata:\n    state: confirm\n'
        "  examples:\n  - text: 好的\n  - text: 好的谢谢\n    metadata:\n      state: kb_answer\n",
        encoding="utf-8",
    )
    assert [(e.text, e.state) for e in read_file(path)] == [
        ("好的", "confirm"),
        ("好的谢谢", "kb_answer"),
    ]


def test_heldout_accuracy(model):
    result = evaluate(model, read_heldout(), entity_reader())
    assert result["replies"] >= 250
    assert result["accuracy"] >= 0.95, result["mistakes"]


@pytest.mark.parametrize(
    ("text", "state", "act"),
    [
        ("好的", "confirm", "affirm"),
        ("好的", "kb_answer", "thanks"),
        ("不用了", "offer", "cancel"),
        ("都不是", "kb_choice", "deny"),
        ("没有", "kb_answer", "not_resolved"),
        ("不想留电话", "ask_phone", "deny"),
        ("地点改成灵秀镇华山村", "confirm", "correct"),
        ("在灵秀镇华山村", "ask_location", "provide_info"),
        ("第二个", "kb_choice", "choose"),
    ],
)
def test_the_state_decides_what_a_reply_means(model, text, state, act):
    assert model.classify(text, state, entity_reader()(text)).act == act


def test_no_training_reply_is_a_near_copy_of_a_blind_dialogue_turn():
    """Short replies ("确认", "好的谢谢") are common property; anything longer must not
    resemble a line of the blind set (numbers aside: which digits a phone has says nothing)."""
    turns = {
        normalise(t)
        for line in BLIND_DIALOGUES.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for t in json.loads(line)["turns"]
    }
    close = []
    for ex in load_examples():
        mine = normalise(ex.text)
        if len(mine) < 10:
            continue
        for turn in turns:
            if difflib.SequenceMatcher(None, mine, turn).ratio() > 0.8:
                close.append((ex.text, turn))
    assert close == []
