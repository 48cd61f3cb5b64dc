"""Staff accounts: scrypt hashes, login and sessions, lock-out, roles, the CLI, demo users."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import aiohttp
import pytest

from services.api.auth import require_role
from services.staff import accounts as auth
from tests.support.desk import PASSWORD, Api, login, make_user


def test_passwords_are_salted_scrypt_hashes():
    first, second = auth.hash_password("s3cret-pass"), auth.hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert "s3cret" not in first
    assert auth.verify_password("s3cret-pass", first)
    assert not auth.verify_password("s3cret-pasS", first)
    assert not auth.verify_password("s3cret-pass", "md5$abc")
    assert not auth.verify_password("s3cret-pass", "garbage")


def test_require_role_knows_the_roles():
    with pytest.raises(ValueError):
        require_role("superuser")
    with pytest.raises(ValueError):
        require_role()


async def test_accounts_are_checked_when_created(desk_service):
    async with desk_service.pool.acquire() as conn:
        for args, message in [
            (("x1", PASSWORD, "boss"), "unknown role"),
            (("x2", PASSWORD, "unit_handler"), "needs --unit"),
            (("x3", PASSWORD, "unit_handler", "atlantis"), "unknown unit"),
            (("x4", PASSWORD, "agent", "ecology"), "only unit handlers"),
            (("x5", "short", "agent"), "at least 8"),
            (("a b", PASSWORD, "agent"), "no spaces"),
        ]:
            with pytest.raises(auth.AccountError, match=message):
                await auth.create_user(conn, *args)
        await auth.create_user(conn, "taken", PASSWORD, "agent")
        with pytest.raises(auth.AccountError, match="taken"):
            await auth.create_user(conn, "taken", PASSWORD, "supervisor")
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE username = 'taken'")
    assert PASSWORD not in stored


async def test_login_sessions_expiry_logout_and_lock_out(desk_service, clock):
    svc = desk_service
    await make_user(svc, "h-eco", "unit_handler", "ecology")
    async with aiohttp.ClientSession() as http:

        async def attempt(username: str, password: str) -> tuple[int, dict]:
            async with http.post(
                svc.url + "/api/auth/login", json={"username": username, "password": password}
            ) as resp:
                return resp.status, await resp.json()

        status, body = await attempt("h-eco", PASSWORD)
        assert status == 200
        assert body["user"] == {
            "id": body["user"]["id"],
            "username": "h-eco",
            "role": "unit_handler",
            "unit": "ecology",
            "display_name": None,
        }
        api = Api(http, svc.url, body["token"])
        assert (await api.get("/api/auth/me"))[1]["unit"] == "ecology"
        async with svc.pool.acquire() as conn:
            stored = await conn.fetchval("SELECT token_hash FROM user_sessions")
        assert stored != body["token"], "only a hash of the token is kept"

        wrong = await attempt("h-eco", "wrong-password")
        unknown = await attempt("nobody", "wrong-password")
        assert (
            wrong
            == unknown
            == (401, {"error": "bad_credentials", "reason": "wrong user name or password"})
        )
        assert (await attempt("h-eco", ""))[1]["error"] == "missing_password"

        # sessions end after HOTLINE_SESSION_HOURS
        clock.advance(hours=svc.ctx.settings.session_hours, seconds=1)
        status, body = await api.get("/api/auth/me")
        assert (status, body["error"]) == (401, "unauthorized")

        # logout ends a session at once
        api = await login(http, svc, "h-eco")
        assert (await api.post("/api/auth/logout"))[0] == 200
        assert (await api.get("/api/auth/me"))[0] == 401

        # no lock: after the free wrong passwords this address waits, doubling each time, and
        # an unknown user name is answered exactly alike (tests/test_rate_limits.py: more)
        settings = svc.ctx.settings
        await make_user(svc, "h-hou", "unit_handler", "housing")
        for name in ("h-hou", "ghost"):
            for _ in range(settings.login_free_failures):
                assert (await attempt(name, "wrong-password"))[0] == 401
        for seconds in (1, 2, 4):
            known, unknown = await attempt("h-hou", PASSWORD), await attempt("ghost", "x" * 8)
            assert known[0] == unknown[0] == 429
            assert known[1]["error"] == unknown[1]["error"] == "rate_limited"
            assert known[1]["retry_after"] == unknown[1]["retry_after"] == seconds
            clock.advance(seconds=seconds)
            assert (await attempt("h-hou", "wrong-password"))[0] == 401
            assert (await attempt("ghost", "wrong-password"))[0] == 401
        clock.advance(seconds=8)
        assert (await attempt("h-hou", PASSWORD))[0] == 200


async def test_demo_users_are_created_once(desk_service):
    assert await auth.ensure_demo_users(desk_service.pool) == len(auth.DEMO_USERS)
    assert await auth.ensure_demo_users(desk_service.pool) == 0
    async with aiohttp.ClientSession() as http:
        api = await login(http, desk_service, "handler-ecology", auth.DEMO_PASSWORD)
        assert (await api.get("/api/unit/orders"))[1] == {"unit": "ecology", "orders": []}
        sup = await login(http, desk_service, "supervisor", auth.DEMO_PASSWORD)
        assert (await sup.get("/api/supervisor/lights"))[0] == 200


def _cli(database_url: str, tmp_path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=database_url, HOTLINE_DATA_DIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_adds_users(desk_service, database_url, tmp_path):
    done = _cli(
        database_url,
        tmp_path,
        "users",
        "add",
        "wang.li",
        "--role",
        "unit_handler",
        "--unit",
        "housing",
        "--json",
        stdin="a-long-password\n",
    )
    assert done.returncode == 0, done.stderr
    assert '"unit": "housing"' in done.stdout
    secret = tmp_path / "pw.txt"
    secret.write_text("another-password\n", encoding="utf-8")
    done = _cli(
        database_url,
        tmp_path,
        "users",
        "add",
        "chen",
        "--role",
        "supervisor",
        "--password-file",
        str(secret),
    )
    assert done.returncode == 0, done.stderr
    async with aiohttp.ClientSession() as http:
        api = await login(http, desk_service, "wang.li", "a-long-password")
        assert (await api.get("/api/auth/me"))[1]["role"] == "unit_handler"
        await login(http, desk_service, "chen", "another-password")
    for args, stdin, message in [
        (
            ("users", "add", "xy", "--role", "unit_handler", "--unit", "atlantis"),
            "a-long-password\n",
            "unknown unit",
        ),
        (("users", "add", "xy", "--role", "agent"), "short\n", "at least 8"),
        (
            ("users", "add", "xy", "--role", "agent", "--password-file", "/nonexistent"),
            "",
            "cannot read",
        ),
    ]:
        done = _cli(database_url, tmp_path, *args, stdin=stdin)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_session_length_setting_is_validated():
    from services.config import Settings

    assert Settings.from_env({"HOTLINE_SESSION_HOURS": "8"}).session_hours == 8
    with pytest.raises(ValueError, match="HOTLINE_SESSION_HOURS"):
        Settings.from_env({"HOTLINE_SESSION_HOURS": "soon"})
    assert timedelta(hours=Settings().session_hours) == timedelta(hours=12)
