"""services/config.py: the settings table, its parsers and `hotline config`. No database, no
network; one subprocess for the exit code."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.main import main
from services.config import SETTINGS, Settings, mask_url

ROOT = Path(__file__).resolve().parent.parent
BY_ENV = {s.env: s for s in SETTINGS}
# Settings fields that intentionally have no environment variable (none today).
FIELDS_WITHOUT_ENV: frozenset[str] = frozenset()
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """os.environ without any of the table's variables."""
    for s in SETTINGS:
        monkeypatch.delenv(s.env, raising=False)
    return monkeypatch


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ValueError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- the table ---------------------------------------------------------------------------------


def test_the_table_covers_every_field_once():
    fields = {f.name for f in dataclasses.fields(Settings)}
    in_table = [s.field for s in SETTINGS]
    assert len(in_table) == len(set(in_table)), "a field set by two variables"
    assert len(BY_ENV) == len(SETTINGS), "a variable listed twice"
    assert set(in_table) <= fields, set(in_table) - fields
    assert fields - set(in_table) == FIELDS_WITHOUT_ENV
    assert all(s.help.strip() for s in SETTINGS)


def test_the_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.port, settings.host, settings.database_url) == (8080, "127.0.0.1", None)
    assert settings.emergency_dial == (("110", "110"), ("119", "119"), ("120", "120"))
    assert (settings.notify_hours, settings.revisit_hours) == ((8, 21), (8, 21))
    assert (settings.unit_confidence_threshold, settings.kb_answer_threshold) == (None, None)
    assert settings.revisit_delay_minutes == 0.0
    assert settings.wechat_effective_mode == "plain"
    # blank is unset
    assert Settings.from_env({s.env: "  " for s in SETTINGS}) == settings


def default_texts(s) -> list[str]:
    """The string forms of the entry's default: its text, and str() of a plain value."""
    default = getattr(Settings(), s.field)
    if default is None:
        return []
    texts = [s.text(default)]
    if isinstance(default, str | int | float | Path):  # bool is an int
        texts.append(str(default))
    return texts


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_each_default_set_explicitly_is_accepted(setting):
    texts = default_texts(setting)
    if not texts:
        assert getattr(Settings(), setting.field) is None
        return
    for text in texts:
        assert Settings.from_env({setting.env: text}) == Settings(), (setting.env, text)


def test_all_defaults_set_explicitly_at_once():
    env = {s.env: texts[0] for s in SETTINGS if (texts := default_texts(s))}
    assert Settings.from_env(env) == Settings()


def test_revisit_delay_of_zero_minutes_is_accepted():
    # it is the default, and was refused when set explicitly (the old parser wanted > 0)
    assert Settings.from_env({"HOTLINE_REVISIT_DELAY_MINUTES": "0"}).revisit_delay_minutes == 0
    assert Settings.from_env({"HOTLINE_REVISIT_DELAY_MINUTES": "15"}).revisit_delay_minutes == 15
    message = refused({"HOTLINE_REVISIT_DELAY_MINUTES": "-1"})
    assert message == "HOTLINE_REVISIT_DELAY_MINUTES must be a number of at least 0, got '-1'"
    assert "HOTLINE_REVISIT_RETRY_MINUTES" in refused({"HOTLINE_REVISIT_RETRY_MINUTES": "0"})


# -- each parser ---------------------------------------------------------------------------------

GOOD = [
    ("HOTLINE_PORT", " 9090 ", "port", 9090),
    ("HOTLINE_REVISIT_MAX_CALLS", "0", "revisit_max_calls", 0),
    ("HOTLINE_RASA_TIMEOUT", "2.5", "rasa_timeout", 2.5),
    ("HOTLINE_YELLOW_SHARE", "0.99", "yellow_share", 0.99),
    ("HOTLINE_UNIT_THRESHOLD", "0.42", "unit_confidence_threshold", 0.42),
    ("HOTLINE_KB_THRESHOLD", "0", "kb_answer_threshold", 0.0),
    ("HOTLINE_SCHEDULER", "0", "scheduler_enabled", False),
    ("HOTLINE_SCHEDULER", "FALSE", "scheduler_enabled", False),
    ("HOTLINE_DEMO_DATA", "no", "load_demo_data", False),
    ("HOTLINE_EMBEDDINGS", "off", "use_embeddings", False),
    ("HOTLINE_TWILIO_RECORD_CALLS", "yes", "twilio_record_calls", True),
    (
        "HOTLINE_EMBEDDING_BACKEND",
        "sentence-transformers",
        "embedding_backend",
        "sentence-transformers",
    ),
    ("HOTLINE_WECHAT_MODE", "plain", "wechat_mode", "plain"),
    ("HOTLINE_RASA_URL", "http://rasa:5005/", "rasa_url", "http://rasa:5005"),
    (
        "HOTLINE_PUBLIC_URL",
        " https://hotline.example.cn// ",
        "public_url",
        "https://hotline.example.cn",
    ),
    (
        "HOTLINE_TWILIO_API_BASE_URL",
        "http://127.0.0.1:9999",
        "twilio_api_base_url",
        "http://127.0.0.1:9999",
    ),
    ("HOTLINE_CITY", "泉州市", "city_name", "泉州市"),
    ("HOTLINE_WECHAT_AES_KEY", AES_KEY, "wechat_aes_key", AES_KEY),
    ("HOTLINE_NOTIFY_HOURS", "0-24", "notify_hours", (0, 24)),
    ("HOTLINE_REVISIT_HOURS", " 9 - 20 ", "revisit_hours", (9, 20)),
    (
        "HOTLINE_EMERGENCY_DIAL",
        "110=0110, 119=0119,",
        "emergency_dial",
        (("110", "0110"), ("119", "0119")),
    ),
]


