"""Filing an Open311 POST as a work order, the same way as any channel's.

The description (with the place) goes through the NLU like a citizen's message: an emergency
is refused with the numbers to dial, as every channel says them; the request type and the unit
suggestions come from the NLU. The category's default unit leads when it has one (like the
unit an agent names, the dispatcher still weighs it against arbitration precedents); a shared
category goes to the territorial unit of the address when that is one of its units; otherwise
the NLU's routing decides, and an unsure one leaves the order in the dispatch desk's queue.
Then `Dispatcher.intake` in the same transaction: time limits, repeat reports, dispatch. The
work order's channel is `open311`; a contact phone makes the later revisit an SMS.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from channels.open311_services import Service
from nlu.types import REQUEST_TYPES, ParseResult
from services.context import Context
from services.conversation import replies
from services.core.errors import ServiceError
from services.storage import citizens, open311, work_orders
from services.storage.work_orders import Actor, NewWorkOrder

CHANNEL = "open311"


@dataclass
class Submission:
    """A validated POST requests (channels/open311.py reads and checks the form)."""

    service: Service
    api_key_id: int
    api_key_name: str
    description: str | None
    address_string: str | None
    lat: float | None = None
    long: float | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    media_url: str | None = None
    # attribute code -> a value, or a list of values for a multivaluelist
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str | None:
        if self.address_string:
            return self.address_string
        if self.lat is not None and self.long is not None:
            return f"经纬度 {self.lat:.6f},{self.long:.6f}"
        return f"地址编号 {self.address_id}" if self.address_id else None

    def content(self) -> str:
        """The matter in the citizen's words, with the attributes as the unit reads them."""
        lines = [self.description or self.service.name]
        for attribute in self.service.attributes:
            value = self.attributes.get(attribute.code)
            if value is None:
                continue
            names = dict(attribute.values)
            shown = [names.get(v, v) for v in (value if isinstance(value, list) else [value])]
            lines.append(f"{attribute.description}：{'、'.join(shown)}")
        return "\n".join(lines)

    def identity(self, token: str) -> str:
        """Who filed, as the API client knows them (each request alone when it does not say)."""
        who = self.account_id or self.device_id or self.email or self.phone or f"anon:{token}"
        return f"{self.api_key_name}:{who}"


@dataclass(frozen=True)
class Filed:
    request_number: str
    token: str
    lead_unit: str | None


def suggestions_for(service: Service, parse: ParseResult) -> list[dict[str, Any]]:
    """The unit suggestions the dispatcher decides from, for this category and this parse."""
    nlu = [
        {
            "code": u.code,
            "probability": round(u.probability, 4),
            "confident": i == 0 and parse.unit_confident,
        }
        for i, u in enumerate(parse.units)
    ]
    lead = service.unit
    if lead is None and service.units:
        address = parse.entities.address
        local = getattr(address, "territorial_unit", None) if address else None
        if local in service.units:
            lead = local
        elif nlu and nlu[0]["code"] not in service.units:
            nlu[0]["confident"] = False  # the NLU's pick is not one of the category's units
    if lead is None:
        return nlu
    return [{"code": lead, "probability": 1.0, "confident": True}] + [
        {**s, "confident": False} for s in nlu if s["code"] != lead
    ]


def _address(parse: ParseResult) -> dict[str, Any] | None:
    address = parse.entities.address
    if address is None:
        return None
    return {k: v for k, v in address.__dict__.items() if v is not None}


async def file_request(ctx: Context, sub: Submission) -> Filed:
    """File the submission as a work order and dispatch it; raises ServiceError(400) for an
    emergency (nothing is filed)."""
    content = sub.content()
    text = content + (f" {sub.address_string}" if sub.address_string else "")
    parse = await asyncio.to_thread(ctx.nlu.parse, text)
    if parse.emergency is not None:
        raise ServiceError(replies.emergency(parse.emergency.numbers), code="emergency")
    request_type = parse.request_type if parse.request_type in REQUEST_TYPES else "seek_help"
    token = secrets.token_urlsafe(12)
    now = ctx.clock.now()
    dispatcher = ctx.desk.dispatcher if ctx.desk is not None else ctx.conversation.dispatcher
    async with ctx.pool.acquire() as conn, conn.transaction():
        citizen_id = await citizens.for_identity(conn, CHANNEL, sub.identity(token))
        if sub.phone:
            citizen_id = await citizens.attach_phone(conn, citizen_id, sub.phone)
        order = await work_orders.create(
            conn,
            NewWorkOrder(
                citizen_id=citizen_id,
                conversation_id=None,
                source_message_id=None,
                channel=CHANNEL,
                request_type=request_type,
                content=content,
                location=sub.location,
                address=_address(parse),
                contact_phone=sub.phone,
                suggestions=suggestions_for(sub.service, parse),
            ),
            Actor(f"{CHANNEL}:{sub.api_key_name}", "citizen"),
            now,
        )
        intake = await dispatcher.intake(conn, order, now)
        await open311.insert_request(
            conn,
            order["id"],
            open311.RequestDetails(
                api_key_id=sub.api_key_id,
                service_code=sub.service.code,
                token=token,
                attributes=sub.attributes,
                lat=sub.lat,
                long=sub.long,
                address_id=sub.address_id,
                email=sub.email,
                device_id=sub.device_id,
                account_id=sub.account_id,
                first_name=sub.first_name,
                last_name=sub.last_name,
                media_url=sub.media_url,
            ),
            now,
        )
        await open311.touch_key(conn, sub.api_key_id, now)
    return Filed(order["request_number"], token, intake.decision.lead)
