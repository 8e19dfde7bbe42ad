"""Public endpoints of messaging: open pixel, click redirect, one-click unsubscribe (RFC 8058),
the LINE webhook and the inbound bounce endpoint. Every one is signed or authenticated and
rate limited; only those whose protocol forbids a CSRF token are CSRF-exempt."""

from __future__ import annotations

import base64
import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from kizuna.messaging import crypto, links, services
from kizuna.messaging.choices import ChannelKind
from kizuna.messaging.models import Channel

logger = logging.getLogger(__name__)
RATE = getattr(settings, "MESSAGING_PUBLIC_RATE", "600/m")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
@ratelimit(key="ip", rate=RATE, block=True)
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """Always the same 1×1 GIF; a valid token records the open (once per delivery)."""
    delivery_id = links.unsign(links.OPEN, token)
    if isinstance(delivery_id, int):
        services.delivery_track_open(delivery_id=delivery_id, **_client(request))
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))


def _client(request: HttpRequest) -> dict[str, str]:
    return {
        "ip": str(request.META.get("REMOTE_ADDR") or ""),
        "user_agent": str(request.META.get("HTTP_USER_AGENT") or ""),
    }


@require_http_methods(["GET", "HEAD"])
@ratelimit(key="ip", rate=RATE, block=True)
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Redirect to the target signed into the token; anything else is a 404 (no open
    redirect: the URL cannot be changed without breaking the signature). Every click is
    recorded and classified; a HEAD (a link checker) is a machine's."""
    data = links.unsign(links.CLICK, token)
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], int)):
        raise Http404
    delivery_id, target = data
    if not isinstance(target, str) or urlsplit(target).scheme not in ("http", "https"):
        raise Http404
    services.delivery_track_click(
        delivery_id=delivery_id, url=target, method=request.method or "GET", **_client(request)
    )
    return _no_store(HttpResponseRedirect(target))


@csrf_exempt  # RFC 8058: mail providers POST without cookies or a CSRF token
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=RATE, block=True)
@never_cache
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """POST (one-click from the mail client, or the confirmation page's button): unsubscribe
    now, answer 200. GET never unsubscribes (link scanners follow links): it shows the
    confirmation page of the portal."""
    delivery_id = links.unsign(links.UNSUB, token)
    if not isinstance(delivery_id, int):
        raise Http404
    if request.method == "GET":
        return _no_store(HttpResponseRedirect(reverse("portal:unsubscribe", args=[token])))
    delivery = services.unsubscribe(delivery_id=delivery_id, source="one_click")
    if delivery is None:
        raise Http404
    return _no_store(HttpResponse("unsubscribed\n", content_type="text/plain; charset=utf-8"))


@csrf_exempt  # LINE signs the body (X-Line-Signature) instead
@require_POST
@ratelimit(key="ip", rate=RATE, block=True)
def line_webhook(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=channel_id, kind=ChannelKind.LINE)
    try:
        secret = str(crypto.decrypt(channel.credentials_encrypted).get("channel_secret") or "")
    except crypto.CredentialsError:
        secret = ""
    if not secret:
        return HttpResponse("channel secret not configured", status=503)
    body = request.body.decode("utf-8", errors="replace")
    signature = request.headers.get("X-Line-Signature", "")
    try:
        WebhookParser(secret).parse(body, signature)  # verifies the signature
    except InvalidSignatureError:
        return HttpResponseBadRequest("invalid signature")
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("malformed webhook body")
    import json

    payload: dict[str, Any] = json.loads(body)
    results = [
        services.line_event_apply(channel=channel, event=event)
        for event in payload.get("events", [])
        if isinstance(event, dict)
    ]
    return JsonResponse({"ok": True, "results": results})


@csrf_exempt  # machine-to-machine: a bearer token from the channel's credentials
@require_POST
@ratelimit(key="ip", rate=RATE, block=True)
def bounce_inbound(request: HttpRequest, channel_id: int) -> HttpResponse:
    """An MTA or a mail-processing script posts each DSN (the raw message) here."""
    channel = get_object_or_404(Channel, pk=channel_id, kind=ChannelKind.EMAIL)
    expected = str(crypto.decrypt(channel.credentials_encrypted).get("inbound_token") or "")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(expected, given):
        return HttpResponse("unauthorised", status=401)
    try:
        done = services.bounce_process(raw=request.body)
    except ValidationError as exc:
        return JsonResponse({"detail": exc.message_dict}, status=422)
    return JsonResponse({"ok": True, "deliveries": [d.pk for d in done]})


@csrf_exempt  # machine-to-machine: a bearer token from the channel's credentials
@require_POST
@ratelimit(key="ip", rate=RATE, block=True)
def complaint_inbound(request: HttpRequest, channel_id: int) -> HttpResponse:
    """A provider's complaint webhook: {"delivery_id": 12, "feedback_id": "..."} (or the
    VERP address as "recipient"). A replay of the same feedback id changes nothing."""
    import json

    channel = get_object_or_404(Channel, pk=channel_id, kind=ChannelKind.EMAIL)
    expected = str(crypto.decrypt(channel.credentials_encrypted).get("inbound_token") or "")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(expected, given):
        return HttpResponse("unauthorised", status=401)
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        logger.warning("messaging: complaint webhook body is not JSON")
        return JsonResponse({"detail": {"body": ["not JSON"]}}, status=422)
    if not isinstance(payload, dict):
        return JsonResponse({"detail": {"body": ["expected an object"]}}, status=422)
    delivery_id = payload.get("delivery_id")
    if delivery_id is None and isinstance(payload.get("recipient"), str):
        delivery_id = links.delivery_from_verp(payload["recipient"])
    if not isinstance(delivery_id, int):
        return JsonResponse({"detail": {"delivery_id": ["names no delivery"]}}, status=422)
    feedback_id = str(payload.get("feedback_id") or "")[:100]
    delivery = services.complaint_record(delivery_id=delivery_id, feedback_id=feedback_id)
    if delivery is None:
        logger.warning("messaging: complaint for unknown delivery %s", delivery_id)
        return JsonResponse({"detail": {"delivery_id": ["names no delivery of ours"]}}, status=422)
    return JsonResponse({"ok": True, "delivery": delivery.pk})
