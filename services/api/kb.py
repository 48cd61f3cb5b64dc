"""The knowledge-base HTTP API: editors (entries, workflow, history, import/export, feedback
statistics, misses, calibration) and agents (candidates for a question, providers).

GET    /api/kb/entries?q=&status=&unit=&limit=&offset=   search / list            editor
POST   /api/kb/entries                                    create (a draft)         editor
GET    /api/kb/entries/{id}                               one entry with version   editor, agent, supervisor
PATCH  /api/kb/entries/{id}      {..changes, "version"}   edit                     editor
POST   /api/kb/entries/{id}/publish|retire|withdraw       workflow {"version"}     editor
GET    /api/kb/entries/{id}/history                       who changed what         editor
POST   /api/kb/import?kind=&format=&partial=1             JSONL, CSV or XLSX body  editor
GET    /api/kb/export?kind=entries|providers&format=jsonl|csv|xlsx&status=        editor
GET    /api/kb/candidates?q=&k=&all=1                     top candidates           agent, editor, supervisor
GET    /api/kb/feedback/stats?days=&min_ratings=&flag_share=                      editor
GET    /api/kb/misses?days=&limit=                        unanswered consultations editor
GET    /api/kb/calibration, POST /api/kb/calibration (refit)                       editor
GET    /api/kb/providers?q=&area=                         referral lookup          agent, editor, supervisor

Every handler is wrapped by services.api.auth.require_role (bearer token of a staff account with
one of the roles; 401/403 JSON otherwise); the account's user name is recorded as who changed
what.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import BodyPartReader, web

from knowledgebase import bulk
from knowledgebase.models import FaqEntry
from knowledgebase.service import EntryNotFound
from knowledgebase.store import EntryMeta
from services.api.auth import current_user, require_role
from services.api.reads import replica_read
from services.context import context_of
from services.core.errors import json_exception
from services.http.openapi import documented
from services.http.requests import read_json
from services.staff import accounts

EDITOR = accounts.KNOWLEDGE_EDITOR
AGENT = accounts.AGENT
SUPERVISOR = accounts.SUPERVISOR
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
READ_ONLY = ("created_by", "created_at", "updated_by", "updated_at", "published_at", "score")
_FORMAT_BY_TYPE = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json": "jsonl",
    "text/csv": "csv",
    CONTENT_TYPES["xlsx"]: "xlsx",
}


def actor_of(request: web.Request) -> str:
    """Who is calling, as recorded in the version history (the one tie to authentication)."""
    return current_user(request).username


def _handler(*roles: str):  # noqa: ANN202 - a decorator
    def wrap(fn):  # noqa: ANN001, ANN202
        async def handle(request: web.Request) -> web.StreamResponse:
            return await fn(request, actor_of(request))

        handle.__name__ = fn.__name__
        return require_role(*roles)(handle)

    return wrap


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise json_exception(400, "bad_parameter", f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise json_exception(400, "bad_parameter", f"{name} must be between {low} and {high}")
    return value


def _float_param(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise json_exception(400, "bad_parameter", f"{name} must be a number") from exc
    if not 0.0 <= value <= 1.0:
        raise json_exception(400, "bad_parameter", f"{name} must be between 0 and 1")
    return value


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _version(body: dict[str, Any]) -> int | None:
    version = body.pop("version", None)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise json_exception(400, "invalid", "version must be an integer")
    return version


def entry_json(entry: FaqEntry, meta: EntryMeta, score: float | None = None) -> dict[str, Any]:
    out = {**entry.model_dump(mode="json"), **meta.to_dict()}
    if score is not None:
        out["score"] = round(score, 4)
    return out


# -- entries -------------------------------------------------------------------------------------


@documented(
    "Knowledge-base entries, searched and paged",
    query={
        "q": {"type": "string"},
        "status": {"type": "string", "enum": ["draft", "published", "retired"]},
        "unit": {"type": "string"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 200},
        "offset": {"type": "integer", "minimum": 0},
    },
)
@_handler(EDITOR)
async def list_entries(request: web.Request, actor: str) -> web.Response:
    kb = context_of(request).kb
    status = request.query.get("status") or None
    if status and status not in ("draft", "published", "retired"):
        raise json_exception(400, "bad_parameter", "status must be draft, published or retired")
    q, unit = request.query.get("q"), request.query.get("unit") or None
    limit = _int_param(request, "limit", 20, 1, 200)
    offset = _int_param(request, "offset", 0, 0, 1_000_000)
    rows, total = await replica_read(
        request,
        lambda conn: kb.search(q, status=status, unit=unit, limit=limit, offset=offset, conn=conn),
    )
    return web.json_response({"total": total, "entries": [entry_json(e, m, s) for e, m, s in rows]})


@documented("A new draft entry", FaqEntry, {201: None})
@_handler(EDITOR)
async def create_entry(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    body.pop("version", None)
    if "id" in body:
        try:
            await ctx.kb.get(str(body["id"]))
        except EntryNotFound:
            pass
        else:
            raise json_exception(409, "exists", f"an entry {body['id']!r} exists already; edit it")
    entry, meta = await ctx.kb.create(body, actor=actor, at=ctx.clock.now())
    return web.json_response(entry_json(entry, meta), status=201)


@_handler(EDITOR, AGENT, SUPERVISOR)
async def get_entry(request: web.Request, actor: str) -> web.Response:
    entry, meta = await context_of(request).kb.get(request.match_info["entry_id"])
    return web.json_response(entry_json(entry, meta))


@_handler(EDITOR)
async def edit_entry(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    version = _version(body)
    for key in READ_ONLY:  # a client may send back what it read
        body.pop(key, None)
    entry, meta = await ctx.kb.update(
        request.match_info["entry_id"],
        body,
        actor=actor,
        at=ctx.clock.now(),
        expected_version=version,
    )
    return web.json_response(entry_json(entry, meta))


@_handler(EDITOR)
async def transition(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    entry, meta = await ctx.kb.transition(
        request.match_info["entry_id"],
        request.match_info["action"],
        actor=actor,
        at=ctx.clock.now(),
        expected_version=_version(body),
    )
    return web.json_response(entry_json(entry, meta))


@_handler(EDITOR)
async def history(request: web.Request, actor: str) -> web.Response:
    versions = await context_of(request).kb.history(request.match_info["entry_id"])
    return web.json_response({"entry_id": request.match_info["entry_id"], "versions": versions})


# -- import and export --------------------------------------------------------------------------


async def _upload(request: web.Request, limit: int) -> tuple[bytes, str | None, str | None]:
    """The file of an upload: a multipart field named "file", or the raw body. Returns the
    bytes, the file name and the content type. Read with its own size limit: imports are
    larger than chat messages."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.name == "file":
                data = await _read_limited(part, limit)
                return data, part.filename, part.headers.get("Content-Type")
        raise json_exception(400, "no_file", 'the multipart body has no "file" field')
    data = await _read_limited(request.content, limit)
    return data, None, request.content_type