@pytest.mark.parametrize(("env", "raw", "field", "value"), GOOD, ids=lambda v: str(v)[:30])
def test_good_values_are_read(env, raw, field, value):
    assert getattr(Settings.from_env({env: raw}), field) == value


def test_paths_expand_the_home_directory(monkeypatch):
    monkeypatch.setenv("HOME", "/home/operator")
    settings = Settings.from_env({"HOTLINE_DATA_DIR": "~/hotline", "HOTLINE_RASA_VENV": "/v"})
    assert settings.data_dir == Path("/home/operator/hotline")
    assert settings.rasa_venv == Path("/v")
    assert settings.pgdata_dir == Path("/home/operator/hotline/pgdata")


BAD = [
    ("HOTLINE_PORT", "abc", "an integer between 1 and 65535"),
    ("HOTLINE_PORT", "0", "an integer between 1 and 65535"),
    ("HOTLINE_PORT", "65536", "an integer between 1 and 65535"),
    ("HOTLINE_PORT", "80.5", "an integer between 1 and 65535"),
    ("HOTLINE_MAX_BODY_BYTES", "0", "an integer of at least 1"),
    ("HOTLINE_SMS_MAX_CHARS", "19", "an integer of at least 20"),
    ("HOTLINE_REVISIT_MAX_CALLS", "-1", "an integer of at least 0"),
    ("HOTLINE_REPEAT_THRESHOLD", "1", "an integer of at least 2"),
    ("HOTLINE_RASA_TIMEOUT", "0", "a number greater than 0"),
    ("HOTLINE_RASA_TIMEOUT", "soon", "a number greater than 0"),
    ("HOTLINE_SESSION_HOURS", "inf", "a number of at least 0.1"),
    ("HOTLINE_YELLOW_SHARE", "1", "a number between 0.01 and 0.99"),
    ("HOTLINE_YELLOW_SHARE", "nan", "a number between 0.01 and 0.99"),
    ("HOTLINE_KB_CHOICE_FLOOR", "0", "a number greater than 0 and at most 1"),
    ("HOTLINE_WECHAT_REPLY_DEADLINE", "5", "a number greater than 0 and less than 5"),
    ("HOTLINE_UNIT_THRESHOLD", "high", "a number between 0 and 1"),
    ("HOTLINE_KB_THRESHOLD", "1.5", "a number between 0 and 1"),
    ("HOTLINE_SCHEDULER", "maybe", "1/true/yes/on or 0/false/no/off"),
    ("HOTLINE_EMBEDDING_BACKEND", "torch", "one of onnx-int8, sentence-transformers"),
    ("HOTLINE_WECHAT_MODE", "secure", "one of plain, compat, safe"),
    ("HOTLINE_RASA_URL", "rasa:5005", "an http:// or https:// URL"),
    ("HOTLINE_PUBLIC_URL", "ftp://example.cn", "an http:// or https:// URL"),
    ("HOTLINE_WECHAT_API_BASE_URL", "https://", "an http:// or https:// URL"),
    ("HOTLINE_NOTIFY_HOURS", "21-8", "hours START-END with 0 <= START < END <= 24, like 8-21"),
    ("HOTLINE_NOTIFY_HOURS", "0-25", "hours START-END with 0 <= START < END <= 24, like 8-21"),
    ("HOTLINE_REVISIT_HOURS", "morning", "hours START-END with 0 <= START < END <= 24, like 8-21"),
    ("HOTLINE_EMERGENCY_DIAL", "110", "NUMBER=DIAL pairs like 110=110,119=119,120=120"),
    ("HOTLINE_EMERGENCY_DIAL", "110=,119=119", "NUMBER=DIAL pairs like 110=110,119=119,120=120"),
    ("HOTLINE_EMERGENCY_DIAL", ",", "NUMBER=DIAL pairs like 110=110,119=119,120=120"),
]


@pytest.mark.parametrize(("env", "raw", "form"), BAD, ids=lambda v: str(v)[:30])
def test_bad_values_are_one_line_naming_the_variable_form_and_value(env, raw, form):
    assert refused({env: raw}) == f"{env} must be {form}, got {raw!r}"


