"""The public performance figures: JSON, CSV and the page that charts them. No login: a
12345 centre publishes every unit's record (as Shanghai does).

GET /api/public/figures?by=unit|channel|matter|day|week|month&from=YYYY-MM-DD&to=YYYY-MM-DD
GET /api/public/figures.csv?...        the same rows as CSV (UTF-8 with BOM, for Excel)
GET /api/public/hot-topics?from=&to=   the most reported topics by area and week
GET /performance                       the page (services/api/static/performance.html)

`to` is inclusive; without dates the last 30 days up to today. Read from the replica when
one is configured and current (services/api/reads.py: X-Hotline-Read-From says which).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from nlu.types import REQUEST_TYPE_LABELS
from services.api.reads import replica_read
from services.context import Context, context_of
from services.core.clock import CHINA_TZ
from services.core.errors import json_exception
from services.http.pages import JAVASCRIPT, static_file
from services.http.requests import respond
from services.storage import figures

STATIC = Path(__file__).resolve().parent / "static"
MAX_DAYS = 3 * 366
RATES = {
    "completion_rate": ("completed", "volume"),
    "reply_rate": ("replied", "volume"),
    "dispatch_on_time_rate": ("dispatch_on_time", "dispatch_counted"),
    "sign_for_on_time_rate": ("sign_for_on_time", "sign_for_counted"),
    "contact_on_time_rate": ("contact_on_time", "contact_counted"),
    "handling_on_time_rate": ("handling_on_time", "handling_counted"),
    "adoption_rate": ("suggestions_adopted", "suggestions_decided"),
}
CSV_COLUMNS = (
    "key",
    "label",
    "volume",
    "completed",
    "completion_rate",
    "replied",
    "reply_rate",
    "dispatch_on_time_rate",
    "sign_for_on_time_rate",
    "contact_on_time_rate",
    "handling_on_time_rate",
    "revisits",
    "revisit_satisfied",
    "revisit_dissatisfied",
    "revisit_no_answer",
    "satisfaction_rate",
    "suggestions_decided",
    "suggestions_adopted",
    "adoption_rate",
    "repeats",
)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _day(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise json_exception(400, f"bad_{name}", f"{name} must be a date like 2026-11-23") from exc


def _period(request: web.Request, ctx: Context) -> tuple[date, date, datetime, datetime]:
    today = ctx.clock.now().astimezone(CHINA_TZ).date()
    first = _day(request, "from", today - timedelta(days=29))
    last = _day(request, "to", today)
    if last < first:
        raise json_exception(400, "bad_period", "to is before from")
    if (last - first).days > MAX_DAYS:
        raise json_exception(400, "bad_period", f"a period is at most {MAX_DAYS} days")
    start = datetime.combine(first, time(0), CHINA_TZ)
    end = datetime.combine(last + timedelta(days=1), time(0), CHINA_TZ)
    return first, last, start, end


def _label(ctx: Context, by: str, key: str) -> str:
    if by == "unit":
        return ctx.units.name(key) if key else "待分派"
    if by == "matter":
        return REQUEST_TYPE_LABELS.get(key, key)
    return key


def figure_row(ctx: Context, by: str, record: Any) -> dict[str, Any]:
    row = dict(record)
    row["label"] = _label(ctx, by, row["key"])
    for name, (part, whole) in RATES.items():
        row[name] = rate(row[part], row[whole])
    row["revisits"] = (
        row["revisit_satisfied"] + row["revisit_dissatisfied"] + row["revisit_no_answer"]
    )
    row["satisfaction_rate"] = rate(row["revisit_satisfied"], row["revisits"])
    return row


async def _rows(request: web.Request) -> tuple[str, date, date, list[dict[str, Any]]]:
    ctx = context_of(request)
    by = request.query.get("by", "unit")
    if by not in figures.GROUPS:
        raise json_exception(400, "bad_by", f"by must be one of {', '.join(figures.GROUPS)}")
    first, last, start, end = _period(request, ctx)
    now = ctx.clock.now()
    records = await replica_read(request, lambda conn: figures.figures(conn, by, start, end, now))
    return by, first, last, [figure_row(ctx, by, r) for r in records]


async def figures_json(request: web.Request) -> web.Response:
    by, first, last, rows = await _rows(request)
    return respond({"by": by, "from": first.isoformat(), "to": last.isoformat(), "rows": rows})


async def figures_csv(request: web.Request) -> web.Response:
    by, first, last, rows = await _rows(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    name = f"12345-figures-{by}-{first.isoformat()}-{last.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def hot_topics(request: web.Request) -> web.Response:
    ctx = context_of(request)
    first, last, start, end = _period(request, ctx)
    rows = await replica_read(request, lambda conn: figures.hot_topics(conn, start, end))
    topics = [
        {**dict(r), "label": ctx.units.name(r["topic"]) if r["topic"] in ctx.units else r["topic"]}
        for r in rows
    ]
    return respond({"from": first.isoformat(), "to": last.isoformat(), "topics": topics})


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "performance.html", headers={"Content-Type": "text/html; charset=utf-8"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/public/figures", figures_json)
    app.router.add_get("/api/public/figures.csv", figures_csv)
    app.router.add_get("/api/public/hot-topics", hot_topics)
    app.router.add_get("/performance", page)
    # its script as a file: the pages' Content-Security-Policy allows no inline script
    app.router.add_get("/performance.js", static_file(STATIC / "performance.js", JAVASCRIPT))
