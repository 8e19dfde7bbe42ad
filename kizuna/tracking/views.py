"""The Segment-compatible HTTP Tracking API (`/v1/...`): authenticate by write key, guard
size and rate, validate, store in the inbox, answer. Processing happens in the worker."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import is_ratelimited

from kizuna.core.timeutil import now
from kizuna.tracking import protocol, selectors, services

# Gzipped bodies are smaller than their content; refuse absurd ones before reading them.
MAX_WIRE_BYTES = 4 * 1024 * 1024
_last_wake = [0.0]
_wake_lock = threading.Lock()


def _error(status: int, field: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse(
        {"success": False, "detail": [{"field": field, "message": message}]},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _accepted_response(kept: int, errors: list[tuple[str, str]]) -> HttpResponse:
    body: dict[str, Any] = {"success": True, "accepted": kept, "rejected": len(errors)}
    if errors:
        body["errors"] = [{"field": f, "message": m} for f, m in errors[:50]]
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


def _wake_worker() -> None:
    """Queue a drain task, at most every WAKE_INTERVAL per process: one task drains
    everything pending, and looks again WAKE_INTERVAL after it started for the batches
    whose wake-up was skipped here; the periodic drain covers a wake-up lost in a crash."""
    from huey.contrib.djhuey import HUEY

    from kizuna.tracking.tasks import WAKE_INTERVAL, inbox_drain

    clock = time.monotonic()
    with _wake_lock:
        if clock - _last_wake[0] < WAKE_INTERVAL and not HUEY.immediate:
            return
        _last_wake[0] = clock
    inbox_drain(None if HUEY.immediate else time.time())


def _rate(group: str, request: HttpRequest) -> str:
    return str(settings.TRACKING_RATE)


def _rate_key(group: str, request: HttpRequest) -> str:
    return str(getattr(request, "tracking_source_id", "") or request.META.get("REMOTE_ADDR", ""))


@csrf_exempt
def ingest(request: HttpRequest, kind: str) -> HttpResponse:
    kind = protocol.SHORT_PATHS.get(kind, kind)
    if kind == "import":
        kind = "batch"
    if kind not in (*protocol.TYPES, "batch"):
        return _error(404, "path", _("Unknown endpoint."))
    if request.method != "POST":
        return _error(405, "method", _("Use POST."), Allow="POST")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_WIRE_BYTES:
        return _error(413, "body", _("The request body is too large."))
    limit = int(settings.TRACKING_MAX_BATCH_BYTES)
    received_at = now()
    try:
        # Read the stream directly: DATA_UPLOAD_MAX_MEMORY_SIZE (the REST API's limit) does
        # not apply here; our own limits do.
        raw = request.read(MAX_WIRE_BYTES + 1)
        if len(raw) > MAX_WIRE_BYTES:
            raise protocol.ProtocolError(413, "body", _("The request body is too large."))
        single_limit = protocol.MAX_MESSAGE_BYTES if kind != "batch" else limit
        body = protocol.decode_body(
            raw, request.META.get("HTTP_CONTENT_ENCODING", ""), limit=single_limit
        )
        data = protocol.parse_json(body)
        basic_user = protocol.basic_auth_user(request.META.get("HTTP_AUTHORIZATION", ""))
        body_key = data.get("writeKey")
        write_key = basic_user or (body_key if isinstance(body_key, str) else "")
        if not write_key:
            raise protocol.ProtocolError(
                401, "writeKey", _("A write key is required (HTTP Basic user name or writeKey).")
            )
        source = selectors.source_authenticate(write_key)
        if source is None:
            raise protocol.ProtocolError(401, "writeKey", _("The write key is unknown or revoked."))
        request.tracking_source_id = source.id  # type: ignore[attr-defined]
        if is_ratelimited(
            request, group="tracking", key=_rate_key, rate=_rate, method="POST", increment=True
        ):
            return _error(
                429, "rate", _("Too many requests for this source; retry later."), Retry_After="1"
            )
        accepted = protocol.accept(data, kind=kind, received_at=received_at, write_key=write_key)
    except protocol.ProtocolError as exc:
        if exc.status == 413 and kind != "batch":
            exc.message = _("A message is larger than 32 KB.")
        return _error(exc.status, exc.field, exc.message)
    kept = services.inbox_accept(source_id=source.id, received_at=received_at, accepted=accepted)
    if kept:
        _wake_worker()
    return _accepted_response(kept, accepted.errors)
