"""The `hotline` command: `serve` really serves; bad input is a message and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from tests.support.serve_process import serve_env, serving


def test_serve_starts_and_answers(database_url, tmp_path):
    with serving(serve_env(database_url, tmp_path)) as url:
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            assert "widget.js" in resp.read().decode()


def test_bad_configuration_is_a_message_not_a_traceback(tmp_path):
    env = dict(os.environ, HOTLINE_PORT="eighty")
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "HOTLINE_PORT must be an integer" in done.stderr
    assert "Traceback" not in done.stderr
