"""Test settings: the base settings with tasks run in-process and fast password hashing."""

from __future__ import annotations

import os

from kizuna.settings.base import *  # noqa: F403
from kizuna.settings.base import CONFIG, DATABASES, _huey

HUEY = _huey(CONFIG.queue_url, immediate=True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A file, not pytest-django's shared-cache memory database: threads in the concurrency tests
# then lock like real processes do (WAL + IMMEDIATE), instead of "table is locked".
DATABASES["default"]["TEST"] = {"NAME": str(CONFIG.data_dir / f"test-{os.getpid()}.sqlite3")}
# The tracking inbox stays in the test database (rolled back with each test); its own file
# is exercised by the tracking tests that run real processes with the base settings.
DATABASES.pop("inbox", None)

if os.environ.get("KIZUNA_TEST_DB") == "postgresql":
    # HOST/PORT/USER are filled in by conftest once pytest-postgresql has started a server.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "kizuna",
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "USER": "postgres",
            "PASSWORD": "",
            "TEST": {"NAME": "kizuna_test"},
        }
    }
