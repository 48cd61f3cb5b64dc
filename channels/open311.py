"""The Open311 GeoReport v2 channel, under /open311/v2/ (docs/open311.md).

GET  discovery.{format}           the service discovery document
GET  services.{format}            one service per matter category (channels/open311_services.py)
GET  services/{code}.{format}     its definition: the attributes it asks for
POST requests.{format}            file a request (form-encoded; api_key from `hotline apikeys add`)
GET  requests.{format}            requests filed here: service_request_id (any channel's),
                                  service_code, start_date, end_date, status filters
GET  requests/{id}.{format}       one request: any work order, by its request number
GET  tokens/{token}.{format}      the request number of a token (HOTLINE_OPEN311_TYPE=batch)

{format} is json or xml. A request filed here is a work order like any other: its request
number is the service_request_id (channels/open311_filing.py). Errors are the spec's document,
a list of {code, description} in the requested format, from this sub-application's one error
middleware. Orders filed on other channels are shown without their description and place:
those were given to the hotline, not published.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from channels import open311_docs as docs
from channels import open311_keys as keys
from channels.open311_filing import file_request
from channels.open311_input import BadRequest, date_range, list_param, read_submission, text_field
from channels.open311_services import ATTRIBUTES_FILE, Catalogue, Service, build_catalogue
from channels.open311_views import attribute_view, request_view, service_notice, service_view
from services.context import context_of
from services.core.errors import NotFound
from services.http.errors import as_service_error
from services.orders import states
from services.storage import open311

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_IDS = 100
MAX_REQUESTS = 1000  # the spec's default query limit
_FORMAT = re.compile(r"\.(json|xml)$")


def fmt_of(request: web.Request) -> str:
    found = _FORMAT.search(request.path)
    return found.group(1) if found else "json"


@web.middleware
async def open311_errors(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    """Every error of this channel as the spec's error document, with its HTTP status."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = "no such resource" if exc.status == 404 else exc.reason
        return docs.errors(fmt_of(request), exc.status, [(exc.status, reason)])
    except Exception as exc:
        error = as_service_error(exc)
        if error is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            reason = "the service could not handle this request; it has been logged"
            return docs.errors(fmt_of(request), 500, [(500, reason)])
        return docs.errors(fmt_of(request), error.status, [(error.status, error.reason)])


# -- the catalogue, built once per application from the unit directory ------------------------

_CATALOGUE = web.AppKey("open311_catalogue", dict)


def catalogue_of(request: web.Request) -> Catalogue:
    cache = request.app[_CATALOGUE]
    if "catalogue" not in cache:
        cache["catalogue"] = build_catalogue(context_of(request).units)
    return cache["catalogue"]


def service_of(request: web.Request, code: str | None) -> Service:
    if not code:
        raise BadRequest("service_code was not provided", code="missing_service_code")
    service = catalogue_of(request).get(code)
    if service is None:
        raise NotFound(f"service_code {code!r} was not found", code="unknown_service_code")
    return service


# -- handlers -------------------------------------------------------------------------------------


def _format(request: web.Request) -> str:
    return request.match_info["format"]


def _endpoint(request: web.Request) -> str:
    base = context_of(request).settings.public_url
    return (base or f"{request.scheme}://{request.host}") + PREFIX


async def discovery(request: web.Request) -> web.Response:
    ctx = context_of(request)
    changed = max(ctx.settings.units_file.stat().st_mtime, ATTRIBUTES_FILE.stat().st_mtime)
    changeset = datetime.fromtimestamp(changed, tz=ctx.clock.now().tzinfo).strftime(
        "%Y-%m-%d %H:%M"
    )
    return docs.render(
        _format(request),
        "discovery",
        {
            "changeset": changeset,
            "contact": ctx.settings.open311_contact,
            "key_service": "API keys are issued by the service centre (hotline apikeys add)",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": _endpoint(request),
                    "changeset": changeset,
                    "type": "production",
                    "formats": list(docs.CONTENT_TYPES.values()),
                }
            ],
        },
    )


