"""The working-day calendar: statutory holidays and adjusted working days, the 2027 fallback,
admin entries, and deadlines stored on orders."""

from __future__ import annotations

import logging
from datetime import date, datetime

import pytest

from services.core.clock import CHINA_TZ
from services.deadlines.timelimits import OrderClocks, TimeLimits
from services.deadlines.workdays import CalendarDay, CalendarError, WorkCalendar
from tests.support.desk import file_order, order_row, scheduler_for


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


def test_national_day_2026_and_its_make_up_working_days():
    cal = WorkCalendar()
    assert cal.source(2026) == "statutory"
    for day in range(1, 8):
        assert not cal.is_workday(date(2026, 10, day)), f"10-{day} is a holiday"
    # adjusted working weekends (调休): a Sunday and a Saturday
    assert date(2026, 9, 20).weekday() == 6 and cal.is_workday(date(2026, 9, 20))
    assert date(2026, 10, 10).weekday() == 5 and cal.is_workday(date(2026, 10, 10))
    assert not cal.is_workday(date(2026, 10, 11))  # the Sunday after is a rest day again


def test_limits_count_whole_working_days_at_the_same_time_of_day():
    cal = WorkCalendar()
    # Wednesday 30 September 10:00: the next working day is Thursday 8 October
    assert cal.add(at(2026, 9, 30, 10), 1) == at(2026, 10, 8, 10)
    assert cal.add(at(2026, 9, 30, 10), 2) == at(2026, 10, 9, 10)
    # the third working day is Saturday 10 October, a make-up working day
    assert cal.add(at(2026, 9, 30, 10), 3) == at(2026, 10, 10, 10)
    assert cal.add(at(2026, 9, 30, 10), 5) == at(2026, 10, 13, 10)
    # a clock started on Saturday 19 September runs from Sunday 20 September 00:00 (make-up day)
    assert cal.add(at(2026, 9, 19, 15), 1) == at(2026, 9, 21, 0)
    # started in the holiday: counting begins on 8 October
    assert cal.add(at(2026, 10, 3, 9, 30), 1) == at(2026, 10, 9, 0)
    # fractions: 0.8 of a working day is 19.2 hours of working-day time
    assert cal.add(at(2026, 9, 30, 10), 0.8) == at(2026, 10, 8, 5, 12)
    assert cal.elapsed(at(2026, 9, 30, 10), at(2026, 10, 8, 10)) == pytest.approx(1.0)


def test_a_deadline_crossing_into_2027_falls_back_with_one_warning(caplog):
    cal = WorkCalendar()
    assert cal.source(2027) == "fallback"
    with caplog.at_level(logging.WARNING, logger="services.deadlines.workdays"):
        # Wednesday 30 December 2026 + 5: Thu 31, Fri 1 Jan (not known: a weekday), Mon 4..Wed 6
        assert cal.add(at(2026, 12, 30, 10), 5) == at(2027, 1, 6, 10)
        assert cal.add(at(2026, 12, 31, 16), 2) == at(2027, 1, 4, 16)
        assert not cal.is_workday(date(2027, 1, 2))  # Saturday
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1, "one warning per unknown year, not one per day"
    assert "Monday-Friday" in warnings[0].getMessage()


def test_admin_entries_fill_the_unknown_year_and_win_over_the_package():
    cal = WorkCalendar(
        [
            CalendarDay(date(2027, 1, 1), False, "元旦"),
            CalendarDay(date(2027, 2, 6), True, "春节调休"),  # a Saturday
        ]
    )
    assert not cal.is_workday(date(2027, 1, 1))
    assert cal.is_workday(date(2027, 2, 6))
    assert cal.add(at(2026, 12, 30, 10), 5) == at(2027, 1, 7, 10)
    # a correction of a known year (e.g. a late State Council change) wins too
    cal.replace_overrides([CalendarDay(date(2026, 10, 8), False, "延长假期")])
    assert cal.add(at(2026, 9, 30, 10), 1) == at(2026, 10, 9, 10)