def test_a_bad_secret_is_not_repeated_in_the_message():
    message = refused({"HOTLINE_WECHAT_AES_KEY": "tooshort-secret"})
    assert message == (
        "HOTLINE_WECHAT_AES_KEY must be exactly 43 characters, got a value of 15 characters"
    )


def test_wechat_mode_and_key_are_checked_together():
    for mode in ("compat", "safe"):
        message = refused({"HOTLINE_WECHAT_MODE": mode})
        assert message.startswith(f"HOTLINE_WECHAT_MODE={mode} needs HOTLINE_WECHAT_AES_KEY")
        settings = Settings.from_env(
            {"HOTLINE_WECHAT_MODE": mode, "HOTLINE_WECHAT_AES_KEY": AES_KEY}
        )
        assert settings.wechat_effective_mode == mode
    assert Settings.from_env({"HOTLINE_WECHAT_AES_KEY": AES_KEY}).wechat_effective_mode == "safe"
    assert Settings.from_env({"HOTLINE_WECHAT_MODE": "plain"}).wechat_effective_mode == "plain"


def test_from_env_reads_os_environ_by_default(clean_env):
    clean_env.setenv("HOTLINE_PORT", "8181")
    assert Settings.from_env().port == 8181
    assert Settings.from_env({}).port == 8080


# -- masking and `hotline config` ----------------------------------------------------------------


def test_database_url_passwords_are_masked():
    assert (
        mask_url("postgresql://hotline:s3cr%40t@db:5432/h") == "postgresql://hotline:****@db:5432/h"
    )
    assert mask_url("postgresql://hotline:p@ss@db/h?sslmode=require") == (
        "postgresql://hotline:****@db/h?sslmode=require"
    )
    assert mask_url("postgres://u@db/h?user=u&password=pw&x=1") == (
        "postgres://u@db/h?user=u&password=****&x=1"
    )
    assert (
        mask_url("postgresql://postgres@/h?host=/tmp/pg") == "postgresql://postgres@/h?host=/tmp/pg"
    )


SECRETS = {
    "HOTLINE_TWILIO_AUTH_TOKEN": "twilio-token-0123456789ab",
    "HOTLINE_WECHAT_APP_SECRET": "wechat-app-secret-xyz98",
    "HOTLINE_WECHAT_AES_KEY": AES_KEY,
    "HOTLINE_WECHAT_TOKEN": "short",
    "DATABASE_URL": "postgresql://hotline:dbpassword42@db.internal:5432/hotline",
}


def test_hotline_config_lists_every_setting_with_secrets_masked(clean_env, capsys):
    for name, value in SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv("HOTLINE_PORT", "9090")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for secret in (
        "twilio-token-0123456789ab",
        "wechat-app-secret",
        AES_KEY,
        "short",
        "dbpassword42",
    ):
        assert secret not in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    assert set(lines) == set(BY_ENV)
    assert lines["HOTLINE_PORT"][1:] == ["9090", "env"]
    assert lines["HOTLINE_SMS_MAX_CHARS"][1:] == ["300", "default"]
    assert lines["HOTLINE_TWILIO_AUTH_TOKEN"][1:] == ["****ab", "env"]
    assert lines["HOTLINE_WECHAT_APP_SECRET"][1:] == ["****98", "env"]
    assert lines["HOTLINE_WECHAT_AES_KEY"][1:] == ["****FG", "env"]
    assert lines["HOTLINE_WECHAT_TOKEN"][1:] == ["****", "env"]
    assert lines["DATABASE_URL"][1:] == [
        "postgresql://hotline:****@db.internal:5432/hotline",
        "env",
    ]
    assert lines["HOTLINE_PUBLIC_URL"][1:] == ["(unset)", "default"]

    assert main(["config", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["env"] for row in rows] == [s.env for s in SETTINGS]
    by_env = {row["env"]: row for row in rows}
    assert by_env["HOTLINE_WECHAT_AES_KEY"] == {
        "env": "HOTLINE_WECHAT_AES_KEY",
        "field": "wechat_aes_key",
        "value": "****FG",
        "source": "env",
    }
    assert by_env["HOTLINE_PUBLIC_URL"]["value"] is None
    assert by_env["HOTLINE_NOTIFY_HOURS"] == {
        "env": "HOTLINE_NOTIFY_HOURS",
        "field": "notify_hours",
        "value": "8-21",
        "source": "default",
    }
    assert not any(secret in json.dumps(rows) for secret in SECRETS.values())


def test_hotline_config_with_a_bad_value_is_an_error(clean_env, capsys):
    clean_env.setenv("HOTLINE_REVISIT_RETRY_MINUTES", "-3")
    assert main(["config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "hotline: error: HOTLINE_REVISIT_RETRY_MINUTES must be a number greater than 0, got '-3'\n"
    )


def test_hotline_config_process_exits_2_with_one_line():
    env = {k: v for k, v in os.environ.items() if k not in BY_ENV}
    env["HOTLINE_PORT"] = "eighty"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "config"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "hotline: error: HOTLINE_PORT must be an integer between 1 and 65535, got 'eighty'\n"
    )