async def services(request: web.Request) -> web.Response:
    kind = context_of(request).settings.open311_type
    listed = [service_view(s, kind) for s in catalogue_of(request).services]
    return docs.render(_format(request), "services", listed)


async def service_definition(request: web.Request) -> web.Response:
    service = service_of(request, request.match_info["code"])
    return docs.render(
        _format(request),
        "service_definition",
        {
            "service_code": service.code,
            "attributes": [attribute_view(a) for a in service.attributes],
        },
    )


async def post_request(request: web.Request) -> web.Response:
    ctx = context_of(request)
    form = await request.post()
    api_key = form.get("api_key") or request.query.get("api_key")
    async with ctx.pool.acquire() as conn:
        key = await keys.authenticate(conn, api_key if isinstance(api_key, str) else None)
    service = service_of(request, text_field(form, "service_code"))
    filed = await file_request(ctx, read_submission(service, key, form))
    notice = service_notice(ctx, states.DISPATCHED if filed.lead_unit else states.AWAITING_DISPATCH)
    answer: dict[str, Any] = (
        {"token": filed.token}
        if ctx.settings.open311_type == "batch"
        else {"service_request_id": filed.request_number}
    )
    answer.update({"service_notice": notice, "account_id": text_field(form, "account_id")})
    return docs.render(_format(request), "service_requests", [answer])


async def get_requests(request: web.Request) -> web.Response:
    ctx = context_of(request)
    catalogue = catalogue_of(request)
    numbers = list_param(request, "service_request_id")
    async with ctx.pool.acquire() as conn:
        if numbers:  # "this overrides all other arguments"
            if len(numbers) > MAX_IDS:
                raise BadRequest(f"at most {MAX_IDS} service_request_id at once")
            rows = await open311.by_numbers(conn, numbers)
        else:
            codes = list_param(request, "service_code")
            for code in codes or []:
                service_of(request, code)
            statuses = set(list_param(request, "status") or ())
            if statuses - {"open", "closed"}:
                raise BadRequest("status must be open or closed (comma-separated)")
            closed = None if len(statuses) != 1 else statuses == {"closed"}
            start, end = date_range(request, ctx.clock.now())
            rows = await open311.filed_between(conn, start, end, codes, closed, MAX_REQUESTS)
    views = [request_view(ctx, catalogue, row) for row in rows]
    return docs.render(_format(request), "service_requests", views)


async def get_request(request: web.Request) -> web.Response:
    ctx = context_of(request)
    number = request.match_info["id"]
    async with ctx.pool.acquire() as conn:
        rows = await open311.by_numbers(conn, [number])
    if not rows:
        raise NotFound(f"service_request_id {number!r} was not found")
    view = request_view(ctx, catalogue_of(request), rows[0])
    return docs.render(_format(request), "service_requests", [view])


async def get_token(request: web.Request) -> web.Response:
    ctx = context_of(request)
    token = request.match_info["token"]
    async with ctx.pool.acquire() as conn:
        number = await open311.number_of_token(conn, token)
    if number is None:
        raise NotFound(f"token {token!r} was not found")
    return docs.render(
        _format(request), "service_requests", [{"service_request_id": number, "token": token}]
    )


def add_routes(app: web.Application) -> None:
    sub = web.Application(middlewares=[open311_errors])
    sub[_CATALOGUE] = {}
    f = r"{format:json|xml}"
    sub.router.add_get(f"/discovery.{f}", discovery)
    sub.router.add_get(f"/services.{f}", services)
    sub.router.add_get(r"/services/{code:[^/.]+}." + f, service_definition)
    sub.router.add_post(f"/requests.{f}", post_request)
    sub.router.add_get(f"/requests.{f}", get_requests)
    sub.router.add_get(r"/requests/{id:[^/.]+}." + f, get_request)
    sub.router.add_get(r"/tokens/{token:[^/.]+}." + f, get_token)
    app.add_subapp(PREFIX, sub)
