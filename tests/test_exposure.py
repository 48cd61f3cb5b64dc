"""Demo accounts and secrets on a public bind: demo accounts only on loopback (or when asked),
`hotline serve` refuses a public address while a demo password is in use or a provider's
secret is missing, and `hotline users rotate-demo` / `passwd` replace the demo passwords."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import asyncpg
import pytest

from services.config import Settings, demo_accounts_wanted, is_loopback, public_bind_problems
from services.staff import accounts
from services.storage import db
from tests.support.processes import free_port
from tests.support.serve_process import serve_env, serving


def test_loopback_and_demo_account_rules():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "hotline.example"))
    assert demo_accounts_wanted(Settings(host="127.0.0.1"))
    assert not demo_accounts_wanted(Settings(host="0.0.0.0"))
    assert demo_accounts_wanted(Settings(host="0.0.0.0", demo_accounts=True))
    assert not demo_accounts_wanted(Settings(host="127.0.0.1", demo_accounts=False))
    assert not demo_accounts_wanted(Settings(host="127.0.0.1", load_demo_data=False))


def test_provider_secrets_are_guarded_on_a_public_bind():
    twilio = {"twilio_account_sid": "AC" + "1" * 32, "twilio_auth_token": "short"}
    assert public_bind_problems(Settings(host="127.0.0.1", **twilio)) == []
    problems = public_bind_problems(Settings(host="0.0.0.0", **twilio))
    assert any("HOTLINE_TWILIO_AUTH_TOKEN" in p for p in problems)
    assert any("HOTLINE_PUBLIC_URL" in p for p in problems)
    wechat = {"wechat_app_id": "wx1", "wechat_app_secret": "s" * 31}
    problems = public_bind_problems(Settings(host="0.0.0.0", **wechat))
    assert {p.split()[0] for p in problems} == {
        "HOTLINE_WECHAT_TOKEN",
        "HOTLINE_WECHAT_APP_SECRET",
        "HOTLINE_PUBLIC_URL",
    }
    good = Settings(
        host="0.0.0.0",
        public_url="https://12345.example.gov.cn",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="9f" * 16,
        wechat_app_id="wx1",
        wechat_token="token12345",
        wechat_app_secret="s" * 32,
    )
    assert public_bind_problems(good) == []
    assert public_bind_problems(Settings(host="0.0.0.0")) == []


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def _user_names(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["username"] for r in await conn.fetch("SELECT username FROM users")]
    finally:
        await conn.close()


def _login(url: str, username: str, password: str) -> int:
    request = urllib.request.Request(
        url + "/api/auth/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_public_bind_with_demo_passwords_is_refused_until_rotated(database_url, tmp_path):
    env = serve_env(database_url, tmp_path)
    # a public bind does not create the demo accounts
    with serving(env, host="0.0.0.0"):
        pass
    assert await _user_names(database_url) == []
    pool = await db.connect(database_url, min_size=1, max_size=2)
    try:
        assert await accounts.ensure_demo_users(pool) == len(accounts.DEMO_USERS)
    finally:
        await pool.close()

    refused = _cli(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.startswith("hotline:")]
    assert len(lines) == 1, refused.stderr
    assert "demo password" in lines[0] and "rotate-demo" in lines[0] and "admin" in lines[0]
    assert "Traceback" not in refused.stderr
    # asked for on purpose, a demo on a public address starts
    with serving(dict(env, HOTLINE_DEMO_ACCOUNTS="1"), host="0.0.0.0"):
        pass

    # the published password cannot be set again by hand
    again = _cli(env, "users", "passwd", "agent", stdin=f"{accounts.DEMO_PASSWORD}\n")
    assert again.returncode == 2 and "published" in again.stderr
    changed = _cli(env, "users", "passwd", "agent", stdin="a-new-agent-password\n")
    assert changed.returncode == 0, changed.stderr
    rotated = _cli(env, "users", "rotate-demo", "--json")
    assert rotated.returncode == 0, rotated.stderr
    fresh = json.loads(rotated.stdout)
    assert set(fresh) == {name for name, *_ in accounts.DEMO_USERS} - {"agent"}
    assert len(set(fresh.values())) == len(fresh) and all(len(p) >= 16 for p in fresh.values())
    assert _cli(env, "users", "rotate-demo").stdout.strip() == "no account has the demo password"

    with serving(env, host="0.0.0.0") as url:
        assert _login(url, "admin", accounts.DEMO_PASSWORD) == 401
        assert _login(url, "admin", fresh["admin"]) == 200
        assert _login(url, "agent", "a-new-agent-password") == 200


def test_public_bind_without_provider_secrets_is_refused(database_url, tmp_path):
    env = serve_env(database_url, tmp_path, HOTLINE_TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    env.pop("HOTLINE_TWILIO_AUTH_TOKEN", None)
    done = _cli(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 2
    assert "HOTLINE_TWILIO_AUTH_TOKEN" in done.stderr and "Traceback" not in done.stderr
    # the same on loopback is a developer's machine: it starts
    with serving(env):
        pass


def test_demo_password_rule():
    with pytest.raises(accounts.AccountError, match="published"):
        accounts.check_password_rules(accounts.DEMO_PASSWORD)
    accounts.check_password_rules(accounts.DEMO_PASSWORD, demo=True)
