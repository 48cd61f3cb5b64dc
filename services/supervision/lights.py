"""The five supervision points (and the centre's own dispatch limit), their lights and the SMS.

Points and when their lights go on:

| point          | 督办点   | yellow                                   | red                               |
|----------------|----------|------------------------------------------|-----------------------------------|
| `sign_for`     | 签收超时 | share of the 1-day sign-for limit gone   | not signed for in time            |
| `contact`      | 回复超时 | share of the 2-day contact limit gone    | citizen not contacted in time     |
| `handling`     | 办理超时 | share of the 5-day handling limit gone   | not resolved in time              |
| `returned`     | 退回重派 | a returned order is dispatched again     | returned a second time, or disputed (arbitration) |
| `dissatisfied` | 回访不满意 | (none: no warning before a verdict)     | every dissatisfied revisit        |
| `dispatch`     | (centre) | share of the 1-day dispatch limit gone   | not dispatched within 1 working day |

Each light is raised once per clock (the clocks restart with each dispatch; the fifth point's
"clock" is the n-th dissatisfaction of the order), guaranteed by a unique key, and each new
light queues one `notify_light` job: an SMS to the unit's contact
(the supervision desk for the centre's own point). Timed lights come from the set-based scan
(a recurring `light_scan` job); the event lights are raised with the event that causes them.
"""

from __future__ import annotations

import logging
import time as walltime
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

import asyncpg

from services.core.clock import CHINA_TZ, Clock, next_allowed
from services.core.pii import mask_recipient
from services.deadlines import workdays
from services.deadlines.timelimits import OrderClocks
from services.jobs.scheduler import Handler, Later
from services.orders import states
from services.storage import jobs, lights, work_orders
from services.storage.jobs import Job
from services.storage.work_orders import Actor

log = logging.getLogger(__name__)

POINT_LABELS = {
    "dispatch": "派单超时",
    "sign_for": "签收超时",
    "contact": "回复超时",
    "handling": "办理超时",
    "returned": "退回重派",
    "dissatisfied": "回访不满意",
}
COLOR_LABELS = {"yellow": "黄灯预警", "red": "红灯督办"}
SYSTEM = Actor("supervision", "system")


class Outbound(Protocol):
    """Sends a message on a channel: the outbox (services/outbound/outbox.py), which sends
    nothing twice for one idempotency key."""

    async def send(
        self,
        channel: str,
        recipient: str,
        text: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        work_order_id: int | None = None,
    ) -> object: ...


# the longest stretch of time one scan transaction covers
SCAN_SLICE = timedelta(hours=6)


@dataclass
class ScanReport:
    crossings: int  # thresholds passed in the scanned stretch, of running clocks
    lights: int  # new lights (a crossing already lit is not raised twice)
    seconds: float


def _when(moment: datetime | None) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%m月%d日%H:%M") if moment else ""


def light_message(light: asyncpg.Record) -> str:
    """The SMS for a light. No citizen's words or details in it: only the request number."""
    point, color = light["point"], light["color"]
    who = f"{light['unit_name']}：" if light["unit_name"] else "督查股："
    head = f"【12345督办】{who}工单{light['request_number']}{POINT_LABELS[point]}{COLOR_LABELS[color]}，"
    if point in ("sign_for", "contact", "handling", "dispatch"):
        action = {
            "dispatch": "派单",
            "sign_for": "签收",
            "contact": "联系诉求人",
            "handling": "办结并反馈",
        }[point]
        if color == "yellow":
            body = f"请于{_when(light['due_at'])}前{action}。"
        else:
            body = f"已超过{_when(light['due_at'])}的{action}时限，请立即办理。"
    elif point == "returned":
        body = (
            "该件经退回后重新派发，请尽快签收办理。"
            if color == "yellow"
            else "该件再次被退回或存在争议，已转裁定。"
        )
    elif light["cycle"] <= 1:
        body = "市民回访不满意，已退回原单位重办，请重新联系诉求人。"
    else:
        body = f"重办后市民第{light['cycle']}次回访仍不满意，请单位负责人督办。"
    return head + body + "详情请登录12345工单系统。"


