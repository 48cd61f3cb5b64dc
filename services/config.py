"""The one configuration object. Every setting comes from the environment, with a default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from nlu.embeddings import BACKENDS as EMBEDDING_BACKENDS

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_UNITS_FILE = PACKAGE_DIR / "data" / "units.yaml"


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _env_float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def _env_url(env: dict[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Configuration of one service process.

    `data_dir` holds everything the service writes by itself: the embedded PostgreSQL
    cluster, trained NLU models and the rebuilt embedding model.
    """

    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path.home() / ".hotline")
    units_file: Path = DEFAULT_UNITS_FILE
    host: str = "127.0.0.1"
    port: int = 8080
    # Largest message a citizen may send on any channel, in characters.
    max_message_chars: int = 2000
    # Largest HTTP request body, in bytes (aiohttp's client_max_size).
    max_body_bytes: int = 256 * 1024
    nlu_model_dir: Path | None = None
    embedding_model_dir: Path | None = None
    # Below this calibrated confidence the lead unit is not chosen automatically.
    unit_confidence_threshold: float | None = None
    # None: the calibrated threshold stored with the knowledge-base index (a probability)
    kb_answer_threshold: float | None = None
    # Below the answer threshold but at least this confident, a text chat offers the top
    # candidates ("您想咨询的是哪一个？") instead of going straight on to a work order.
    kb_choice_floor: float = 0.3
    # Largest knowledge-base import file accepted over HTTP, in bytes.
    kb_import_max_bytes: int = 20 * 1024 * 1024
    load_demo_data: bool = True
    # Sentence embeddings beside n-grams in the NLU (HOTLINE_EMBEDDINGS=0: n-grams only).
    use_embeddings: bool = True
    # "onnx-int8" (the default: onnxruntime, no torch at run time) or "sentence-transformers"
    # (float32 on torch); see nlu/embeddings.py.
    embedding_backend: str = "onnx-int8"
    city_name: str = "石狮市"
    # The optional Rasa engine (nlu/rasa_engine.py): the intent and the routing model servers,
    # the Python 3.10 virtualenv with Rasa (.ci/rasa-setup) and how long a parse may take.
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_routing_url: str = "http://127.0.0.1:5006"
    rasa_venv: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "hotline-rasa" / "venv"
    )
    rasa_timeout: float = 10.0
    # Phone, SMS and WeChat (channels/twilio_*.py, channels/wechat.py, services/notify.py).
    # The service's address as the providers see it (behind a proxy): Twilio signs this URL.
    public_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_api_base_url: str | None = None  # None: Twilio's own
    twilio_agent_queue: str = "12345-agents"
    twilio_agent_number: str | None = None  # set: <Dial> it instead of <Enqueue>
    twilio_record_calls: bool = True
    # a call put through to an agent is transcribed live (Twilio <Start><Transcription>) and
    # each utterance shown in the agent workspace as it is said
    twilio_live_transcription: bool = True
    # whom a caller is put through to for each emergency number (a trunk may need a prefix)
    emergency_dial: tuple[tuple[str, str], ...] = (("110", "110"), ("119", "119"), ("120", "120"))
    sms_max_chars: int = 300
    wechat_token: str | None = None
    wechat_aes_key: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_api_base_url: str = "https://api.weixin.qq.com"
    # plain, compat or safe, as set in the official account; unset: safe when a key is given
    wechat_mode: str | None = None
    # WeChat waits 5 s for a reply; later answers go out through the customer-service API
    wechat_reply_deadline: float = 4.5
    # Dispatch, time limits and supervision (services/dispatch.py, timelimits.py, supervision.py).
    # Limits in working days: dispatch (the centre), sign for, contact the citizen, resolve.
    limit_dispatch_days: float = 1.0
    limit_sign_for_days: float = 1.0
    limit_contact_days: float = 2.0
    limit_handling_days: float = 5.0
    # share of a limit after which its light turns yellow
    yellow_share: float = 0.8
    repeat_window_days: int = 180
    # reports of the same problem (the first included) from which it is escalated
    repeat_threshold: int = 3
    # the background scheduler in each service process (HOTLINE_SCHEDULER=0: not in this one)
    scheduler_enabled: bool = True
    scheduler_poll_seconds: float = 5.0
    light_scan_seconds: float = 60.0
    job_lease_seconds: float = 60.0
    # the supervision desk's phone, for the centre's own lights and escalations
    supervision_phone: str | None = None
    # hours (local, [start, end)) in which units may be texted
    notify_hours: tuple[int, int] = (8, 21)
    session_hours: float = 12.0
    # revisits (services/revisits.py): hours [start, end) in which citizens are called or
    # texted, calls before the SMS fallback, first retry delay (doubling), wait for the SMS answer
    revisit_hours: tuple[int, int] = (8, 21)
    revisit_max_calls: int = 3
    revisit_retry_minutes: float = 30.0
    revisit_delay_minutes: float = 0.0
    revisit_reply_hours: float = 48.0

    @property
    def wechat_effective_mode(self) -> str:
        return self.wechat_mode or ("safe" if self.wechat_aes_key else "plain")

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def nlu_dir(self) -> Path:
        return self.nlu_model_dir or (self.data_dir / "models" / "nlu")

    @property
    def rasa_dir(self) -> Path:
        """Exported Rasa projects and their trained models (`hotline nlu rasa-train`)."""
        return self.data_dir / "models" / "rasa"

    @property
    def embedding_dir(self) -> Path:
        return self.embedding_model_dir or (self.data_dir / "models" / "e5-small")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def path(name: str) -> Path | None:
            raw = env.get(name)
            return Path(raw).expanduser() if raw else None

        defaults = cls()
        threshold = env.get("HOTLINE_UNIT_THRESHOLD")
        kb_threshold = env.get("HOTLINE_KB_THRESHOLD")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=path("HOTLINE_DATA_DIR") or defaults.data_dir,
            units_file=path("HOTLINE_UNITS_FILE") or DEFAULT_UNITS_FILE,
            host=env.get("HOTLINE_HOST") or defaults.host,
            port=_env_int(env, "HOTLINE_PORT", defaults.port),
            max_message_chars=_env_int(
                env, "HOTLINE_MAX_MESSAGE_CHARS", defaults.max_message_chars
            ),
            max_body_bytes=_env_int(env, "HOTLINE_MAX_BODY_BYTES", defaults.max_body_bytes),
            nlu_model_dir=path("HOTLINE_NLU_MODEL_DIR"),
            embedding_model_dir=path("HOTLINE_EMBEDDING_MODEL_DIR"),
            unit_confidence_threshold=float(threshold) if threshold else None,
            kb_answer_threshold=float(kb_threshold) if kb_threshold else None,
            kb_choice_floor=_env_float(env, "HOTLINE_KB_CHOICE_FLOOR", defaults.kb_choice_floor),
            kb_import_max_bytes=_env_int(
                env, "HOTLINE_KB_IMPORT_MAX_BYTES", defaults.kb_import_max_bytes
            ),
            load_demo_data=env.get("HOTLINE_DEMO_DATA", "1") not in ("0", "false", "no"),
            use_embeddings=env.get("HOTLINE_EMBEDDINGS", "1") not in ("0", "false", "no"),
            embedding_backend=_env_choice(
                env, "HOTLINE_EMBEDDING_BACKEND", defaults.embedding_backend, EMBEDDING_BACKENDS
            ),
            city_name=env.get("HOTLINE_CITY") or defaults.city_name,
            rasa_url=_env_url(env, "HOTLINE_RASA_URL", defaults.rasa_url),
            rasa_routing_url=_env_url(env, "HOTLINE_RASA_ROUTING_URL", defaults.rasa_routing_url),
            rasa_venv=path("HOTLINE_RASA_VENV") or defaults.rasa_venv,
            rasa_timeout=_env_float(env, "HOTLINE_RASA_TIMEOUT", defaults.rasa_timeout),
            **_channel_settings(env, defaults),
            **_dispatch_settings(env, defaults),
            **_revisit_settings(env, defaults),
        )


