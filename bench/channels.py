"""Channel bench: how long the phone, SMS and WeChat webhooks take end to end on loopback
(signature check, conversation turn, NLU, storage, TwiML or XML reply), one citizen at a time
and many at once, and how fast outbound SMS go out through the twilio library.

    python bench/channels.py [--citizens 20] [--concurrent 20] [--sms 50]
                             [--out bench/results/channels.json]

The providers are the test fakes (tests/fakes/) on 127.0.0.1, so the figures are the
service's own time, not Twilio's or WeChat's. Runs in a temporary database on the configured
server (DATABASE_URL, or the embedded one in HOTLINE_DATA_DIR), dropped afterwards. Each
citizen files the same kind of complaint the tests use (3 webhooks by phone and WeChat, 2 by
SMS where the number is known).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from services.app import build_context, create_app  # noqa: E402
from services.cli.kb_tools import temporary_database  # noqa: E402
from services.config import Settings  # noqa: E402
from services.core.clock import SystemClock  # noqa: E402
from tests.support.fakes.twilio_api import FakeTwilio  # noqa: E402
from tests.support.fakes.webhooks import Caller, Follower, Texter, TwilioWebhooks  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChat  # noqa: E402
from tests.support.loopback import serve_on_loopback  # noqa: E402

SID, TOKEN, NUMBER = "AC" + "b" * 32, "c" * 32, "+15005550006"
PUBLIC = "https://12345.bench.example"
WX_TOKEN, WX_KEY, WX_APP = "benchtoken", "MTIzNDVzaGlzaGktaG90bGluZS1hZXMta2V5LTAwMDE", "wxbench"
COMPLAINT = "我要投诉，湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户，天天呛得不行"
SPOKEN = "我要投诉湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户天天呛得不行"


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 1),
        "max_ms": round(ms[-1], 1),
    }


async def timed(samples: list[float], coro):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    result = await coro
    samples.append((time.perf_counter() - started) * 1000)
    return result


async def by_sms(hooks: TwilioWebhooks, i: int, samples: list[float]) -> None:
    texter = Texter(hooks, f"+86138{60000000 + i:08d}", NUMBER)
    await timed(samples, texter.send(COMPLAINT))
    done = await timed(samples, texter.send("确认"))
    assert any("诉求编号" in m for m in done.messages), done.messages


async def by_phone(hooks: TwilioWebhooks, i: int, samples: list[float]) -> None:
    caller = Caller(hooks, f"+86139{60000000 + i:08d}", NUMBER)
    await timed(samples, caller.dial())
    await timed(samples, caller.say(SPOKEN))
    done = await timed(samples, caller.say("确认"))
    assert "杠" in done.spoken, done.says


async def by_wechat(url: str, crypto, i: int, samples: list[float]) -> None:  # noqa: ANN001
    fan = Follower(url, WX_TOKEN, SystemClock(), crypto=crypto)
    await timed(samples, fan.send_text(COMPLAINT))
    await timed(samples, fan.send_text(f"137{60000000 + i:08d}"))
    done = await timed(samples, fan.send_text("确认"))
    assert "诉求编号" in done.messages[0], done.text


async def run(args: argparse.Namespace) -> dict:
    from wechatpy.crypto import WeChatCrypto

    base = Settings.from_env()
    twilio = await FakeTwilio(SID, TOKEN).start()
    wechat = await FakeWeChat(WX_APP, "secret").start()
    out: dict = {
        "citizens": args.citizens,
        "concurrent": args.concurrent,
        "nlu_embeddings": base.use_embeddings,
    }
    async with temporary_database(base) as dsn:
        settings = base.with_overrides(
            database_url=dsn,
            public_url=PUBLIC,
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_from_number=NUMBER,
            twilio_api_base_url=twilio.url,
            wechat_token=WX_TOKEN,
            wechat_aes_key=WX_KEY,
            wechat_app_id=WX_APP,
            wechat_app_secret="secret",
            wechat_api_base_url=wechat.url,
            wechat_mode="compat",
        )
        ctx = await build_context(settings)
        runner, url = await serve_on_loopback(create_app(settings, context=ctx))
        hooks = TwilioWebhooks(url, PUBLIC, SID, TOKEN)
        crypto = WeChatCrypto(WX_TOKEN, WX_KEY, WX_APP)
        try:
            await by_sms(hooks, 99_999, [])  # warm-up: first NLU calls, pools
            flows = {
                "sms": lambda i, s: by_sms(hooks, i, s),
                "voice": lambda i, s: by_phone(hooks, i, s),
                "wechat_plain": lambda i, s: by_wechat(url, None, i, s),
                "wechat_safe": lambda i, s: by_wechat(url, crypto, i, s),
            }
            sequential = {}
            for name, flow in flows.items():
                samples: list[float] = []
                for i in range(args.citizens):
                    await flow(i, samples)
                sequential[name] = summary(samples)
            out["webhook_latency_one_at_a_time"] = sequential

            concurrent = {}
            for name, flow in flows.items():
                samples = []
                offset = 10_000 + 1_000 * len(concurrent)
                started = time.perf_counter()
                await asyncio.gather(*(flow(offset + i, samples) for i in range(args.concurrent)))
                elapsed = time.perf_counter() - started
                concurrent[name] = {
                    **summary(samples),
                    "filings_per_s": round(args.concurrent / elapsed, 1),
                }
            out["webhook_latency_concurrent"] = concurrent

            await ctx.outbox.drain()
            started = time.perf_counter()
            for i in range(args.sms):
                result = await ctx.outbox.send_sms(
                    f"136{60000000 + i:08d}", "您的诉求已办结，感谢您的耐心等待。", "bench"
                )
                assert result.ok, result
            elapsed = time.perf_counter() - started
            out["outbound_sms"] = {
                "n": args.sms,
                "per_message_ms": round(elapsed * 1000 / args.sms, 1),
                "note": "sequential, twilio AsyncTwilioHttpClient to the loopback fake, stored before and after",
            }
            async with ctx.pool.acquire() as conn:
                out["work_orders_filed"] = await conn.fetchval("SELECT count(*) FROM work_orders")
        finally:
            await runner.cleanup()
            await ctx.pool.close()
            await twilio.stop()
            await wechat.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--sms", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "channels.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
