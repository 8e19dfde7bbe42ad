"""The one place that reads kizuna's environment (KIZUNA_*).

Settings modules turn this into Django settings; nothing else reads os.environ.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigError(RuntimeError):
    """A KIZUNA_* variable is missing or malformed."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    queue_url: str
    secret_key: str | None
    debug: bool
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    time_zone: str
    language_code: str
    cache_url: str
    api_max_body_bytes: int
    log_level: str
    tracking_rate: str
    tracking_max_batch_bytes: int
    tracking_process_chunk: int
    # With a backlog the worker's transactions grow (doubling) up to this many messages.
    tracking_process_chunk_max: int = 50000
    # where /v1/ requests are stored before processing: "" = the main database
    tracking_inbox_url: str = ""
    at_risk_threshold: float = 0.5
    clv_horizon_months: int = 12
    clv_discount_rate: float = 0.10
    # messaging: credentials key, public base URL of links in messages, guardrails
    encryption_key: str = ""
    public_url: str = "http://localhost:8000"
    quiet_hours: str = "21-8"
    # Japanese Sundays and national holidays quiet all day (kizuna.core.jp_calendar)
    quiet_on_holidays: bool = False
    daily_cap: int = 3
    # `kizuna worker`'s CPU niceness (0-19): background work yields the CPU to the web
    # process, so accepting requests stays fast while the worker catches up
    worker_nice: int = 10

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret_key"


def load() -> Config:
    data_dir = Path(os.environ.get("KIZUNA_DATA_DIR") or Path.cwd() / "kizuna-data").resolve()
    database_url = (
        os.environ.get("KIZUNA_DATABASE_URL") or f"sqlite:///{data_dir / 'kizuna.sqlite3'}"
    )
    # On SQLite the tracking inbox is a file of its own by default, so that accepting events
    # never waits for the worker's write lock on the main database; "default" keeps it there.
    inbox_url = os.environ.get("KIZUNA_TRACKING_INBOX_URL") or (
        f"sqlite:///{data_dir / 'inbox.sqlite3'}" if database_url.startswith("sqlite:") else ""
    )
    if inbox_url == "default":
        inbox_url = ""
    if inbox_url and not inbox_url.startswith("sqlite:"):
        raise ConfigError(
            f"KIZUNA_TRACKING_INBOX_URL must be sqlite:///... or default, got {inbox_url!r}"
        )
    queue_url = os.environ.get("KIZUNA_QUEUE_URL") or f"sqlite:///{data_dir / 'queue.sqlite3'}"
    if not queue_url.startswith(("sqlite://", "redis://", "rediss://", "memory://")):
        raise ConfigError(
            "KIZUNA_QUEUE_URL must start with sqlite://, redis://, rediss:// or memory://, "
            f"got {queue_url!r}"
        )
    chunk = _int("KIZUNA_TRACKING_PROCESS_CHUNK", 5000)
    chunk_max = _int("KIZUNA_TRACKING_PROCESS_CHUNK_MAX", max(chunk, 50000))
    if chunk < 1 or chunk_max < chunk:
        raise ConfigError(
            "KIZUNA_TRACKING_PROCESS_CHUNK must be at least 1 and "
            f"KIZUNA_TRACKING_PROCESS_CHUNK_MAX at least as large, got {chunk} and {chunk_max}"
        )
    worker_nice = _int("KIZUNA_WORKER_NICE", 10)
    if not 0 <= worker_nice <= 19:
        raise ConfigError(f"KIZUNA_WORKER_NICE must be between 0 and 19, got {worker_nice}")
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        queue_url=queue_url,
        secret_key=os.environ.get("KIZUNA_SECRET_KEY") or None,
        debug=_bool("KIZUNA_DEBUG", False),
        allowed_hosts=_list("KIZUNA_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"]),
        csrf_trusted_origins=_list("KIZUNA_CSRF_TRUSTED_ORIGINS", []),
        time_zone=os.environ.get("KIZUNA_TIME_ZONE") or "Asia/Tokyo",
        language_code=os.environ.get("KIZUNA_LANGUAGE") or "ja",
        cache_url=os.environ.get("KIZUNA_CACHE_URL") or "",
        api_max_body_bytes=_int("KIZUNA_API_MAX_BODY_BYTES", 1_048_576),
        log_level=os.environ.get("KIZUNA_LOG_LEVEL") or "INFO",
        tracking_rate=os.environ.get("KIZUNA_TRACKING_RATE") or "20000/m",
        tracking_max_batch_bytes=_int("KIZUNA_TRACKING_MAX_BATCH_BYTES", 500 * 1024),
        tracking_process_chunk=chunk,
        tracking_process_chunk_max=chunk_max,
        tracking_inbox_url=inbox_url,
        at_risk_threshold=_float("KIZUNA_AT_RISK_THRESHOLD", 0.5),
        clv_horizon_months=_int("KIZUNA_CLV_HORIZON_MONTHS", 12),
        clv_discount_rate=_float("KIZUNA_CLV_DISCOUNT_RATE", 0.10),
        encryption_key=os.environ.get("KIZUNA_ENCRYPTION_KEY") or "",
        public_url=(os.environ.get("KIZUNA_PUBLIC_URL") or "http://localhost:8000").rstrip("/"),
        quiet_hours=os.environ.get("KIZUNA_QUIET_HOURS") or "21-8",
        quiet_on_holidays=_bool("KIZUNA_QUIET_ON_HOLIDAYS", False),
        daily_cap=_int("KIZUNA_MESSAGE_DAILY_CAP", 3),
        worker_nice=worker_nice,
    )


def local_secret_key(config: Config) -> str:
    """A per-installation key kept in the data directory, for non-production use.

    Production settings never call this: they require KIZUNA_SECRET_KEY.
    """
    path = config.secret_key_file
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key
