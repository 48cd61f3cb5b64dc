"""The answer decision of one-question bases (issue 14, item 6): learnt from questions people
wrote, shipped as the one-question default, applied to any imported base without refitting and
used by the chat. Against a real PostgreSQL, with the real e5 model."""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from knowledgebase.calibration import (
    DECISION_INPUTS,
    DECISION_TARGET_FALSE,
    NotEnoughData,
    fit_decision,
    fit_one_question,
    one_question_index,
)
from knowledgebase.evaluation import read_queries, score
from knowledgebase.models import FaqEntry
from knowledgebase.retrieval import ANSWER_FEATURES, Calibration, answer_features
from knowledgebase.service import (
    DEMO_FAQ,
    TUNING_QUERIES,
    default_calibration,
    read_jsonl,
    tuning_queries,
)
from services.cli.kb_tools import open_kb
from services.core.clock import SystemClock
from tests.support.chat import ChatClient

DAY = date(2026, 11, 23)


def one_question_demo() -> list[FaqEntry]:
    return [FaqEntry(**row).model_copy(update={"alternatives": []}) for row in read_jsonl(DEMO_FAQ)]


def city_entries_sheet() -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from kb_city import demo_city_sheet

    return demo_city_sheet()


def test_agreement_counts_only_entries_that_may_answer():
    # three entries; the second may not answer (expired): its dense score is the highest
    feats = np.array(
        [[0.90, 0.80, 0.5, 0.4, 1.0], [0.95, 0.70, 0.1, 0.9, 0.2], [0.80, 0.85, 0.2, 0.3, 0.5]],
        dtype=np.float32,
    )
    fused = np.array([3.0, -math.inf, 2.5])
    got = answer_features(fused, feats, 0, 2, DECISION_INPUTS)
    values = dict(zip(DECISION_INPUTS, got, strict=True))
    assert values["fused"] == 3.0 and values["margin"] == 0.5
    assert values["dense_doc"] == pytest.approx(0.8)
    # dense: entry 0 is first among those that may answer; dense_doc: entry 2 beats it
    assert values["dense_agrees"] == 1.0 and values["dense_doc_agrees"] == 0.0
    assert values["lexical_doc_agrees"] == 1.0 and values["bm25_agrees"] == 1.0
    # the three inputs of calibrations fitted on a base's own phrasings are unchanged
    assert answer_features(fused, feats, 0, 2) == got[:3]


def test_calibrations_name_their_inputs_and_unknown_ones_are_refused():
    params = {
        "weights": {"dense": 1.0, "dense_doc": 4.0, "lexical": 0.0, "lexical_doc": 0.3, "bm25": 0},
        "coef": [1.0, 2.0, 3.0],
        "intercept": -1.0,
        "threshold": 0.7,
        "features": ["dense", "dense_doc", "lexical", "lexical_doc", "bm25"],
        "answer_features": list(ANSWER_FEATURES),
    }
    assert Calibration.from_params("m", params).inputs == ANSWER_FEATURES
    for bad in (
        {"answer_features": ["fused", "margin", "a_word_count"]},
        {"answer_features": list(DECISION_INPUTS)},  # seven inputs, three coefficients
        {"answer_features": []},
    ):
        with pytest.raises(ValueError, match="another feature set"):
            Calibration.from_params("m", {**params, **bad})


async def test_the_one_question_default_is_the_decision_learnt_from_written_questions(service):
    kb = service.ctx.kb
    shipped = default_calibration(kb.signature, one_question=True)
    assert shipped.inputs == DECISION_INPUTS
    assert shipped.report["sources"] == [p.name for p in TUNING_QUERIES]
    # no blind file is ever tuned on
    assert all("blind" not in str(p) for p in TUNING_QUERIES)
    # refitted here as `hotline kb calibrate --write-default` fits it
    ranking = fit_one_question(kb.index, kb.signature)
    refit = fit_decision(one_question_index(kb.index), tuning_queries(), ranking)
    assert refit.weights == shipped.weights == ranking.weights
    assert refit.coef == pytest.approx(shipped.coef, rel=1e-3)
    assert abs(refit.threshold - shipped.threshold) < 0.01
    report = refit.report
    assert report["queries"] == len(tuning_queries()) and report["unanswerable"] > 200
    assert report["target_false"] == DECISION_TARGET_FALSE
    # in-sample figures of the fitted decision, around the out-of-fold target
    assert report["false_answer_rate"] <= 0.04, report
    assert report["answered_correctly"] >= 0.55, report
    # the agreement of the signals weighs: a first candidate every signal ranks first is
    # more often right than one the fused score alone ranks first
    coef = dict(zip(refit.inputs, refit.coef, strict=True))
    assert coef["dense_agrees"] > 0 and coef["lexical_doc_agrees"] > 0


