"""The durable scheduler: leases, retries, a SIGKILLed process loses no job, and two worker
processes never send the same notification."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from services.core.clock import CHINA_TZ, SystemClock
from services.jobs.scheduler import Later, Scheduler
from services.storage import jobs
from services.supervision.lights import Supervision
from tests.support.desk import RecordingNotifier, file_order
from tests.support.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


async def _enqueue(pool, kind: str, when: datetime, **payload) -> int:
    async with pool.acquire() as conn:
        return await jobs.enqueue(conn, kind, payload, when)


async def test_jobs_retry_with_backoff_then_fail_and_leases_are_respected(desk_service, clock):
    pool = desk_service.pool
    calls: Counter = Counter()

    async def flaky(job):
        calls[job.id] += 1
        raise RuntimeError("provider down")

    async def recurring(job):
        calls["recurring"] += 1
        return Later(clock.now() + timedelta(minutes=1), reset_attempts=True)

    handlers = {"flaky": flaky, "recurring": recurring}
    a = Scheduler(pool, clock, handlers, worker_id="a", lease_seconds=60, retry_base_seconds=10)
    job_id = await _enqueue(pool, "flaky", clock.now())
    async with pool.acquire() as conn:
        await conn.execute("UPDATE scheduler_jobs SET max_attempts = 3 WHERE id = $1", job_id)
    await _enqueue(pool, "recurring", clock.now())
    other_kind = await _enqueue(pool, "unknown-kind", clock.now())
    report = await a.run_once()
    assert (report.retried, report.rescheduled) == (1, 1)  # flaky; recurring
    async with pool.acquire() as conn:
        row = await jobs.by_id(conn, job_id)
    assert row["run_at"] == clock.now() + timedelta(seconds=10)
    assert "provider down" in row["last_error"] and row["locked_by"] is None
    assert (await a.run_once()).ran == 0  # nothing due before the backoff ends
    clock.advance(seconds=10)
    assert (await a.run_once()).by_kind == {"flaky": 1}
    clock.advance(seconds=20)  # second backoff doubles
    report = await a.run_once()
    assert report.failed == 1 and calls[job_id] == 3
    async with pool.acquire() as conn:
        row = await jobs.by_id(conn, job_id)
    assert row["failed_at"] is not None and row["attempts"] == 3

    # a kind this worker cannot run is left alone for a process that can (a
    # deployment may run workers that know different job kinds)
    async with pool.acquire() as conn:
        untouched = await jobs.by_id(conn, other_kind)
    assert untouched["attempts"] == 0 and untouched["last_error"] is None
    ran: list[int] = []

    async def knows_it(job):
        ran.append(job.id)

    await Scheduler(pool, clock, {"unknown-kind": knows_it}, worker_id="b").run_once()
    assert ran == [other_kind]

    # a claimed job is not claimed again while its lease runs, and after it expires it is
    slow_started = asyncio.Event()
    release = asyncio.Event()

    async def slow(job):
        slow_started.set()
        await release.wait()

    slow_id = await _enqueue(pool, "slow", clock.now())
    holder = Scheduler(pool, clock, {"slow": slow}, worker_id="holder", lease_seconds=30)
    other_calls: list[int] = []

    async def other_slow(job):
        other_calls.append(job.id)

    other = Scheduler(pool, clock, {"slow": other_slow}, worker_id="other", lease_seconds=30)
    running = asyncio.create_task(holder.run_once())
    await slow_started.wait()
    assert (await other.run_once()).ran == 0
    clock.advance(seconds=31)  # the holder's lease has expired (as if its process hung)
    assert (await other.run_once()).done == 1 and other_calls == [slow_id]
    release.set()
    report = await running
    assert report.lost == 1, "the holder may not finish a job another worker took over"


def _worker(
    dsn: str, out: Path, mode: str, worker: str, lease: float, delay: float = 0.0
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.scheduler_worker",
            dsn,
            str(out),
            "--mode",
            mode,
            "--worker",
            worker,
            "--lease",
            str(lease),
            "--delay",
            str(delay),
        ],
        cwd=ROOT,
        env=dict(os.environ, HOTLINE_NOTIFY_HOURS="0-24"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _lights_with_jobs(svc, clock, orders: int) -> None:
    """Orders whose sign-for ran out long ago, scanned: two lights and two jobs each."""
    async with svc.pool.acquire() as conn:
        await conn.execute(
            "UPDATE units SET contact_phone = '13900000001' WHERE code = 'municipal-works'"
        )
    for _ in range(orders):
        await file_order(svc, at(2026, 11, 2, 10))
    clock.current = at(2026, 11, 3, 6)  # the yellow lights
    assert (await svc.desk.supervision.scan()).lights == orders
    clock.current = at(2026, 11, 3, 10)  # the red ones
    assert (await svc.desk.supervision.scan()).lights == orders


def _real_time_scheduler(svc, notifier, worker: str, lease: float) -> Scheduler:
    real = SystemClock()
    sup = Supervision(svc.pool, real, svc.desk.clocks, outbox=notifier, notify_hours=(0, 24))
    return Scheduler(svc.pool, real, sup.handlers(), worker_id=worker, lease_seconds=lease)


async def test_a_killed_process_loses_no_job(desk_service, clock, database_url, tmp_path):
    svc = desk_service
    await _lights_with_jobs(svc, clock, 1)
    out = tmp_path / "victim.txt"
    proc = _worker(database_url, out, "hang", "victim", lease=2.0)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text().startswith("sending")):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the worker never started sending"
            await asyncio.sleep(0.05)
        async with svc.pool.acquire() as conn:
            held = await conn.fetch(
                "SELECT id FROM scheduler_jobs WHERE locked_by = 'victim' AND done_at IS NULL"
            )
        assert len(held) == 2, "the victim holds both notification jobs"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop_process(proc, grace=0)
    rescuer_sms = RecordingNotifier()
    rescuer = _real_time_scheduler(svc, rescuer_sms, "rescuer", lease=30)
    # while the dead process's leases run, its jobs are left alone
    assert (await rescuer.run_once()).ran == 0
    await asyncio.sleep(2.2)
    report = await rescuer.run_once()
    assert report.done == 2, report
    assert len(rescuer_sms.sent) == 2
    async with svc.pool.acquire() as conn:
        light_ids = [r["id"] for r in await conn.fetch("SELECT id FROM supervision_lights")]
    assert {m["idempotency_key"] for m in rescuer_sms.sent} == {f"light:{i}" for i in light_ids}
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT attempts, done_at, failed_at FROM scheduler_jobs")
        notified = await conn.fetchval(
            "SELECT count(*) FROM supervision_lights WHERE notify_result = 'sent'"
        )
    assert all(r["done_at"] is not None and r["failed_at"] is None for r in rows)
    assert sorted(r["attempts"] for r in rows) == [2, 2]  # claimed by the victim, then again
    assert notified == 2


async def test_two_processes_never_send_the_same_notification(
    desk_service, clock, database_url, tmp_path
):
    svc = desk_service
    await _lights_with_jobs(svc, clock, 40)
    outs = [tmp_path / "one.txt", tmp_path / "two.txt"]
    procs = [
        _worker(database_url, outs[0], "record", "one", lease=30, delay=0.03),
        _worker(database_url, outs[1], "record", "two", lease=30, delay=0.03),
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stdout.read().decode()
    sent = [line.split("\t")[0] for path in outs for line in path.read_text().splitlines()]
    per_process = [len(path.read_text().splitlines()) for path in outs]
    assert len(sent) == 80 and len(set(sent)) == 80, Counter(sent).most_common(3)
    assert all(n > 0 for n in per_process), per_process  # both really worked
    async with svc.pool.acquire() as conn:
        summary = await jobs.summary(conn)
        notify_done = await conn.fetchval(
            "SELECT count(*) FROM scheduler_jobs WHERE kind = 'notify_light' AND done_at IS NOT NULL"
        )
    assert notify_done == 80 and summary["pending"] == 0 and summary["failed"] == 0


async def test_the_app_runs_the_scheduler_in_the_background(settings, clock):
    """With HOTLINE_SCHEDULER on, the service raises lights and texts units by itself."""
    from tests.support.desk import start_desk_service

    svc = await start_desk_service(
        settings.with_overrides(scheduler_poll_seconds=0.1), clock, scheduler=True
    )
    try:
        async with svc.pool.acquire() as conn:
            await conn.execute(
                "UPDATE units SET contact_phone = '13900000001' WHERE code = 'municipal-works'"
            )
        await file_order(svc, at(2026, 11, 23, 15))
        # in texting hours: yellow at 10:12 the next day, red at 15:00
        for moment, texts in ((at(2026, 11, 24, 11), 1), (at(2026, 11, 24, 15), 2)):
            clock.current = moment  # the sign-for light turns yellow, then red
            deadline = time.monotonic() + 20
            while len(svc.notifier.sent) < texts:
                assert time.monotonic() < deadline, svc.notifier.sent
                await asyncio.sleep(0.1)
        assert [m["purpose"] for m in svc.notifier.sent] == [
            "light:sign_for:yellow",
            "light:sign_for:red",
        ]
    finally:
        await svc.stop()


async def test_hotline_scheduler_once_from_the_command_line(
    desk_service, clock, database_url, tmp_path
):
    await _lights_with_jobs(desk_service, clock, 1)
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        HOTLINE_DATA_DIR=str(tmp_path),
        HOTLINE_NOTIFY_HOURS="0-24",
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "scheduler", "--once", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    # the two texts, then the recurring scan (started now, on the system clock) finds the
    # order's contact and handling limits long past too: four more lights, of which only the
    # red ones are texted (a yellow light past its deadline says nothing the red one does not);
    # the recurring jobs (light scan, SMS re-sending) are rescheduled
    report = json.loads(done.stdout)
    assert (report["done"], report["rescheduled"]) == (4, 2), done.stdout
    assert report["by_kind"]["outbound_retry"] == 1
    async with desk_service.pool.acquire() as conn:
        results = [
            r["notify_result"]
            for r in await conn.fetch("SELECT notify_result FROM supervision_lights")
        ]
    # no Twilio account in the test environment: recorded as such, not lost, not retried
    assert sorted(results) == ["not_configured"] * 4 + ["superseded_by_red"] * 2
