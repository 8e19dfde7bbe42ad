"""Hardened settings for a public deployment. They fail closed: no default secret, no DEBUG."""

from __future__ import annotations

from kizuna.core.config import ConfigError
from kizuna.settings.base import *  # noqa: F403
from kizuna.settings.base import CONFIG

if not CONFIG.secret_key or len(CONFIG.secret_key) < 50:
    raise ConfigError("KIZUNA_SECRET_KEY must be set to a random string of 50+ characters")
if CONFIG.debug:
    raise ConfigError("KIZUNA_DEBUG must not be true in production settings")

SECRET_KEY = CONFIG.secret_key
DEBUG = False
SECURE_SSL_REDIRECT = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Sessions: the idle timeout of the base settings (2 hours, renewed by every request).