def _channel_settings(env: dict[str, str], defaults: Settings) -> dict[str, object]:
    def text(name: str) -> str | None:
        return env.get(name, "").strip() or None

    mode = text("HOTLINE_WECHAT_MODE")
    if mode not in (None, "plain", "compat", "safe"):
        raise ValueError(f"HOTLINE_WECHAT_MODE must be plain, compat or safe, got {mode!r}")
    aes_key = text("HOTLINE_WECHAT_AES_KEY")
    if aes_key is not None and len(aes_key) != 43:
        raise ValueError("HOTLINE_WECHAT_AES_KEY (EncodingAESKey) must be 43 characters")
    if mode in ("compat", "safe") and aes_key is None:
        raise ValueError(f"HOTLINE_WECHAT_MODE={mode} needs HOTLINE_WECHAT_AES_KEY")
    dial = defaults.emergency_dial
    if text("HOTLINE_EMERGENCY_DIAL"):
        pairs = [p.split("=", 1) for p in text("HOTLINE_EMERGENCY_DIAL").split(",") if p.strip()]
        if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ValueError("HOTLINE_EMERGENCY_DIAL must look like 110=110,119=119,120=120")
        dial = tuple((k.strip(), v.strip()) for k, v in pairs)
    deadline = text("HOTLINE_WECHAT_REPLY_DEADLINE")
    try:
        reply_deadline = float(deadline) if deadline else defaults.wechat_reply_deadline
    except ValueError as exc:
        raise ValueError(
            f"HOTLINE_WECHAT_REPLY_DEADLINE must be seconds, got {deadline!r}"
        ) from exc
    public_url = text("HOTLINE_PUBLIC_URL")
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ValueError(f"HOTLINE_PUBLIC_URL must start with https://, got {public_url!r}")
    return {
        "public_url": public_url.rstrip("/") if public_url else None,
        "twilio_account_sid": text("HOTLINE_TWILIO_ACCOUNT_SID"),
        "twilio_auth_token": text("HOTLINE_TWILIO_AUTH_TOKEN"),
        "twilio_from_number": text("HOTLINE_TWILIO_FROM_NUMBER"),
        "twilio_api_base_url": text("HOTLINE_TWILIO_API_BASE_URL"),
        "twilio_agent_queue": text("HOTLINE_TWILIO_AGENT_QUEUE") or defaults.twilio_agent_queue,
        "twilio_agent_number": text("HOTLINE_TWILIO_AGENT_NUMBER"),
        "twilio_record_calls": env.get("HOTLINE_TWILIO_RECORD_CALLS", "1")
        not in ("0", "false", "no"),
        "twilio_live_transcription": env.get("HOTLINE_TWILIO_LIVE_TRANSCRIPTION", "1")
        not in ("0", "false", "no"),
        "emergency_dial": dial,
        "sms_max_chars": _env_int(env, "HOTLINE_SMS_MAX_CHARS", defaults.sms_max_chars),
        "wechat_token": text("HOTLINE_WECHAT_TOKEN"),
        "wechat_aes_key": aes_key,
        "wechat_app_id": text("HOTLINE_WECHAT_APP_ID"),
        "wechat_app_secret": text("HOTLINE_WECHAT_APP_SECRET"),
        "wechat_api_base_url": text("HOTLINE_WECHAT_API_BASE_URL") or defaults.wechat_api_base_url,
        "wechat_mode": mode,
        "wechat_reply_deadline": reply_deadline,
    }


