"""Debian's nginx in front of service processes, as deploy/nginx/ has it: the site rendered by
`hotline deploy nginx` with the test's ports, in a temporary prefix, run in the foreground
(`nginx -c <conf> -g 'daemon off;'`), never the system service."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.cli.deploy import render_nginx
from tests.support.processes import free_port, stop_process


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


@contextmanager
def running_nginx(
    prefix: Path,
    upstream_urls: list[str],
    *,
    max_body_bytes: int,
    kb_import_max_bytes: int,
) -> Iterator[str]:
    """nginx on a free loopback port in front of `upstream_urls`; yields its URL once it
    answers /healthz through a process."""
    binary = nginx_binary()
    assert binary, "nginx is not installed (.ci/install installs Debian's)"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = render_nginx(
        listen=f"127.0.0.1:{port}",
        upstreams=[u.removeprefix("http://") for u in upstream_urls],
        max_body_bytes=max_body_bytes,
        kb_import_max_bytes=kb_import_max_bytes,
        access_log=str(prefix / "access.log"),
    )
    (prefix / "hotline.conf").write_text(site, encoding="utf-8")
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    # as root nginx's workers would become "nobody", who may not write the temp folders
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"""{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {prefix / "hotline.conf"};
}}
""",
        encoding="utf-8",
    )
    args = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e"]
    args.append(str(prefix / "error.log"))
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([*args, "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        (prefix / "error.log").read_text(errors="replace")[-3000:]
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, grace=10)
