"""Reading what an Open311 client sends: the form of a POST requests (checked against the
service's definition) and the filters of GET requests. Anything wrong is a BadRequest, which
the channel's error middleware answers as the spec's 400."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from channels.open311_filing import Submission
from channels.open311_keys import ApiKey
from channels.open311_services import LISTS, Attribute, Service
from services.core import phone_numbers
from services.core.errors import ServiceError

MAX_DESCRIPTION = 4000  # the spec's limit
MAX_FIELD = 200
MAX_URL = 2000
SPAN = timedelta(days=90)  # the spec's default and longest range
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")


class BadRequest(ServiceError):
    """The spec's 400: a request that cannot be fulfilled as it is."""


def text_field(form: MultiDictProxy, name: str, limit: int = MAX_FIELD) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str) or not value.strip():
        return None
    if "\x00" in value:
        raise BadRequest(f"{name} must not contain NUL characters", code=f"bad_{name}")
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", code=f"bad_{name}")
    return value.strip()


def _coordinate(form: MultiDictProxy, name: str, bound: float) -> float | None:
    raw = text_field(form, name)
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


def read_submission(service: Service, key: ApiKey, form: MultiDictProxy) -> Submission:
    lat, long = _coordinate(form, "lat", 90), _coordinate(form, "long", 180)
    if (lat is None) != (long is None):
        raise BadRequest("lat and long go together", code="bad_location")
    address_string = text_field(form, "address_string", MAX_FIELD)
    address_id = text_field(form, "address_id")
    if lat is None and not address_string and not address_id:
        raise BadRequest(
            "a location is required: lat and long, address_string or address_id",
            code="missing_location",
        )
    raw_phone = text_field(form, "phone")
    phone = phone_numbers.canonical(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        raise BadRequest(f"phone {raw_phone!r} is not a phone number", code="bad_phone")
    email = text_field(form, "email")
    if email and "@" not in email:
        raise BadRequest(f"email {email!r} is not an e-mail address", code="bad_email")
    media_url = text_field(form, "media_url", MAX_URL)
    if media_url and not media_url.startswith(("http://", "https://")):
        raise BadRequest("media_url must be an http:// or https:// URL", code="bad_media_url")
    return Submission(
        service=service,
        api_key_id=key.id,
        api_key_name=key.name,
        description=text_field(form, "description", MAX_DESCRIPTION),
        address_string=address_string,
        lat=lat,
        long=long,
        address_id=address_id,
        email=email,
        device_id=text_field(form, "device_id"),
        account_id=text_field(form, "account_id"),
        first_name=text_field(form, "first_name"),
        last_name=text_field(form, "last_name"),
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


def list_param(request: web.Request, name: str) -> list[str] | None:
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