class Supervision:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        clocks: OrderClocks,
        *,
        outbox: Outbound | None = None,
        supervision_phone: str | None = None,
        notify_hours: tuple[int, int] = (8, 21),
        scan_interval: float = 60.0,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.clocks = clocks
        self.outbox = outbox
        self.supervision_phone = supervision_phone
        self.notify_hours = notify_hours
        self.scan_interval = timedelta(seconds=scan_interval)

    # -- the scan -------------------------------------------------------------------------

    async def scan(self, now: datetime | None = None) -> ScanReport:
        """Raise every light whose threshold has passed since the last scan.

        A long stretch (the first scan, or after downtime) goes in slices of SCAN_SLICE, one
        transaction each, so the watermark moves on as the work gets done."""
        now = now or self.clock.now()
        started = walltime.perf_counter()
        async with self.pool.acquire() as conn:
            after = await lights.watermark(conn)
        crossed = raised = 0
        while after is None or after < now:
            async with self.pool.acquire() as conn, conn.transaction():
                upcoming = await lights.next_threshold(conn, after)
                if upcoming is None or upcoming > now:
                    until = now  # nothing more to raise: only the watermark moves
                    after = after or now
                else:
                    # jump over a quiet stretch, then take at most one slice
                    just_before = upcoming - timedelta(microseconds=1)
                    after = just_before if after is None else max(after, just_before)
                    until = min(now, after + SCAN_SLICE)
                seen, new = await lights.scan_window(conn, after, until, now)
            crossed += seen
            raised += new
            after = until
        return ScanReport(crossed, raised, walltime.perf_counter() - started)

    # -- event lights ---------------------------------------------------------------------

    @staticmethod
    async def raise_event_light(
        conn: asyncpg.Connection,
        order_id: int,
        point: str,
        color: str,
        unit: str | None,
        at: datetime,
        cycle: int = 0,
    ) -> int | None:
        """Raise a light of an event point (returned, dissatisfied); once per order, colour
        and cycle."""
        if point not in lights.EVENT_POINTS:
            raise ValueError(f"{point!r} is not an event point")
        return await lights.raise_light(conn, order_id, point, color, cycle, unit, None, at)

    async def raise_dissatisfied_light(
        self,
        order_id: int,
        *,
        conn: asyncpg.Connection | None = None,
        comment: str | None = None,
        actor: Actor | None = None,
        at: datetime | None = None,
    ) -> str | None:
        """The citizen was dissatisfied at the revisit (for the revisit service, issue 7).

        Call this instead of recording `revisit_dissatisfied` yourself: the event is recorded
        (the resolved order goes back to the same unit, whose contact and handling clocks
        restart), then the fifth point's light is raised red at once (issue 7: the citizen's
        verdict is the deadline; there is nothing to warn of first). Each dissatisfaction is
        its own light (cycle = the n-th dissatisfaction of the order), so the unit is texted
        every time the order comes back, and calling this twice for one dissatisfaction raises
        nothing more. (If you did record the event, call this once right after it: it starts
        the clocks.) Returns the colour raised, or None. Raises TransitionError for an order
        that is neither resolved nor just reopened. With `conn`, runs inside the caller's
        transaction.
        """
        if conn is None:
            async with self.pool.acquire() as own, own.transaction():
                return await self.raise_dissatisfied_light(
                    order_id, conn=own, comment=comment, actor=actor, at=at
                )
        at = at or self.clock.now()
        state = await work_orders.clock_state(conn, order_id)
        if state is None:
            raise LookupError(f"work order {order_id} does not exist")
        if state["status"] == states.RESOLVED:
            await self.clocks.record(
                conn,
                order_id,
                "revisit_dissatisfied",
                actor or SYSTEM,
                at,
                unit=state["lead_unit"],
                note=comment,
            )
            cycle = state["dissatisfied_count"] + 1
        elif await work_orders.last_event_kind(conn, order_id) == "revisit_dissatisfied":
            cycle = await work_orders.event_count(conn, order_id, "revisit_dissatisfied")
            if state["dissatisfied_count"] < cycle:
                # recorded by the caller without the clocks: start them now (only once, so a
                # repeated call neither restarts them nor counts the dissatisfaction twice)
                changes = self.clocks.changes_for("revisit_dissatisfied", state, at)
                await work_orders.set_clocks(conn, order_id, changes)
        else:
            raise states.TransitionError(
                f"dissatisfaction needs a resolved order; this one is {state['status']!r}"
            )
        raised = await self.raise_event_light(
            conn, order_id, "dissatisfied", "red", state["lead_unit"], at, cycle=cycle
        )
        return "red" if raised is not None else None

    # -- jobs -----------------------------------------------------------------------------

    def handlers(self, calendar: workdays.WorkCalendar | None = None) -> dict[str, Handler]:
        async def light_scan(job: Job) -> Later:
            if calendar is not None:
                await workdays.refresh(calendar, self.pool)
            report = await self.scan()
            if report.lights:
                log.info(
                    "light scan: %d thresholds passed, %d lights raised in %.2fs",
                    report.crossings,
                    report.lights,
                    report.seconds,
                )
            return Later(self.clock.now() + self.scan_interval, reset_attempts=True)

        return {
            "light_scan": light_scan,
            "notify_light": self._notify_light,
            "notify_escalation": self._notify_escalation,
            "recompute_deadlines": self._recompute_deadlines,
        }

    async def ensure_recurring(self) -> None:
        async with self.pool.acquire() as conn:
            await jobs.enqueue(
                conn,
                "light_scan",
                {},
                self.clock.now(),
                dedupe_key="light_scan",
                max_attempts=1_000_000,
            )

    def _quiet_until(self, now: datetime) -> datetime | None:
        """When texting is not allowed now (night), the moment it is allowed again."""
        allowed = next_allowed(now, self.notify_hours, self.clocks.calendar.tz)
        return allowed if allowed > now else None

    async def _send(
        self, to: str | None, body: str, purpose: str, key: str, order_id: int | None = None
    ) -> str:
        """Send one SMS; the result as stored with the light (sent, no_contact, ...)."""
        if not to:
            return "no_contact"
        if self.outbox is None:
            log.warning("no outbox in this process; %s for %s not sent", purpose, to)
            return "not_configured"
        try:
            result = await self.outbox.send(
                "sms", to, body, purpose, idempotency_key=key, work_order_id=order_id
            )
        except ValueError as exc:  # not a phone number: retrying will not help
            log.warning("%s: cannot text %s: %s", purpose, mask_recipient(to), exc)
            return "invalid_recipient"
        return str(getattr(result, "status", None) or "sent")

    async def _notify_light(self, job: Job) -> Later | None:
        quiet = self._quiet_until(self.clock.now())
        if quiet is not None:
            return Later(quiet)
        async with self.pool.acquire() as conn, conn.transaction():
            # the row lock is held while sending: a second worker waits and then sees it sent
            light = await lights.for_notification(conn, int(job.payload["light_id"]))
            if light is None or light["notified_at"] is not None:
                return None
            to = light["contact_phone"] if light["unit_code"] else self.supervision_phone
            result = await self._send(
                to,
                light_message(light),
                f"light:{light['point']}:{light['color']}",
                f"light:{light['id']}",
                light["work_order_id"],
            )
            await lights.mark_notified(conn, light["id"], self.clock.now(), result)
        return None

    async def _notify_escalation(self, job: Job) -> Later | None:
        quiet = self._quiet_until(self.clock.now())
        if quiet is not None:
            return Later(quiet)
        body = (
            f"【12345督办】督查股：同一问题已第{job.payload['reports']}次反映"
            f"（工单{job.payload['request_number']}），已提级督办，请协调处理。"
        )
        await self._send(
            self.supervision_phone,
            body,
            "escalation",
            f"escalation:{job.payload['request_number']}",
        )
        return None

    async def _recompute_deadlines(self, job: Job) -> None:
        """After the calendar changed: recompute the running clocks that reach past a day."""
        since = date.fromisoformat(job.payload["from_day"])
        start = datetime.combine(since, time(0), self.clocks.calendar.tz)
        last_id = 0
        while True:
            async with self.pool.acquire() as conn:
                ids = await work_orders.open_ids_due_after(conn, last_id, start, 500)
                if not ids:
                    return
                async with conn.transaction():
                    for order_id in ids:
                        await self.clocks.restart_all(conn, order_id)
                    # a threshold may have moved to before the last scan: look again from there
                    await lights.rewind_watermark(conn, start)
            last_id = ids[-1]
