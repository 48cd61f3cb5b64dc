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

import math
import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from channels import open311_docs as docs
from channels import open311_keys as keys
from channels.open311_filing import CHANNEL, Submission, datetime_w3, file_request, status_notes
from channels.open311_services import (
    ATTRIBUTES_FILE,
    LISTS,
    Attribute,
    Catalogue,
    Service,
    build_catalogue,
)
from services.context import Context, context_of
from services.core import phone_numbers
from services.core.errors import NotFound, ServiceError
from services.http.errors import as_service_error
from services.orders import states
from services.storage import open311

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_DESCRIPTION = 4000  # the spec's limit
MAX_FIELD = 200
MAX_URL = 2000
MAX_IDS = 100
SPAN = timedelta(days=90)  # the spec's default and longest range
MAX_REQUESTS = 1000  # the spec's default query limit
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
_FORMAT = re.compile(r"\.(json|xml)$")


class BadRequest(ServiceError):
    """The spec's 400: a request that cannot be fulfilled as it is."""


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
            raise  # the main app's middleware logs it and answers 500
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


# -- the views ----------------------------------------------------------------------------------


def service_view(s: Service) -> dict[str, Any]:
    return {
        "service_code": s.code,
        "service_name": s.name,
        "description": s.description,
        "metadata": s.metadata,
        "type": "",  # set by the handler from the settings
        "keywords": ", ".join(s.keywords),
        "group": s.group,
    }


def attribute_view(a: Attribute) -> dict[str, Any]:
    return {
        "variable": True,
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": None,
        "order": a.order,
        "description": a.description,
        "values": [{"key": key, "name": name} for key, name in a.values],
    }


def service_notice(ctx: Context, status: str) -> str | None:
    """What the time limits promise from where the order is now."""
    s = ctx.settings
    if status in states.DISPATCH_QUEUE or status == states.ARBITRATION:
        return f"热线将在{s.limit_dispatch_days:g}个工作日内派发承办单位"
    if status in (states.DISPATCHED, states.SIGNED, states.CONTACTED):
        return (
            f"承办单位{s.limit_sign_for_days:g}个工作日内签收，{s.limit_contact_days:g}个工作日内"
            f"联系核实，{s.limit_handling_days:g}个工作日内办结答复"
        )
    return None


def request_view(ctx: Context, catalogue: Catalogue, row: Any) -> dict[str, Any]:
    service = catalogue.get(row["service_code"]) if row["service_code"] else None
    unit = ctx.units.name(row["lead_unit"]) if row["lead_unit"] else None
    published = row["channel"] == CHANNEL  # what another channel was told stays there
    return {
        "service_request_id": row["request_number"],
        "status": "closed" if row["status"] == states.CLOSED else "open",
        "status_notes": status_notes(row, unit),
        "service_name": service.name if service else None,
        "service_code": row["service_code"],
        "description": row["content"] if published else None,
        "agency_responsible": unit,
        "service_notice": service_notice(ctx, row["status"]),
        "requested_datetime": datetime_w3(row["created_at"]),
        "updated_datetime": datetime_w3(row["updated_at"]),
        "expected_datetime": datetime_w3(row["handling_due_at"]),
        "address": row["location"] if published else None,
        "address_id": row["address_id"],
        "zipcode": None,
        "lat": row["lat"],
        "long": row["long"],
        "media_url": row["media_url"],
    }


# -- reading a POST -----------------------------------------------------------------------------


def _text(form: MultiDictProxy, name: str, limit: int = MAX_FIELD) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str) or not value.strip():
        return None
    if "\x00" in value:
        raise BadRequest(f"{name} must not contain NUL characters", code=f"bad_{name}")
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", code=f"bad_{name}")
    return value.strip()


