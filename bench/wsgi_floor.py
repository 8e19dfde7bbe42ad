"""WSGI apps that answer every request at once, for gunicorn: the floor of what a request
costs on this machine with no Django, no database and the same HTTP client
(`application`: bench/loyalty_redeem_api.py --bare; `segment_application`, 200 as the
Segment SDKs expect: bench/ingest_segment.py's `floor` phase)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"ok": true}'


def _answer(
    status: str, environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)  # the body read, as a real server must
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return _answer("201 Created", environ, start_response)


def segment_application(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    return _answer("200 OK", environ, start_response)