async def test_fitting_the_decision_refuses_too_few_or_unknown_questions(service):
    index = one_question_index(service.ctx.kb.index)
    ranking = service.ctx.kb.calibration
    with pytest.raises(NotEnoughData):
        fit_decision(index, tuning_queries()[:10], ranking)
    with pytest.raises(ValueError, match="faq-9999"):
        fit_decision(index, [*tuning_queries()[:50], ("问题", "faq-9999")], ranking)


async def test_an_imported_city_base_uses_the_decision_without_refitting(
    settings, database_url, embedder
):
    async with open_kb(settings, database_url, embedder, demo=False) as kb:
        imported = await kb.import_file(
            city_entries_sheet(), "xlsx", actor="test", at=SystemClock().now()
        )
        assert imported.committed, imported.errors
        c = kb.calibration
        assert c is not None and c.inputs == DECISION_INPUTS
        assert c.threshold == default_calibration(kb.signature, one_question=True).threshold
        queries = []
        for path in TUNING_QUERIES:
            queries += read_queries(path)
        m = score(queries, [kb.ask(q.query, DAY) for q in queries], [0.0] * len(queries))
        assert m["recall_at_1"] >= 0.92, m
        assert m["false_answer_rate"] <= 0.05, m
        assert m["answered_correctly"] >= 0.55, m


async def test_the_chat_on_a_one_question_base_answers_asks_to_choose_or_files(service):
    kb = service.ctx.kb
    await kb.save_bulk(one_question_demo(), actor="test", action="import", at=SystemClock().now())
    await kb.refresh(recalibrate=True)
    assert len(kb.index.texts) == len(kb.index)
    assert kb.calibration.inputs == DECISION_INPUTS
    day = service.ctx.clock.now().date()

    # sure: answered on the spot
    sure = "医保卡不见了要去哪里补一张"
    got = kb.ask(sure, day)
    assert got.answer is not None and got.answer.entry.id == "faq-0078"
    client = ChatClient(service.url)
    result = await client.say(sure)
    assert result["replies"][0] == kb.entry("faq-0078").answer
    assert result["request_number"] is None

    # on the entry's topic but asking something it does not say: not answered, the citizen
    # is offered the closest questions and says none of them
    near = "HPV打完第二针多久能怀孕"
    got = kb.ask(near, day)
    assert got.answer is None and got.confidence >= service.ctx.settings.kb_choice_floor
    other = ChatClient(service.url)
    result = await other.say(near)
    text = "\n".join(result["replies"])
    assert kb.entry("faq-0149").question in text and "都不是" in text

    # far from every entry: no answer, no list
    far = "帮我订一张明天去北京的机票"
    got = kb.ask(far, day)
    assert got.answer is None and got.confidence < service.ctx.settings.kb_choice_floor
    third = ChatClient(service.url)
    result = await third.say(far)
    assert "都不是" not in "\n".join(result["replies"])
    assert not any(kb.entry(c.entry.id).answer in result["replies"] for c in got.candidates)


def test_the_chat_outcomes_are_counted_answered_chosen_or_filed():
    from knowledgebase.evaluation import LabelledQuery
    from knowledgebase.retrieval import Candidate, Retrieval

    entries = {i: FaqEntry(id=i, question=f"{i}？", answer="答复。", unit="") for i in "abcd"}

    def got(confidence: float, *ids: str) -> Retrieval:
        return Retrieval([Candidate(entries[i], 1.0, "") for i in ids], 0.9, confidence)

    queries = [
        LabelledQuery(n, "问", faq_id) for n, faq_id in enumerate(["a", "b", "c", None, None])
    ]
    results = [
        got(0.95, "a", "b"),  # answered right on the spot
        got(0.50, "c", "d", "b"),  # unsure: the list holds b, the citizen picks it
        got(0.20, "c", "a"),  # below the floor: filed, though c came first
        got(0.40, "a", "b"),  # unanswerable, offered a list: 都不是, filed
        got(0.10, "d"),  # unanswerable, filed at once
    ]
    m = score(queries, results, [0.0] * len(queries))
    assert m["answered_correctly"] == round(1 / 3, 4)
    assert m["answered_or_chosen"] == round(2 / 3, 4)
    assert m["unanswerable_offered_choice"] == 0.5
    assert m["false_answer_rate"] == 0.0