def _coordinate(form: MultiDictProxy, name: str, bound: float) -> float | None:
    raw = _text(form, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > bound:
        raise BadRequest(f"{name} must be a number between -{bound:g} and {bound:g}")
    return value


def _attribute_value(a: Attribute, values: list[str]) -> Any:
    values = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    if not values:
        return None
    if a.datatype != "multivaluelist" and len(values) > 1:
        raise BadRequest(f"attribute[{a.code}] takes one value")
    if a.datatype in LISTS:
        allowed = {key for key, _ in a.values}
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise BadRequest(
                f"attribute[{a.code}] must be one of {', '.join(sorted(allowed))}, got {wrong[0]!r}"
            )
        return values if a.datatype == "multivaluelist" else values[0]
    value = values[0]
    if len(value) > (MAX_DESCRIPTION if a.datatype == "text" else MAX_FIELD):
        raise BadRequest(f"attribute[{a.code}] is too long")
    if a.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise BadRequest(f"attribute[{a.code}] must be a number, got {value!r}")
    if a.datatype == "datetime":
        _w3(value, f"attribute[{a.code}]")
    return value


def read_attributes(service: Service, form: MultiDictProxy) -> dict[str, Any]:
    given: dict[str, list[str]] = {}
    for key in form:
        found = _ATTRIBUTE.match(key)
        if found and found.group(1) not in given:
            given[found.group(1)] = [v for v in form.getall(key) if isinstance(v, str)]
    unknown = sorted(set(given) - {a.code for a in service.attributes})
    if unknown:
        raise BadRequest(f"service {service.code} has no attribute {unknown[0]!r}")
    values: dict[str, Any] = {}
    for a in service.attributes:
        value = _attribute_value(a, given.get(a.code, []))
        if value is None and a.required:
            raise BadRequest(f"attribute[{a.code}] ({a.description}) is required")
        if value is not None:
            values[a.code] = value
    return values


def read_submission(service: Service, key: keys.ApiKey, form: MultiDictProxy) -> Submission:
    lat, long = _coordinate(form, "lat", 90), _coordinate(form, "long", 180)
    if (lat is None) != (long is None):
        raise BadRequest("lat and long go together", code="bad_location")
    address_string = _text(form, "address_string", MAX_FIELD)
    address_id = _text(form, "address_id")
    if lat is None and not address_string and not address_id:
        raise BadRequest(
            "a location is required: lat and long, address_string or address_id",
            code="missing_location",
        )
    raw_phone = _text(form, "phone")
    phone = phone_numbers.canonical(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        raise BadRequest(f"phone {raw_phone!r} is not a phone number", code="bad_phone")
    email = _text(form, "email")
    if email and "@" not in email:
        raise BadRequest(f"email {email!r} is not an e-mail address", code="bad_email")
    media_url = _text(form, "media_url", MAX_URL)
    if media_url and not media_url.startswith(("http://", "https://")):
        raise BadRequest("media_url must be an http:// or https:// URL", code="bad_media_url")
    return Submission(
        service=service,
        api_key_id=key.id,
        api_key_name=key.name,
        description=_text(form, "description", MAX_DESCRIPTION),
        address_string=address_string,
        lat=lat,
        long=long,
        address_id=address_id,
        email=email,
        device_id=_text(form, "device_id"),
        account_id=_text(form, "account_id"),
        first_name=_text(form, "first_name"),
        last_name=_text(form, "last_name"),
        phone=phone,
        media_url=media_url,
        attributes=read_attributes(service, form),
    )


# -- reading GET requests' filters ----------------------------------------------------------


def _w3(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise BadRequest(f"{name} must be a w3 datetime like 2010-01-01T00:00:00Z") from exc
    if value.tzinfo is None:
        raise BadRequest(f"{name} must include a timezone (Z or +08:00)")
    return value


def _list(request: web.Request, name: str) -> list[str] | None:
    raw = ",".join(request.query.getall(name, []))
    items = [item.strip() for item in raw.split(",") if item.strip()]
    return items or None


def date_range(request: web.Request, now: datetime) -> tuple[datetime, datetime]:
    start = request.query.get("start_date") or None
    end = request.query.get("end_date") or None
    end_at = _w3(end, "end_date") if end else None
    start_at = _w3(start, "start_date") if start else None
    if start_at is None and end_at is None:
        end_at = now
    if start_at is None:
        start_at = end_at - SPAN
    if end_at is None:
        end_at = min(start_at + SPAN, max(now, start_at))
    if end_at < start_at:
        raise BadRequest("end_date is before start_date")
    if end_at - start_at > SPAN:
        raise BadRequest("start_date and end_date may not span more than 90 days")
    return start_at, end_at


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
    listed = [{**service_view(s), "type": kind} for s in catalogue_of(request).services]
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
    service = service_of(request, _text(form, "service_code"))
    filed = await file_request(ctx, read_submission(service, key, form))
    notice = service_notice(ctx, states.DISPATCHED if filed.lead_unit else states.AWAITING_DISPATCH)
    answer: dict[str, Any] = (
        {"token": filed.token}
        if ctx.settings.open311_type == "batch"
        else {"service_request_id": filed.request_number}
    )
    answer.update({"service_notice": notice, "account_id": _text(form, "account_id")})
    return docs.render(_format(request), "service_requests", [answer])


async def get_requests(request: web.Request) -> web.Response:
    ctx = context_of(request)
    catalogue = catalogue_of(request)
    numbers = _list(request, "service_request_id")
    async with ctx.pool.acquire() as conn:
        if numbers:  # "this overrides all other arguments"
            if len(numbers) > MAX_IDS:
                raise BadRequest(f"at most {MAX_IDS} service_request_id at once")
            rows = await open311.by_numbers(conn, numbers)
        else:
            codes = _list(request, "service_code")
            for code in codes or []:
                service_of(request, code)
            statuses = set(_list(request, "status") or ())
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
