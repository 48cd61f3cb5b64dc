"""The one configuration object. Every setting comes from the environment, with a default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

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
    kb_answer_threshold: float | None = None
    load_demo_data: bool = True
    # Sentence embeddings beside n-grams in the NLU (HOTLINE_EMBEDDINGS=0: n-grams only).
    use_embeddings: bool = True
    city_name: str = "石狮市"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def nlu_dir(self) -> Path:
        return self.nlu_model_dir or (self.data_dir / "models" / "nlu")

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
            load_demo_data=env.get("HOTLINE_DEMO_DATA", "1") not in ("0", "false", "no"),
            use_embeddings=env.get("HOTLINE_EMBEDDINGS", "1") not in ("0", "false", "no"),
            city_name=env.get("HOTLINE_CITY") or defaults.city_name,
        )
