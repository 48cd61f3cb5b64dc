"""The one configuration object. Every setting comes from the environment, with a default.

`SETTINGS` below is the one place to add a setting: a field on `Settings` (its default) and
one `Setting` entry (the environment variable, how its text is read and checked, whether it
is a secret, and the help that `hotline config --help` shows). `Settings.from_env` walks the
table; checks between settings come after it in `_check_together`. A bad value is one
`ValueError` naming the variable, the accepted form and the value given.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from nlu.embedding_backends import BACKENDS as EMBEDDING_BACKENDS

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_UNITS_FILE = PACKAGE_DIR / "data" / "units.yaml"


@dataclass(frozen=True)
class Settings:
    """Configuration of one service process; what each field means is in `SETTINGS`.

    `data_dir` holds everything the service writes by itself: the embedded PostgreSQL
    cluster, trained NLU models and the rebuilt embedding model.
    """

    database_url: str | None = None
    database_replica_url: str | None = None
    replica_max_lag_seconds: float = 5.0
    db_pool_size: int = 10
    db_acquire_timeout_seconds: float = 10.0
    data_dir: Path = field(default_factory=lambda: Path.home() / ".hotline")
    units_file: Path = DEFAULT_UNITS_FILE
    host: str = "127.0.0.1"
    port: int = 8080
    max_message_chars: int = 2000
    max_body_bytes: int = 256 * 1024
    nlu_model_dir: Path | None = None
    embedding_model_dir: Path | None = None
    unit_confidence_threshold: float | None = None
    kb_answer_threshold: float | None = None
    kb_choice_floor: float = 0.3
    kb_import_max_bytes: int = 20 * 1024 * 1024
    load_demo_data: bool = True
    use_embeddings: bool = True
    embedding_backend: str = "onnx-int8"
    processes_per_host: int = 1
    nlu_threads: int | None = None
    city_name: str = "石狮市"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_routing_url: str = "http://127.0.0.1:5006"
    rasa_venv: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "hotline-rasa" / "venv"
    )
    rasa_timeout: float = 10.0
    public_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_api_base_url: str | None = None
    twilio_agent_queue: str = "12345-agents"
    twilio_agent_number: str | None = None
    twilio_record_calls: bool = True
    twilio_live_transcription: bool = True
    emergency_dial: tuple[tuple[str, str], ...] = (("110", "110"), ("119", "119"), ("120", "120"))
    sms_max_chars: int = 300
    wechat_token: str | None = None
    wechat_aes_key: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_api_base_url: str = "https://api.weixin.qq.com"
    wechat_mode: str | None = None
    wechat_reply_deadline: float = 4.5
    limit_dispatch_days: float = 1.0
    limit_sign_for_days: float = 1.0
    limit_contact_days: float = 2.0
    limit_handling_days: float = 5.0
    yellow_share: float = 0.8
    repeat_window_days: int = 180
    repeat_threshold: int = 3
    scheduler_enabled: bool = True
    scheduler_poll_seconds: float = 5.0
    light_scan_seconds: float = 60.0
    job_lease_seconds: float = 60.0
    supervision_phone: str | None = None
    notify_hours: tuple[int, int] = (8, 21)
    session_hours: float = 12.0
    revisit_hours: tuple[int, int] = (8, 21)
    revisit_max_calls: int = 3
    revisit_retry_minutes: float = 30.0
    revisit_delay_minutes: float = 0.0
    revisit_reply_hours: float = 48.0
    log_format: str = "text"
    metrics_allow: tuple[str, ...] = ()
    metrics_token: str | None = None
    open311_type: str = "realtime"
    open311_contact: str = "12345 市民服务热线"
    # -- rate limits, origins, demo accounts, retention (docs/security.md)
    rate_chat_session: str = "30/minute"
    rate_chat_address: str = "600/minute"
    rate_login_address: str = "30/minute"
    rate_login_account: str = "10/minute"
    rate_webhook_refused: str = "30/minute"
    rate_address: str = "1200/minute"
    login_free_failures: int = 3
    login_backoff_seconds: float = 1.0
    login_backoff_max_seconds: float = 900.0
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    demo_accounts: bool | None = None
    retention_days: int = 365

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
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        values = {
            s.field: s.parse(s, raw) if (raw := s.raw(env)) else getattr(defaults, s.field)
            for s in SETTINGS
        }
        settings = cls(**values)
        _check_together(settings)
        return settings


# -- the table's entries and their parsers ---------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One environment variable: which `Settings` field it sets and how its text is read.

    `low`/`high` bound a number (or, for text, its length); `above`/`below` make the bound
    itself refused. Unset or blank: the field's default in `Settings`.
    """

    env: str
    field: str
    parse: Callable[[Setting, str], object]
    help: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    below: bool = False
    choices: tuple[str, ...] = ()
    secret: bool = False

    def raw(self, env: Mapping[str, str]) -> str:
        """The variable's text, stripped; "" when unset."""
        return (env.get(self.env) or "").strip()

    def refuse(self, raw: str, form: str) -> ValueError:
        given = f"a value of {len(raw)} characters" if self.secret else repr(raw)
        return ValueError(f"{self.env} must be {form}, got {given}")

    def bounds(self) -> str:
        """The bounds in words ("" when unbounded): " between 1 and 65535", " greater than 0"."""
        low, high = self.low, self.high
        if low is not None and high is not None and not self.above and not self.below:
            return f" between {low:g} and {high:g}"
        parts = []
        if low is not None:
            parts.append(f"greater than {low:g}" if self.above else f"of at least {low:g}")
        if high is not None:
            parts.append(f"less than {high:g}" if self.below else f"at most {high:g}")
        return (" " + " and ".join(parts)) if parts else ""

    def within(self, value: float) -> bool:
        low, high = self.low, self.high
        if low is not None and (value <= low if self.above else value < low):
            return False
        return high is None or (value < high if self.below else value <= high)

    def text(self, value: object) -> str | None:
        """The value as the variable's text (None for an unset optional setting)."""
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if self.parse is _hours:
            return "{}-{}".format(*value)
        if self.parse is _dial:
            return ",".join(f"{number}={target}" for number, target in value)
        if self.parse in (_origins, _networks):
            return ",".join(value)
        return str(value)

    def shown(self, value: object) -> str | None:
        """`text`, with a secret masked: a password inside a URL, otherwise all but the last
        two characters (all of a short one)."""
        text = self.text(value)
        if text is None or not self.secret:
            return text
        if "://" in text:
            return mask_url(text)
        return "****" + text[-2:] if len(text) >= 8 else "****"


