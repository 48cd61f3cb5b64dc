"""Measuring the knowledge base on labelled questions: ranking quality, how often it answers
when it should not, and how long an answer takes.

Query lines are {"query": text, "faq_id": id or null}; null means the base holds no answer.

* recall_at_1 / recall_at_3: share of answerable queries whose entry is first / in the top 3
  (ranking quality, whether or not the base would answer by itself);
* answered_correctly: share of answerable queries answered automatically with their entry;
* unanswerable_answered: share of unanswerable queries that got an automatic answer;
* wrong_answers: automatic answers to answerable queries with another entry;
* false_answer_rate: (unanswerable queries answered + wrong answers given) divided by the
  number of unanswerable queries - the literal, strictest reading; every wrong automatic
  answer counts against the unanswerable share;
* p50_ms / p99_ms: time of one `ask` (encoding the question, scoring, ranking).

What a text chat does with the same results (services/conversation: below the threshold but at
least `choice_floor` sure, it lists the top three questions and the citizen picks one):

* choice_with_right_entry: share of answerable queries not answered automatically that get
  the list with their entry in it;
* unanswerable_offered_choice: share of unanswerable queries that get the list (the citizen
  then says 都不是 and the consultation is filed);
* answered_or_chosen: answered_correctly + choice_with_right_entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledgebase.retrieval import Retrieval


class QueryFileError(ValueError):
    pass


@dataclass
class LabelledQuery:
    row: int
    query: str
    faq_id: str | None


def read_queries(path: Path, known_ids: set[str] | None = None) -> list[LabelledQuery]:
    """Queries of a JSONL file; every problem is reported with its line number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise QueryFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryFileError(f"{path}: cannot read it as UTF-8 text: {exc}") from exc
    out, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {number}: must be a JSON object")
            continue
        query, faq_id = row.get("query"), row.get("faq_id")
        if not isinstance(query, str) or not query.strip():
            problems.append(f"line {number}: query must be a non-empty string")
            continue
        if "faq_id" not in row:
            problems.append(f"line {number}: faq_id is required (null when not answerable)")
            continue
        if faq_id is not None and not isinstance(faq_id, str):
            problems.append(f"line {number}: faq_id must be a string or null")
            continue
        if faq_id is not None and known_ids is not None and faq_id not in known_ids:
            problems.append(f"line {number}: faq_id {faq_id!r} is not in the knowledge base")
            continue
        out.append(LabelledQuery(number, query.strip(), faq_id))
    if problems:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise QueryFileError(f"{path}: {len(problems)} bad lines: {shown}{more}")
    if not out:
        raise QueryFileError(f"{path}: no queries")
    return out


# services.config's HOTLINE_KB_CHOICE_FLOOR default
CHOICE_FLOOR = 0.3


def evaluate(
    ask: Callable[[str], Retrieval], queries: list[LabelledQuery], *, warmup: int = 5
) -> dict[str, Any]:
    for q in queries[:warmup]:
        ask(q.query)
    times, results = [], []
    for q in queries:
        started = time.perf_counter()
        result = ask(q.query)
        times.append((time.perf_counter() - started) * 1000)
        results.append(result)
    return score(queries, results, times)


def score(
    queries: list[LabelledQuery],
    results: list[Retrieval],
    times_ms: list[float],
    *,
    choice_floor: float = CHOICE_FLOOR,
) -> dict[str, Any]:
    answerable = [(q, r) for q, r in zip(queries, results, strict=True) if q.faq_id]
    unanswerable = [r for q, r in zip(queries, results, strict=True) if not q.faq_id]

    def rank_hit(q: LabelledQuery, r: Retrieval, k: int) -> bool:
        return q.faq_id in [c.entry.id for c in r.candidates[:k]]

    correct = sum(1 for q, r in answerable if r.answer and r.answer.entry.id == q.faq_id)
    wrong = sum(1 for q, r in answerable if r.answer and r.answer.entry.id != q.faq_id)
    false_yes = sum(1 for r in unanswerable if r.answer)

    def offered(r: Retrieval) -> bool:
        return r.answer is None and bool(r.candidates) and r.confidence >= choice_floor

    chosen = sum(1 for q, r in answerable if offered(r) and rank_hit(q, r, 3))
    offered_unanswerable = sum(1 for r in unanswerable if offered(r))
    n_ans, n_un = len(answerable), len(unanswerable)
    times = np.asarray(times_ms)
    return {
        "queries": len(queries),
        "answerable": n_ans,
        "unanswerable": n_un,
        "recall_at_1": _share(sum(rank_hit(q, r, 1) for q, r in answerable), n_ans),
        "recall_at_3": _share(sum(rank_hit(q, r, 3) for q, r in answerable), n_ans),
        "false_answer_rate": _share(false_yes + wrong, n_un) if n_un else _share(wrong, n_ans),
        "unanswerable_answered": _share(false_yes, n_un),
        "wrong_answers": wrong,
        "wrong_answer_rate": _share(wrong, n_ans),
        "answered_correctly": _share(correct, n_ans),
        "choice_with_right_entry": _share(chosen, n_ans),
        "answered_or_chosen": _share(correct + chosen, n_ans),
        "unanswerable_offered_choice": _share(offered_unanswerable, n_un),
        "p50_ms": round(float(np.percentile(times, 50)), 2) if len(times) else None,
        "p99_ms": round(float(np.percentile(times, 99)), 2) if len(times) else None,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