def test_a_calendar_without_working_days_is_an_error_not_a_hang():
    days = [
        CalendarDay(date(2027, 1, 1).fromordinal(date(2027, 1, 1).toordinal() + i), False)
        for i in range(500)
    ]
    with pytest.raises(CalendarError):
        WorkCalendar(days).add(at(2027, 1, 1, 10), 1)


def test_clock_thresholds_use_the_yellow_share():
    clocks = OrderClocks(WorkCalendar(), TimeLimits(yellow_share=0.5))
    yellow, due = clocks.thresholds("handling", at(2026, 9, 30, 10))
    assert due == at(2026, 10, 13, 10)
    assert yellow == clocks.calendar.add(at(2026, 9, 30, 10), 2.5) == at(2026, 10, 9, 22)
    with pytest.raises(ValueError):
        TimeLimits(yellow_share=1.0)


async def test_deadlines_are_stored_on_the_order_across_national_day(desk_service):
    order, intake = await file_order(desk_service, at(2026, 9, 30, 10))
    assert intake.decision.lead == "municipal-works"
    row = await order_row(desk_service, order["request_number"])
    assert row["status"] == "dispatched"
    assert row["dispatch_due_at"] == at(2026, 10, 8, 10)
    assert row["sign_for_due_at"] == at(2026, 10, 8, 10)
    assert row["contact_due_at"] == at(2026, 10, 9, 10)
    assert row["handling_due_at"] == at(2026, 10, 13, 10)
    # yellow after 0.8 of the limit: 19.2 hours of working-day time
    assert row["sign_for_yellow_at"] == at(2026, 10, 8, 5, 12)
    assert row["handling_yellow_at"] == at(2026, 10, 12, 10)


async def test_admin_calendar_api_and_recomputed_deadlines(desk_service, clock, caplog):
    import aiohttp

    from tests.support.desk import login, make_user

    clock.current = at(2026, 12, 30, 10)
    order, _ = await file_order(desk_service, clock.now())
    row = await order_row(desk_service, order["request_number"])
    assert row["handling_due_at"] == at(2027, 1, 6, 10)  # fallback: 1 January counted
    await make_user(desk_service, "root", "admin")
    await make_user(desk_service, "sup", "supervisor")
    async with aiohttp.ClientSession() as http:
        admin = await login(http, desk_service, "root")
        status, body = await admin.call(
            "PUT", "/api/admin/calendar/2027-01-01", {"workday": False, "name": "元旦"}
        )
        assert status == 200, body
        status, body = await admin.call("PUT", "/api/admin/calendar/2027-13-01", {"workday": False})
        assert (status, body["error"]) == (400, "bad_day")
        status, body = await admin.call("PUT", "/api/admin/calendar/2027-01-04", {"workday": "no"})
        assert (status, body["error"]) == (400, "bad_workday")
        status, body = await admin.get("/api/admin/calendar?year=2027")
        assert status == 200
        assert body["source"] == "fallback"
        assert "2027-01-01" in body["rest_days_on_weekdays"]
        assert body["entered"][0]["name"] == "元旦"
        sup = await login(http, desk_service, "sup")
        assert (await sup.get("/api/admin/calendar"))[0] == 403
    # the scheduler recomputes the clocks that run across the new holiday
    report = await scheduler_for(desk_service.ctx).run_once()
    assert report.by_kind.get("recompute_deadlines") == 1
    row = await order_row(desk_service, order["request_number"])
    assert row["handling_due_at"] == at(2027, 1, 7, 10)
    assert row["contact_due_at"] == at(2027, 1, 4, 10)


def test_cli_enters_holidays_for_an_unknown_year(database_url, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, DATABASE_URL=database_url, HOTLINE_DATA_DIR=str(tmp_path))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "calendar", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = cli("add", "2027-01-01", "--holiday", "--name", "元旦")
    assert done.returncode == 0, done.stderr
    done = cli("list", "--year", "2027", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["source"] == "fallback"
    assert listing["entered"] == ["2027-01-01 holiday 元旦"]
    # 2027 has 261 weekdays; one of them is now a holiday
    assert listing["working_days"] == 260
    done = cli("add", "2027-02-30", "--holiday")
    assert done.returncode == 2 and "not a date" in done.stderr