def mask_url(url: str) -> str:
    """The URL with the password of its user part and any `password=` parameter as ****."""
    scheme, sep, rest = url.partition("://")
    if sep:
        head = rest.split("?", 1)[0]
        at = head.rfind("@")
        if at >= 0:
            user, colon, _password = rest[:at].partition(":")
            if colon:
                rest = f"{user}:****{rest[at:]}"
    return re.sub(r"([?&]password=)[^&]*", r"\1****", scheme + sep + rest, flags=re.IGNORECASE)


def _text(s: Setting, raw: str) -> str:
    if s.low is not None and s.low == s.high and len(raw) != s.low:
        raise s.refuse(raw, f"exactly {s.low:g} characters")
    if s.low is not None and len(raw) < s.low:
        raise s.refuse(raw, f"at least {s.low:g} characters")
    return raw


def _int(s: Setting, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not s.within(value):
        raise s.refuse(raw, "an integer" + s.bounds())
    return value


def _float(s: Setting, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not s.within(value):
        raise s.refuse(raw, "a number" + s.bounds())
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(s: Setting, raw: str) -> bool:
    word = raw.lower()
    if word not in _TRUE + _FALSE:
        raise s.refuse(raw, f"{'/'.join(_TRUE)} or {'/'.join(_FALSE)}")
    return word in _TRUE


def _choice(s: Setting, raw: str) -> str:
    if raw not in s.choices:
        raise s.refuse(raw, "one of " + ", ".join(s.choices))
    return raw


def _url(s: Setting, raw: str) -> str:
    if not raw.startswith(("http://", "https://")) or not urlsplit(raw).netloc:
        raise s.refuse(raw, "an http:// or https:// URL")
    return raw.rstrip("/")


def _path(s: Setting, raw: str) -> Path:
    return Path(raw).expanduser()


def _hours(s: Setting, raw: str) -> tuple[int, int]:
    try:
        start, end = (int(part) for part in raw.split("-"))
    except ValueError:
        start, end = 0, 0
    if not 0 <= start < end <= 24:
        raise s.refuse(raw, "hours START-END with 0 <= START < END <= 24, like 8-21")
    return start, end


def _dial(s: Setting, raw: str) -> tuple[tuple[str, str], ...]:
    pairs = [piece.split("=", 1) for piece in raw.split(",") if piece.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise s.refuse(raw, "NUMBER=DIAL pairs like 110=110,119=119,120=120")
    return tuple((number.strip(), target.strip()) for number, target in pairs)


def _rate(s: Setting, raw: str) -> str:
    from limits import parse

    try:
        parse(raw)
    except ValueError:
        raise s.refuse(raw, "a rate like 30/minute or 5 per second") from None
    return raw


def _networks(s: Setting, raw: str) -> tuple[str, ...]:
    found = []
    for piece in (p.strip() for p in raw.split(",")):
        if not piece:
            continue
        try:
            found.append(str(ipaddress.ip_network(piece, strict=False)))
        except ValueError:
            raise s.refuse(
                raw, "comma-separated IP addresses or networks like 10.0.0.5,192.168.1.0/24"
            ) from None
    return tuple(found)


def _origins(s: Setting, raw: str) -> tuple[str, ...]:
    found = []
    for piece in (p.strip().rstrip("/") for p in raw.split(",")):
        if not piece:
            continue
        parts = urlsplit(piece)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise s.refuse(raw, "origins like https://www.example.gov.cn, comma-separated")
        found.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(found)


S = Setting
# a table: one entry per variable reads better than one argument a line
# fmt: off
SETTINGS: tuple[Setting, ...] = (
    # -- the process, its storage and its HTTP limits
    S("DATABASE_URL", "database_url", _text, "PostgreSQL URL; unset: an embedded cluster in "
      "the data directory", secret=True),
    S("DATABASE_REPLICA_URL", "database_replica_url", _text, "a streaming replica of "
      "DATABASE_URL: figures, the public page, exports and search read from it while it is "
      "within HOTLINE_REPLICA_MAX_LAG_SECONDS; unset: everything reads the primary",
      secret=True),
    S("HOTLINE_REPLICA_MAX_LAG_SECONDS", "replica_max_lag_seconds", _float,
      "a replica further behind the primary than this is bypassed (reads go to the primary, "
      "and /healthz and the X-Hotline-Read-From header say so)", low=0),
    S("HOTLINE_DB_POOL_SIZE", "db_pool_size", _int,
      "PostgreSQL connections each service process may hold for requests", low=2),
    S("HOTLINE_DB_ACQUIRE_TIMEOUT_SECONDS", "db_acquire_timeout_seconds", _float,
      "the longest a request waits for a PostgreSQL connection (all busy, or the database "
      "restarting) before it is answered 503 database_unavailable with Retry-After", low=0,
      above=True),
    S("HOTLINE_DATA_DIR", "data_dir", _path, "where the service writes by itself: the embedded "
      "PostgreSQL cluster, trained NLU models, the rebuilt embedding model"),
    S("HOTLINE_UNITS_FILE", "units_file", _path, "the handling units (YAML)"),
    S("HOTLINE_HOST", "host", _text, "address to listen on"),
    S("HOTLINE_PORT", "port", _int, "port to listen on", low=1, high=65535),
    S("HOTLINE_MAX_MESSAGE_CHARS", "max_message_chars", _int,
      "largest message a citizen may send on any channel, in characters", low=1),
    S("HOTLINE_MAX_BODY_BYTES", "max_body_bytes", _int,
      "largest HTTP request body, in bytes (aiohttp's client_max_size)", low=1),
    # -- NLU and the knowledge base
    S("HOTLINE_NLU_MODEL_DIR", "nlu_model_dir", _path,
      "trained NLU model; unset: <data dir>/models/nlu"),
    S("HOTLINE_EMBEDDING_MODEL_DIR", "embedding_model_dir", _path,
      "sentence-embedding model; unset: <data dir>/models/e5-small"),
    S("HOTLINE_UNIT_THRESHOLD", "unit_confidence_threshold", _float,
      "below this calibrated confidence the lead unit is not chosen automatically; unset: "
      "the threshold stored with the trained model", low=0, high=1),
    S("HOTLINE_KB_THRESHOLD", "kb_answer_threshold", _float,
      "probability from which the knowledge base answers by itself; unset: the calibrated "
      "threshold stored with its index", low=0, high=1),
    S("HOTLINE_KB_CHOICE_FLOOR", "kb_choice_floor", _float,
      "below the answer threshold but at least this confident, a text chat offers the top "
      "candidates instead of going straight on to a work order", low=0, high=1, above=True),
    S("HOTLINE_KB_IMPORT_MAX_BYTES", "kb_import_max_bytes", _int,
      "largest knowledge-base import file accepted over HTTP, in bytes", low=1),
    S("HOTLINE_DEMO_DATA", "load_demo_data", _bool,
      "load the demo knowledge-base entries and staff accounts (password demo12345) into an "
      "empty database; 0 in production"),
    S("HOTLINE_EMBEDDINGS", "use_embeddings", _bool,
      "sentence embeddings beside n-grams in the NLU (0: n-grams only)"),
    S("HOTLINE_EMBEDDING_BACKEND", "embedding_backend", _choice,
      "onnx-int8 (onnxruntime, no torch at run time) or sentence-transformers (float32 on "
      "torch); see nlu/embeddings.py", choices=EMBEDDING_BACKENDS),
    S("HOTLINE_PROCESSES_PER_HOST", "processes_per_host", _int,
      "service processes on this machine (deploy/systemd runs 2): each takes its share of "
      "the cores for CPU-bound work (see thread_plan; docs/configuration.md)", low=1, high=256),
    S("HOTLINE_NLU_THREADS", "nlu_threads", _int,
      "CPU-bound calls (NLU parses, KB asks) one process runs at once; unset: its share of "
      "the cores (cores // HOTLINE_PROCESSES_PER_HOST) + 4, one thread a call", low=1,
      high=256),
    S("HOTLINE_CITY", "city_name", _text, "the city the hotline serves"),
    # -- the optional Rasa engine (nlu/rasa_engine.py)
    S("HOTLINE_RASA_URL", "rasa_url", _url, "the Rasa intent model server"),
    S("HOTLINE_RASA_ROUTING_URL", "rasa_routing_url", _url, "the Rasa routing model server"),
    S("HOTLINE_RASA_VENV", "rasa_venv", _path,
      "the Python 3.10 virtualenv with Rasa (.ci/rasa-setup)"),
    S("HOTLINE_RASA_TIMEOUT", "rasa_timeout", _float,
      "seconds a Rasa parse may take", low=0, above=True),
    # -- phone, SMS and WeChat (channels/twilio_*.py, channels/wechat.py, services/notify.py)
    S("HOTLINE_PUBLIC_URL", "public_url", _url,
      "the service's address as the providers see it (behind a proxy); Twilio signs it"),
    S("HOTLINE_TWILIO_ACCOUNT_SID", "twilio_account_sid", _text, "Twilio account SID"),
    S("HOTLINE_TWILIO_AUTH_TOKEN", "twilio_auth_token", _text,
      "Twilio auth token (signs webhooks)", secret=True),
    S("HOTLINE_TWILIO_FROM_NUMBER", "twilio_from_number", _text,
      "the number calls and texts come from"),
    S("HOTLINE_TWILIO_API_BASE_URL", "twilio_api_base_url", _url,
      "Twilio REST API address; unset: Twilio's own"),
    S("HOTLINE_TWILIO_AGENT_QUEUE", "twilio_agent_queue", _text,
      "the <Enqueue> queue callers wait in for an agent"),
    S("HOTLINE_TWILIO_AGENT_NUMBER", "twilio_agent_number", _text,
      "set: callers are put through to this number (<Dial>) instead of the queue"),
    S("HOTLINE_TWILIO_RECORD_CALLS", "twilio_record_calls", _bool, "record calls"),
    S("HOTLINE_TWILIO_LIVE_TRANSCRIPTION", "twilio_live_transcription", _bool,
      "transcribe a call put through to an agent live and show each utterance in the agent "
      "workspace as it is said (Twilio bills it)"),
    S("HOTLINE_EMERGENCY_DIAL", "emergency_dial", _dial,
      "whom a caller is put through to for each emergency number (a trunk may need a prefix)"),
    S("HOTLINE_SMS_MAX_CHARS", "sms_max_chars", _int,
      "longest SMS sent; longer texts go as numbered parts", low=20),
    S("HOTLINE_WECHAT_TOKEN", "wechat_token", _text,
      "WeChat official account Token (signs messages)", secret=True),
    S("HOTLINE_WECHAT_AES_KEY", "wechat_aes_key", _text,
      "WeChat EncodingAESKey (43 characters)", low=43, high=43, secret=True),
    S("HOTLINE_WECHAT_APP_ID", "wechat_app_id", _text, "WeChat AppID"),
    S("HOTLINE_WECHAT_APP_SECRET", "wechat_app_secret", _text, "WeChat AppSecret", secret=True),
    S("HOTLINE_WECHAT_API_BASE_URL", "wechat_api_base_url", _url, "WeChat API address"),
    S("HOTLINE_WECHAT_MODE", "wechat_mode", _choice,
      "message encryption as set in the official account; unset: safe when an AES key is "
      "given, else plain", choices=("plain", "compat", "safe")),
    S("HOTLINE_WECHAT_REPLY_DEADLINE", "wechat_reply_deadline", _float,
      "seconds to answer in the reply itself (WeChat waits 5); later answers go out through "
      "the customer-service API", low=0, high=5, above=True, below=True),
    # -- dispatch, time limits and supervision (services/dispatch, deadlines, supervision)
    S("HOTLINE_LIMIT_DISPATCH_DAYS", "limit_dispatch_days", _float,
      "working days for the centre to dispatch an order", low=0.01),
    S("HOTLINE_LIMIT_SIGN_FOR_DAYS", "limit_sign_for_days", _float,
      "working days for a unit to sign for an order", low=0.01),
    S("HOTLINE_LIMIT_CONTACT_DAYS", "limit_contact_days", _float,
      "working days for a unit to contact the citizen", low=0.01),
    S("HOTLINE_LIMIT_HANDLING_DAYS", "limit_handling_days", _float,
      "working days for a unit to resolve an order", low=0.01),
    S("HOTLINE_YELLOW_SHARE", "yellow_share", _float,
      "share of a time limit after which its light turns yellow", low=0.01, high=0.99),
    S("HOTLINE_REPEAT_WINDOW_DAYS", "repeat_window_days", _int,
      "days within which a report of the same problem counts as a repeat", low=1),
    S("HOTLINE_REPEAT_THRESHOLD", "repeat_threshold", _int,
      "reports of the same problem (the first included) from which it is escalated", low=2),
    S("HOTLINE_SCHEDULER", "scheduler_enabled", _bool,
      "run the background job scheduler in this service process"),
    S("HOTLINE_SCHEDULER_POLL_SECONDS", "scheduler_poll_seconds", _float,
      "seconds between the scheduler's looks for due jobs", low=0.1),
    S("HOTLINE_LIGHT_SCAN_SECONDS", "light_scan_seconds", _float,
      "seconds between scans for time-limit lights", low=1),
    S("HOTLINE_JOB_LEASE_SECONDS", "job_lease_seconds", _float,
      "seconds a worker holds a job without renewing its lease", low=1),
    S("HOTLINE_SUPERVISION_PHONE", "supervision_phone", _text,
      "the supervision desk's phone, for the centre's own lights and escalations"),
    S("HOTLINE_NOTIFY_HOURS", "notify_hours", _hours,
      "local hours [start, end) in which units may be texted"),
    S("HOTLINE_SESSION_HOURS", "session_hours", _float,
      "hours a staff sign-in lasts", low=0.1),
    # -- revisits (services/revisits)
    S("HOTLINE_REVISIT_HOURS", "revisit_hours", _hours,
      "local hours [start, end) in which citizens are called or texted for a revisit"),
    S("HOTLINE_REVISIT_MAX_CALLS", "revisit_max_calls", _int,
      "revisit calls before the SMS fallback", low=0),
    S("HOTLINE_REVISIT_RETRY_MINUTES", "revisit_retry_minutes", _float,
      "minutes before the first revisit call is retried (doubling each time)", low=0,
      above=True),
    S("HOTLINE_REVISIT_DELAY_MINUTES", "revisit_delay_minutes", _float,
      "minutes after resolution before the revisit starts", low=0),
    S("HOTLINE_REVISIT_REPLY_HOURS", "revisit_reply_hours", _float,
      "hours to wait for the citizen's answer to a revisit", low=0, above=True),
    # -- operations: logs and metrics (docs/operations.md)
    S("HOTLINE_LOG_FORMAT", "log_format", _choice,
      "text, or json for one JSON object a line (each with the request id)",
      choices=("text", "json")),
    S("HOTLINE_METRICS_ALLOW", "metrics_allow", _networks,
      "addresses or networks besides loopback that may read /metrics, comma-separated"),
    S("HOTLINE_METRICS_TOKEN", "metrics_token", _text,
      "a bearer token that opens /metrics from anywhere (at least 16 characters)", low=16,
      secret=True),
    # -- Open311 GeoReport v2 (channels/open311.py, docs/open311.md)
    S("HOTLINE_OPEN311_TYPE", "open311_type", _choice,
      "realtime: a POST answers with the request number; batch: with a token that "
      "tokens/{token} turns into it", choices=("realtime", "batch")),
    S("HOTLINE_OPEN311_CONTACT", "open311_contact", _text,
      "who API users contact, as the discovery document says"),
    # -- rate limits, per process, in memory (docs/security.md lists every route's limit)
    S("HOTLINE_RATE_CHAT_SESSION", "rate_chat_session", _rate,
      "chat messages one web chat session may send (REST and WebSocket together)"),
    S("HOTLINE_RATE_CHAT_ADDRESS", "rate_chat_address", _rate,
      "chat requests (messages, history, WebSocket connections and frames) from one client "
      "address"),
    S("HOTLINE_RATE_LOGIN_ADDRESS", "rate_login_address", _rate,
      "login attempts from one client address"),
    S("HOTLINE_RATE_LOGIN_ACCOUNT", "rate_login_account", _rate,
      "wrong passwords for one user name, from any address (known name or not); past it "
      "every login with that name waits"),
    S("HOTLINE_RATE_WEBHOOK_REFUSED", "rate_webhook_refused", _rate,
      "Twilio and WeChat webhook requests from one address that fail their signature check "
      "(signed requests are not counted)"),
    S("HOTLINE_RATE_ADDRESS", "rate_address", _rate,
      "requests from one client address on every other route (pages, staff APIs, figures)"),
    S("HOTLINE_TRUSTED_PROXIES", "trusted_proxies", _networks,
      "reverse proxies in front of the service (addresses or networks): for their requests "
      "the client address is taken from X-Forwarded-For"),
    S("HOTLINE_LOGIN_FREE_FAILURES", "login_free_failures", _int,
      "wrong passwords in a row for one user name from one address before the login backoff "
      "starts", low=1),
    S("HOTLINE_LOGIN_BACKOFF_SECONDS", "login_backoff_seconds", _float,
      "the first login backoff, in seconds; it doubles with each further wrong password",
      low=0, above=True),
    S("HOTLINE_LOGIN_BACKOFF_MAX_SECONDS", "login_backoff_max_seconds", _float,
      "the longest login backoff, in seconds", low=1),
    # -- origins, demo accounts, personal data
    S("HOTLINE_ALLOWED_ORIGINS", "allowed_origins", _origins,
      "origins (https://www.example.gov.cn, comma-separated) of the pages that may embed the "
      "chat widget; the service's own origin is always allowed"),
    S("HOTLINE_DEMO_ACCOUNTS", "demo_accounts", _bool,
      "create the demo staff accounts (with HOTLINE_DEMO_DATA) and allow them on a public "
      "bind; unset: only when the service listens on a loopback address"),
    S("HOTLINE_RETENTION_DAYS", "retention_days", _int,
      "days after which `hotline purge` anonymises closed conversations, their citizens' "
      "phones and openids, and call recordings", low=1),
)
# fmt: on
del S


# -- threads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadPlan:
    """How one process spends its share of the machine's cores (applied at start-up by
    services/core/threads.py, before numpy, onnxruntime and tokenizers make their pools).

    Measured on 2 cores with fresh texts (bench/throughput.py): a parse spends most of its
    time in Python under the GIL (n-grams, jieba, sklearn), so a second onnxruntime thread
    per parse gained little and spun the other core; parses side by side, each on one thread,
    did better, and more onnxruntime threads than cores in all processes together did worse.
    """

    parallel_calls: int  # CPU-bound calls at once: the event loop's default executor
    threads_per_call: int = 1  # each library's own pool: onnxruntime, BLAS/OpenMP, tokenizers


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_plan(settings: Settings, cpus: int | None = None) -> ThreadPlan:
    """The process's share of the cores (cores // HOTLINE_PROCESSES_PER_HOST, at least 1):
    one thread a call, share + 4 calls at once; HOTLINE_NLU_THREADS sets the calls at once,
    and fewer than the share gives each call's libraries the rest of it."""
    cpus = available_cpus() if cpus is None else cpus
    share = max(1, cpus // settings.processes_per_host)
    if settings.nlu_threads:
        calls = settings.nlu_threads
        return ThreadPlan(parallel_calls=calls, threads_per_call=max(1, share // calls))
    # Python's own default headroom (cores + 4), on the share: in the whole chat a worker
    # count equal to the share served fewer messages (bench/throughput.py, chat series 5)
    return ThreadPlan(parallel_calls=share + 4, threads_per_call=1)


# -- a service open to the network -----------------------------------------------------------


class StartRefused(Exception):
    """The service will not start as configured; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def demo_accounts_wanted(settings: Settings) -> bool:
    """Create the demo accounts: with the demo data, on a loopback bind or when asked."""
    if not settings.load_demo_data:
        return False
    if settings.demo_accounts is not None:
        return settings.demo_accounts
    return is_loopback(settings.host)


def public_bind_problems(settings: Settings) -> list[str]:
    """What must not go onto the network as configured (empty on a loopback bind): the
    secrets that sign and encrypt the providers' traffic, and where they are checked."""
    if is_loopback(settings.host):
        return []
    problems = []
    twilio = settings.twilio_account_sid or settings.twilio_auth_token
    wechat = settings.wechat_app_id or settings.wechat_token or settings.wechat_app_secret
    if twilio:
        token = settings.twilio_auth_token or ""
        if not re.fullmatch(r"[0-9a-f]{32}", token):
            problems.append("HOTLINE_TWILIO_AUTH_TOKEN must be the account's 32-character token")
    if wechat:
        if not re.fullmatch(r"[A-Za-z0-9]{3,32}", settings.wechat_token or ""):
            problems.append("HOTLINE_WECHAT_TOKEN must be set (3-32 letters and digits)")
        if settings.wechat_app_id and len(settings.wechat_app_secret or "") != 32:
            problems.append("HOTLINE_WECHAT_APP_SECRET must be the account's 32-character secret")
    if (twilio or wechat) and not (settings.public_url or "").startswith("https://"):
        # the providers sign the public URL; over plain http anyone on the way reads it all
        problems.append("HOTLINE_PUBLIC_URL must be the service's https:// address")
    return problems


def _check_together(settings: Settings) -> None:
    """Checks between settings, after each one has been read on its own."""
    mode = settings.wechat_mode
    if mode in ("compat", "safe") and settings.wechat_aes_key is None:
        raise ValueError(
            f"HOTLINE_WECHAT_MODE={mode} needs HOTLINE_WECHAT_AES_KEY (the EncodingAESKey), "
            "got none"
        )
