"""The demo base as another city would export it: one question per answer, no alternative
phrasings, a spreadsheet of a different shape - to measure the knowledge base on a base it was
not written around.

    python bench/kb_city.py [--out /tmp/city.xlsx]

The sheet has the columns a 12345 knowledge-base export typically has: 序号 (row number),
知识编号 (kept: the labelled queries name entries by it), 知识标题 (the question restyled as a
title: every third one "关于…的咨询", every third one without its question mark and 吗/呢),
答复口径 (the answer with a greeting before and a closing line after, multi-sentence answers
numbered 一、二、…), 主办单位 (the unit's NAME, not its code), 生效日期/失效日期, 发布日期 and
备注 (not fields of ours: ignored on import). It is read by the real import path
(knowledgebase/bulk.py through KnowledgeBase.import_file).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from datetime import date
from pathlib import Path

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledgebase.models import FaqEntry  # noqa: E402

HEADER = [
    "序号",
    "知识编号",
    "知识标题",
    "答复口径",
    "主办单位",
    "生效日期",
    "失效日期",
    "发布日期",
    "备注",
]
NUMERALS = "一二三四五六七八九十"
GREETING = "您好！"
CLOSING = "如仍有疑问，可拨打12345热线咨询。"


def title(question: str, i: int) -> str:
    """A question restyled the way knowledge-base titles are written (deterministic)."""
    bare = question.strip().rstrip("？?").strip()
    if i % 3 == 0:
        return f"关于{bare}的咨询"
    if i % 3 == 1:
        return re.sub(r"[吗呢]$", "", bare)
    return question


def reply(answer: str) -> str:
    """The answer as a reply text: greeting, numbered points when there are several, closing."""
    sentences = [s for s in re.split(r"(?<=。)", answer.strip()) if s.strip()]
    if 1 < len(sentences) <= len(NUMERALS):
        body = "".join(f"{NUMERALS[k]}、{s}" for k, s in enumerate(sentences))
    else:
        body = answer.strip()
    return f"{GREETING}{body}{CLOSING}"


def city_sheet(entries: list[FaqEntry], unit_names: dict[str, str]) -> bytes:
    """The entries as another city's .xlsx export (alternatives dropped)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "知识库"
    sheet.append(HEADER)
    for i, e in enumerate(entries):
        sheet.append(
            [
                i + 1,
                e.id,
                title(e.question, i),
                reply(e.answer),
                unit_names.get(e.unit or "", e.unit or ""),
                e.valid_from,
                e.valid_until,
                date(2026, 1, 1),
                "市12345知识库导出",
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def demo_city_sheet() -> bytes:
    from knowledgebase.service import DEMO_FAQ, read_jsonl
    from services.config import DEFAULT_UNITS_FILE
    from services.core.unit_directory import load_units

    units = load_units(DEFAULT_UNITS_FILE)
    names = {code: units.name(code) for code in units.codes}
    return city_sheet([FaqEntry(**row) for row in read_jsonl(DEMO_FAQ)], names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/kb_city.xlsx")
    args = parser.parse_args()
    data = demo_city_sheet()
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
