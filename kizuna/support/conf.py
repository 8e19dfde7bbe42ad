"""Support settings (Django settings with these defaults; see docs/support.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Largest attachment accepted, in bytes (5 MB).
    "KIZUNA_SUPPORT_MAX_ATTACHMENT_BYTES": 5 * 1024 * 1024,
    # Contact-form inquiries accepted per contact (email address) per hour.
    "KIZUNA_SUPPORT_FLOOD_LIMIT": 5,
    # FAQ assistant: answer automatically when the confidence reaches this (0..1).
    "KIZUNA_SUPPORT_FAQ_THRESHOLD": 0.6,
    # Temperature of the softmax that turns BM25 scores into a confidence.
    "KIZUNA_SUPPORT_FAQ_TEMPERATURE": 1.0,
    # Channels replies go out on (channel names); empty: the first active one of its kind.
    "KIZUNA_SUPPORT_EMAIL_CHANNEL": "",
    "KIZUNA_SUPPORT_LINE_CHANNEL": "",
    # Optional OpenAI-compatible chat-completions endpoint (off when the URL is empty).
    "KIZUNA_SUPPORT_LLM_URL": "",
    "KIZUNA_SUPPORT_LLM_MODEL": "",
    "KIZUNA_SUPPORT_LLM_API_KEY": "",
    "KIZUNA_SUPPORT_LLM_TIMEOUT": 10.0,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