def _dispatch_settings(env: dict[str, str], defaults: Settings) -> dict[str, object]:
    def number(name: str, default: float, low: float, high: float | None = None) -> float:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"{name} must be a number, got {raw!r}") from exc
        if value < low or (high is not None and value > high) or value != value:
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{name} must be {limit}, got {raw!r}")
        return value

    hours = env.get("HOTLINE_NOTIFY_HOURS", "").strip()
    notify_hours = defaults.notify_hours
    if hours:
        try:
            start, end = (int(p) for p in hours.split("-"))
        except ValueError as exc:
            raise ValueError(f"HOTLINE_NOTIFY_HOURS must look like 8-21, got {hours!r}") from exc
        if not 0 <= start < end <= 24:
            raise ValueError(f"HOTLINE_NOTIFY_HOURS must look like 8-21, got {hours!r}")
        notify_hours = (start, end)
    share = number("HOTLINE_YELLOW_SHARE", defaults.yellow_share, 0.01, 0.99)
    return {
        "limit_dispatch_days": number(
            "HOTLINE_LIMIT_DISPATCH_DAYS", defaults.limit_dispatch_days, 0.01
        ),
        "limit_sign_for_days": number(
            "HOTLINE_LIMIT_SIGN_FOR_DAYS", defaults.limit_sign_for_days, 0.01
        ),
        "limit_contact_days": number(
            "HOTLINE_LIMIT_CONTACT_DAYS", defaults.limit_contact_days, 0.01
        ),
        "limit_handling_days": number(
            "HOTLINE_LIMIT_HANDLING_DAYS", defaults.limit_handling_days, 0.01
        ),
        "yellow_share": share,
        "repeat_window_days": int(
            number("HOTLINE_REPEAT_WINDOW_DAYS", defaults.repeat_window_days, 1)
        ),
        "repeat_threshold": int(number("HOTLINE_REPEAT_THRESHOLD", defaults.repeat_threshold, 2)),
        "scheduler_enabled": env.get("HOTLINE_SCHEDULER", "1") not in ("0", "false", "no"),
        "scheduler_poll_seconds": number(
            "HOTLINE_SCHEDULER_POLL_SECONDS", defaults.scheduler_poll_seconds, 0.1
        ),
        "light_scan_seconds": number("HOTLINE_LIGHT_SCAN_SECONDS", defaults.light_scan_seconds, 1),
        "job_lease_seconds": number("HOTLINE_JOB_LEASE_SECONDS", defaults.job_lease_seconds, 1),
        "supervision_phone": env.get("HOTLINE_SUPERVISION_PHONE", "").strip() or None,
        "notify_hours": notify_hours,
        "session_hours": number("HOTLINE_SESSION_HOURS", defaults.session_hours, 0.1),
    }


