"""`hotline kb ...` commands against a real database: import (all or nothing), export, ask,
and eval in an isolated temporary database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from knowledgebase.service import DEMO_FAQ
from tests.support.service import CACHE_DIR, NLU_MODEL_DIR


def hotline(database_url: str, tmp_path, *args: str, embeddings: bool = False, demo: bool = False):
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        HOTLINE_DATA_DIR=str(tmp_path / "data"),
        HOTLINE_NLU_MODEL_DIR=str(NLU_MODEL_DIR),
        HOTLINE_EMBEDDING_MODEL_DIR=str(CACHE_DIR / "e5-small"),
        HOTLINE_EMBEDDINGS="1" if embeddings else "0",
        HOTLINE_DEMO_DATA="1" if demo else "0",
    )
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "kb", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def count(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_import_is_all_or_nothing_with_row_errors(database_url, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(
        "id,question,answer,unit\n"
        "c-1,社保卡丢了怎么补办？,带身份证到社保窗口补办。,hrss\n"
        "c-2,公积金怎么提取？,在公积金中心窗口或网上提取。,housing-fund\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,question,answer,unit\n"
        "c-3,新问题一？,新答复一。,hrss\n"
        "c-4,缺答复？,,hrss\n"
        "c-5,未知单位？,答复。,nowhere\n",
        encoding="utf-8",
    )
    done = hotline(database_url, tmp_path, "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "2 new" in done.stdout
    versions = await count(database_url, "SELECT count(*) FROM kb_entry_versions")

    done = hotline(database_url, tmp_path, "import", str(bad))
    assert done.returncode == 2
    assert f"{bad}: row 3: answer: is required" in done.stderr
    assert f"{bad}: row 4: unit: unknown unit 'nowhere'" in done.stderr
    assert "nothing was imported" in done.stderr and "Traceback" not in done.stderr
    assert await count(database_url, "SELECT count(*) FROM kb_entries") == 2
    assert await count(database_url, "SELECT count(*) FROM kb_entry_versions") == versions

    done = hotline(database_url, tmp_path, "import", str(bad), "--partial", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["committed"] and report["created"] == 1 and report["error_count"] == 2
    assert await count(database_url, "SELECT count(*) FROM kb_entries") == 3

    missing = hotline(database_url, tmp_path, "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr

    out = tmp_path / "out.xlsx"
    done = hotline(database_url, tmp_path, "export", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:2] == b"PK"


async def test_ask_and_eval(database_url, tmp_path):
    done = hotline(database_url, tmp_path, "ask", "医保卡丢了怎么办", "--json", demo=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["candidates"][0]["id"] == "faq-0078"
    assert answer["would_answer"] is True and answer["confidence"] >= answer["threshold"]

    rows = [json.loads(line) for line in DEMO_FAQ.read_text(encoding="utf-8").splitlines()][:60]
    kb_file = tmp_path / "kb.jsonl"
    kb_file.write_text(
        "\n".join(
            json.dumps({k: r[k] for k in ("id", "question", "answer", "unit")}, ensure_ascii=False)
            for r in rows
        ),
        encoding="utf-8",
    )
    queries = [{"query": r["alternatives"][0], "faq_id": r["id"]} for r in rows[:30]]
    queries += [{"query": "火星上的房子怎么办产权证", "faq_id": None}]
    q_file = tmp_path / "q.jsonl"
    q_file.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries), "utf-8")
    server_dbs = "SELECT count(*) FROM pg_database"
    before = await count(database_url, server_dbs)
    done = hotline(
        database_url, tmp_path, "eval", "--kb", str(kb_file), "--queries", str(q_file), "--json"
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    for key in ("recall_at_1", "recall_at_3", "false_answer_rate", "p50_ms", "p99_ms"):
        assert isinstance(metrics[key], float), key
    assert metrics["answerable"] == 30 and metrics["unanswerable"] == 1
    assert metrics["recall_at_3"] >= metrics["recall_at_1"] > 0.3
    # the temporary database is gone, the configured one untouched
    assert await count(database_url, server_dbs) == before

    # the same base as another city's spreadsheet (unit names, 知识标题/答复口径) is read as
    # `kb import` reads it, and gives the same figures
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from kb_city import city_sheet

    from knowledgebase.models import FaqEntry
    from services.config import DEFAULT_UNITS_FILE
    from services.core.unit_directory import load_units

    units = load_units(DEFAULT_UNITS_FILE)
    xlsx = tmp_path / "city.xlsx"
    xlsx.write_bytes(
        city_sheet([FaqEntry(**r) for r in rows], {c: units.name(c) for c in units.codes})
    )
    done = hotline(
        database_url, tmp_path, "eval", "--kb", str(xlsx), "--queries", str(q_file), "--json"
    )
    assert done.returncode == 0, done.stderr
    city = json.loads(done.stdout)
    assert city["entries"] == 60 and city["unknown_units"] == 0
    assert city["answerable"] == 30 and city["recall_at_3"] >= city["recall_at_1"] > 0.3

    q_file.write_text('{"query": "有效的问题", "faq_id": "faq-0001"}\n{"query": ""}\n', "utf-8")
    done = hotline(database_url, tmp_path, "eval", "--kb", str(kb_file), "--queries", str(q_file))
    assert done.returncode == 2
    assert "line 2: query must be a non-empty string" in done.stderr
    kb_file.write_text('{"id": "x", "question": "问题？"}\n', "utf-8")
    done = hotline(database_url, tmp_path, "eval", "--kb", str(kb_file), "--queries", str(q_file))
    assert done.returncode == 2 and "line 1: answer: is required" in done.stderr
