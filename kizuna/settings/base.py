"""Settings for the embedded default (SQLite + Huey on SQLite), built from core.config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.translation import gettext_lazy as _

from kizuna.core import config as kizuna_config

CONFIG = kizuna_config.load()
PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = CONFIG.data_dir

SECRET_KEY = CONFIG.secret_key or kizuna_config.local_secret_key(CONFIG)
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = CONFIG.csrf_trusted_origins

INSTALLED_APPS = [
    "kizuna.core.admin_site.KizunaAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # its templates and bundled Swagger UI assets: the API docs load nothing from a CDN
    "huey.contrib.djhuey",
    "auditlog",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "kizuna.core",
    "kizuna.iam",
    "kizuna.customers",
    "kizuna.catalog",
    "kizuna.commerce",
    "kizuna.loyalty",
    "kizuna.surveys",
    "kizuna.community",
    "kizuna.subscriptions",
    "kizuna.tracking",
    "kizuna.analytics",
    "kizuna.recommendations",
    "kizuna.segments",
    "kizuna.messaging",
    "kizuna.campaigns",
    "kizuna.line_marketing",
    "kizuna.accounts",
    "kizuna.support",
    "kizuna.journeys",
    "kizuna.privacy",
    "kizuna.console",
    "kizuna.dataio",
    "kizuna.portal",
    "kizuna.api",
    "kizuna.cli",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "kizuna.iam.otp.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "kizuna.urls"
WSGI_APPLICATION = "kizuna.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str, *, synchronous: str = "NORMAL") -> dict[str, Any]:
    db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        db["CONN_MAX_AGE"] = 0
        # WAL lets the web server and the worker read while the other writes;
        # IMMEDIATE transactions avoid "database is locked" upgrades mid-transaction.
        # A 64 MiB page cache (SQLite's default is 2 MiB, filled as pages are read) keeps a
        # worker's chunk of thousands of rows from re-reading and spilling index pages.
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                f"PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; "
                "PRAGMA foreign_keys=ON; "
                "PRAGMA cache_size=-65536;"
            ),
        }
    return db


DATABASES = {"default": _database(CONFIG.database_url)}
if CONFIG.tracking_inbox_url:
    # The tracking inbox (accepted /v1/ requests) in a SQLite file of its own: accepting
    # never waits for the worker's write lock on the main database (docs/ingestion.md).
    # FULL: an accepted batch is on disk before the 200 (NORMAL can lose the last commits on
    # power loss), as PostgreSQL's synchronous_commit keeps it; about 0.6 ms per request.
    DATABASES["inbox"] = _database(CONFIG.tracking_inbox_url, synchronous="FULL")
DATABASE_ROUTERS = ["kizuna.tracking.routers.InboxRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if CONFIG.cache_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.cache_url,
        }
    }
else:
    # One machine: a file cache in the data directory is shared by the web processes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
# django-ratelimit only trusts memcached/redis; on the single-machine default the file
# cache is shared by every process on the host, which is what the limits need.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
RATELIMIT_USE_CACHE = "default"


# An idle consumer polls with backoff up to max_delay (Huey's default 10 s): 1 s keeps the
# first task after a quiet spell (an ingestion wake-up, a password reset) prompt.
_CONSUMER_MAX_DELAY = 1.0


def _huey(url: str, immediate: bool = False) -> dict[str, Any]:
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "huey_class": "huey.SqliteHuey",
            "name": "kizuna",
            "filename": path,
            "immediate": immediate,
            "consumer": {"workers": 2, "worker_type": "thread", "max_delay": _CONSUMER_MAX_DELAY},
        }
    if url.startswith("memory://"):
        return {"huey_class": "huey.MemoryHuey", "name": "kizuna", "immediate": True}
    return {
        "huey_class": "huey.RedisHuey",
        "name": "kizuna",
        "url": url,
        "immediate": immediate,
        "consumer": {"workers": 4, "worker_type": "thread", "max_delay": _CONSUMER_MAX_DELAY},
    }


HUEY = _huey(CONFIG.queue_url)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:dashboard"
LOGOUT_REDIRECT_URL = "console:login"

LANGUAGE_CODE = CONFIG.language_code
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
FORMAT_MODULE_PATH = "kizuna.formats"  # 2026年11月22日 in Japanese (kizuna/formats/ja)
TIME_ZONE = CONFIG.time_zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, even if empty
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js from the installed plotly package (console charts): no copy, no CDN
    "kizuna.console.plotly_assets.PlotlyFinder",
]
# Serve straight from the app folders so `kizuna demo` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.api_max_body_bytes
KIZUNA_API_MAX_BODY_BYTES = CONFIG.api_max_body_bytes
# Customer insight (kizuna.analytics): scoring-run defaults
KIZUNA_AT_RISK_THRESHOLD = CONFIG.at_risk_threshold
KIZUNA_CLV_HORIZON_MONTHS = CONFIG.clv_horizon_months
KIZUNA_CLV_DISCOUNT_RATE = CONFIG.clv_discount_rate

# Segment-compatible ingestion (/v1/): per-source request rate, batch size (the spec's
# 500 KB), messages per worker transaction.
TRACKING_RATE = CONFIG.tracking_rate
TRACKING_MAX_BATCH_BYTES = CONFIG.tracking_max_batch_bytes
TRACKING_PROCESS_CHUNK = CONFIG.tracking_process_chunk
TRACKING_PROCESS_CHUNK_MAX = CONFIG.tracking_process_chunk_max
KIZUNA_WORKER_NICE = CONFIG.worker_nice

# Messaging (kizuna.messaging): the key that encrypts channel credentials (derived from
# SECRET_KEY when unset), the public base URL of links in messages, guardrails.
KIZUNA_ENCRYPTION_KEY = CONFIG.encryption_key
KIZUNA_PUBLIC_URL = CONFIG.public_url
KIZUNA_QUIET_HOURS = CONFIG.quiet_hours
KIZUNA_QUIET_ON_HOLIDAYS = CONFIG.quiet_on_holidays
KIZUNA_MESSAGE_DAILY_CAP = CONFIG.daily_cap
MESSAGING_PUBLIC_RATE = "600/m"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# Console sessions end after 2 hours without a request (idle timeout: every request renews the
# cookie) and when the browser closes (docs/privacy.md, "Access").
SESSION_COOKIE_AGE = 60 * 60 * 2
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Staff roles that must sign in with a TOTP second factor (kizuna.iam.otp); empty = off.
KIZUNA_2FA_ROLES: list[str] = []

# Privacy (docs/privacy.md): data-subject requests are due this many days after they are opened;
# retention per data kind (0 = keep for ever).
PRIVACY_REQUEST_DUE_DAYS = 30
PRIVACY_RETAIN_EVENTS_MONTHS = 25
PRIVACY_RETAIN_DELIVERY_BODIES_DAYS = 180
PRIVACY_RETAIN_INBOX_DAYS = 30
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

AUDITLOG_INCLUDE_ALL_MODELS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": CONFIG.log_level},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # `kizuna worker` (run_huey) adds its own handler to "huey"; not propagating to the
        # root handler keeps each line printed once.
        "huey": {"level": CONFIG.log_level, "handlers": [], "propagate": False},
    },
}