def _revisit_settings(env: dict[str, str], defaults: Settings) -> dict[str, object]:
    hours = env.get("HOTLINE_REVISIT_HOURS", "").strip()
    revisit_hours = defaults.revisit_hours
    if hours:
        try:
            start, end = (int(p) for p in hours.split("-"))
        except ValueError as exc:
            raise ValueError(f"HOTLINE_REVISIT_HOURS must look like 8-21, got {hours!r}") from exc
        if not 0 <= start < end <= 24:
            raise ValueError(f"HOTLINE_REVISIT_HOURS must look like 8-21, got {hours!r}")
        revisit_hours = (start, end)
    max_calls = _env_int(env, "HOTLINE_REVISIT_MAX_CALLS", defaults.revisit_max_calls)
    if max_calls < 0:
        raise ValueError(f"HOTLINE_REVISIT_MAX_CALLS must be 0 or more, got {max_calls}")
    values = {
        name: _env_float(env, f"HOTLINE_{name.upper()}", getattr(defaults, name))
        for name in ("revisit_retry_minutes", "revisit_delay_minutes", "revisit_reply_hours")
    }
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"HOTLINE_{name.upper()} must be 0 or more, got {value}")
    return {"revisit_hours": revisit_hours, "revisit_max_calls": max_calls, **values}