async def _read_limited(stream: Any, limit: int) -> bytes:
    multipart = isinstance(stream, BodyPartReader)
    read = stream.read_chunk if multipart else stream.read
    chunks, size = [], 0
    while chunk := await read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise json_exception(413, "too_large", f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    return stream.decode(data) if multipart else data


@_handler(EDITOR)
async def import_file(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    kind = request.query.get("kind") or None
    if kind not in (None, "entries", "providers"):
        raise json_exception(400, "bad_parameter", "kind must be entries or providers")
    data, filename, content_type = await _upload(request, ctx.settings.kb_import_max_bytes)
    if not data:
        raise json_exception(400, "empty", "the upload is empty")
    declared = request.query.get("format") or None
    try:
        if declared is None and not filename and content_type in _FORMAT_BY_TYPE:
            declared = _FORMAT_BY_TYPE[content_type]
        fmt = bulk.format_of(filename, declared)
        report = await ctx.kb.import_file(
            data, fmt, actor=actor, at=ctx.clock.now(), partial=_flag(request, "partial"), kind=kind
        )
    except bulk.ImportFileError as exc:
        raise json_exception(400, "bad_file", str(exc)) from exc
    body = report.to_dict()
    if not report.committed and report.errors:
        return web.json_response(
            {
                "error": "import_rejected",
                "reason": f"{len(report.errors)} of {report.rows} rows are invalid; nothing was "
                "imported (fix them, or import the valid rows with partial=1)",
                "report": body,
            },
            status=422,
        )
    return web.json_response(body)


@_handler(EDITOR)
async def export_file(request: web.Request, actor: str) -> web.Response:
    kind = request.query.get("kind", "entries")
    fmt = request.query.get("format", "jsonl")
    if kind not in ("entries", "providers"):
        raise json_exception(400, "bad_parameter", "kind must be entries or providers")
    if fmt not in bulk.FORMATS:
        raise json_exception(400, "bad_parameter", "format must be jsonl, csv or xlsx")
    kb, status = context_of(request).kb, request.query.get("status") or None
    data = await replica_read(request, lambda conn: kb.export(kind, fmt, status, conn=conn))
    return web.Response(
        body=data,
        headers={
            "Content-Type": CONTENT_TYPES[fmt],
            "Content-Disposition": f'attachment; filename="kb-{kind}.{fmt}"',
        },
    )


# -- agents: candidates and providers -------------------------------------------------------


@_handler(AGENT, EDITOR, SUPERVISOR)
async def candidates(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    question = (request.query.get("q") or "").strip()
    if not question:
        raise json_exception(400, "empty", "q (the question) is required")
    if len(question) > ctx.settings.max_message_chars:
        raise json_exception(413, "too_long", "the question is too long")
    k = _int_param(request, "k", 5, 1, 50)
    everything = _flag(request, "all")
    if everything and current_user(request).role != EDITOR:
        # drafts and expired entries are for editors; agents only pass on what citizens may get
        raise json_exception(
            403, "forbidden", "all=1 (drafts, retired, expired) needs knowledge_editor"
        )
    day = None if everything else ctx.clock.now().date()
    result = await asyncio.to_thread(ctx.kb.candidates, question, day, k)
    return web.json_response({"question": question, **result.to_dict()})


@_handler(AGENT, EDITOR, SUPERVISOR)
async def providers(request: web.Request, actor: str) -> web.Response:
    kb = context_of(request).kb
    text = (request.query.get("q") or "").strip()
    area = request.query.get("area") or None
    found = kb.refer(text, area) if text else kb.providers.providers
    return web.json_response({"providers": [p.model_dump(mode="json") for p in found]})


# -- feedback, misses, calibration ----------------------------------------------------------


@_handler(EDITOR)
async def feedback_stats(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    days = _int_param(request, "days", 0, 0, 3650)
    since = ctx.clock.now() - timedelta(days=days) if days else None
    stats = await ctx.kb.feedback_stats(
        since,
        min_ratings=_int_param(request, "min_ratings", 3, 1, 10_000),
        flag_share=_float_param(request, "flag_share", 0.25),
    )
    return web.json_response(
        {
            "since": since.isoformat() if since else None,
            "often_failing": [s["entry_id"] for s in stats if s["often_fails"]],
            "entries": stats,
        }
    )


@_handler(EDITOR)
async def misses(request: web.Request, actor: str) -> web.Response:
    ctx = context_of(request)
    days = _int_param(request, "days", 30, 0, 3650)
    since = ctx.clock.now() - timedelta(days=days) if days else None
    rows = await ctx.kb.misses(since, _int_param(request, "limit", 100, 1, 1000))
    return web.json_response({"misses": rows})


@_handler(EDITOR)
async def get_calibration(request: web.Request, actor: str) -> web.Response:
    return web.json_response(_calibration_json(context_of(request).kb))


@_handler(EDITOR)
async def refit_calibration(request: web.Request, actor: str) -> web.Response:
    kb = context_of(request).kb
    await kb.recalibrate()
    return web.json_response(_calibration_json(kb))


def _calibration_json(kb: Any) -> dict[str, Any]:
    c = kb.calibration
    return {
        "signature": kb.signature,
        "threshold_in_use": kb.index.threshold,
        "calibration": None if c is None else {**c.params(), "report": c.report},
    }


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/kb/entries", list_entries)
    r.add_post("/api/kb/entries", create_entry)
    r.add_get("/api/kb/entries/{entry_id}", get_entry)
    r.add_patch("/api/kb/entries/{entry_id}", edit_entry)
    r.add_post("/api/kb/entries/{entry_id}/{action:publish|retire|withdraw}", transition)
    r.add_get("/api/kb/entries/{entry_id}/history", history)
    r.add_post("/api/kb/import", import_file)
    r.add_get("/api/kb/export", export_file)
    r.add_get("/api/kb/candidates", candidates)
    r.add_get("/api/kb/providers", providers)
    r.add_get("/api/kb/feedback/stats", feedback_stats)
    r.add_get("/api/kb/misses", misses)
    r.add_get("/api/kb/calibration", get_calibration)
    r.add_post("/api/kb/calibration", refit_calibration)
