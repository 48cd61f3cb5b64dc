"""The outbox's failures and retries on /metrics, with the real Twilio library against the
fake Twilio API (tests/support/fakes)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tests.support.service import start_service


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def quiet_hotline(channel_settings, clock, nlu_engine):
    """Without the background scheduler: the test runs the re-sending itself."""
    running = await start_service(
        channel_settings.with_overrides(scheduler_enabled=False), clock, nlu_engine
    )
    yield running
    await running.stop()


async def test_failures_and_retries_are_counted(quiet_hotline, fake_twilio, clock):
    outbox = quiet_hotline.ctx.outbox
    failed = ("hotline_outbound_failures_total", "kind", "passing")
    final = ("hotline_outbound_failures_total", "kind", "final")
    resent = ("hotline_outbound_retries_total", "outcome", "sent")
    again = ("hotline_outbound_retries_total", "outcome", "again")

    def now(key: tuple) -> float:
        name, label, value = key
        return sample(name, channel="sms", **{label: value})

    before = {key: now(key) for key in (failed, final, resent, again)}

    fake_twilio.fail_next = 2  # Twilio answers 500 twice: a passing trouble
    assert (await outbox.send_sms("13859902021", "通知", "progress")).status == "failed"
    clock.advance(minutes=1)
    await outbox.retry_due()  # fails again: another try later
    clock.advance(minutes=2)
    await outbox.retry_due()  # goes out
    assert len(fake_twilio.messages) == 1

    def moved(key: tuple) -> float:
        return now(key) - before[key]

    assert (moved(failed), moved(final), moved(again), moved(resent)) == (1, 0, 1, 1)
