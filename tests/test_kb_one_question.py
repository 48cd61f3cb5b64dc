"""A base of one question per entry (what most cities import from a spreadsheet) gets the
calibration fitted for such bases, and questions in traditional characters meet the
simplified base. Against a real PostgreSQL, with the real e5 model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from knowledgebase.calibration import fit_one_question, one_question_index
from knowledgebase.evaluation import read_queries, score
from knowledgebase.models import FaqEntry
from knowledgebase.service import DEMO_FAQ, default_calibration, read_jsonl
from knowledgebase.text import simplified
from services.cli.kb_tools import open_kb
from services.core.clock import SystemClock

DAY = date(2026, 11, 23)


def one_question_demo() -> list[FaqEntry]:
    return [FaqEntry(**row).model_copy(update={"alternatives": []}) for row in read_jsonl(DEMO_FAQ)]


async def test_a_one_question_base_gets_the_one_question_default_and_holds(
    settings, database_url, embedder
):
    async with open_kb(settings, database_url, embedder, demo=False) as kb:
        await kb.save_bulk(
            one_question_demo(), actor="test", action="import", at=SystemClock().now()
        )
        await kb.refresh(recalibrate=True)
        c = kb.calibration
        assert c is not None
        # not the demo base's own calibration (fitted with alternatives in the index)
        assert "one question per entry" in c.report["source"], c.report
        assert c.threshold == default_calibration(kb.signature, one_question=True).threshold
        assert c.threshold != default_calibration(kb.signature).threshold
        assert len(kb.index.texts) == len(kb.index)

        queries = read_queries(Path(DEMO_FAQ).with_name("eval_queries.jsonl"))
        results = [kb.ask(q.query, DAY) for q in queries]
        m = score(queries, results, [0.0] * len(queries))
        assert m["recall_at_1"] >= 0.92, m
        assert m["recall_at_3"] >= 0.98, m
        assert m["false_answer_rate"] <= 0.05, m
        assert m["answered_correctly"] >= 0.55, m


async def test_the_one_question_calibration_is_fitted_without_the_alternatives(service):
    index = service.ctx.kb.index
    stripped = one_question_index(index)
    assert len(stripped.texts) == len(stripped) == len(index)
    # the stripped base reuses the vectors: a question's row is its entry's first phrasing
    assert (stripped.vectors == index.vectors[index.starts]).all()
    c = fit_one_question(index, service.ctx.kb.signature)
    alternatives = sum(len(e.alternatives) for e in index.entries)
    assert c.report["held_out_queries"] == alternatives
    assert c.report["phrasings"] == len(index)
    assert c.report["unanswerable_answered"] <= c.report["target_false"]
    # the shipped one-question default ranks with this fit's weights (its answer decision is
    # learnt from written questions: tests/test_kb_decision.py)
    shipped = default_calibration(service.ctx.kb.signature, one_question=True)
    assert shipped.weights == c.weights
    assert c.weights != service.ctx.kb.calibration.weights


async def test_a_question_in_traditional_characters_meets_the_simplified_base(service):
    kb = service.ctx.kb
    entry = kb.index.get("faq-0001")
    traditional = "居住證怎麼辦理，需要帶哪些證件"
    assert simplified(traditional) == "居住证怎么办理，需要带哪些证件"
    got = kb.ask(traditional, DAY)
    same = kb.ask(simplified(traditional), DAY)
    assert got.candidates[0].entry.id == same.candidates[0].entry.id == entry.id
    # every score is the simplified question's, the character n-grams included
    assert got.candidates[0].features == same.candidates[0].features
    assert got.confidence == same.confidence
