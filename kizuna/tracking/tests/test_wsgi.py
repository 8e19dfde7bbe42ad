"""The lean WSGI dispatch: /v1/ skips the staff site's middleware, everything else keeps it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_started
from django.db import close_old_connections
from django.test import RequestFactory

from kizuna.customers.models import Event
from kizuna.tracking.services import source_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def application() -> Iterator[Any]:
    from kizuna.wsgi import application

    # As Django's test client does: keep the test's transaction open across requests.
    request_started.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)


def call(
    app: Any, method: str, path: str, body: bytes = b"", **headers: Any
) -> tuple[str, dict[str, str], bytes]:
    request = RequestFactory().generic(
        method, path, data=body, content_type="application/json", **headers
    )
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *exc: Any) -> None:
        seen["status"], seen["headers"] = status, dict(response_headers)

    content = b"".join(app(request.environ, start_response))
    return seen["status"], seen["headers"], content


def test_v1_goes_through_the_lean_handler_and_stores_the_batch(application: Any) -> None:
    key = source_create(name="Web").write_key
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    body = json.dumps({"batch": [{"type": "track", "userId": "u1", "event": "Viewed"}]})
    status, headers, content = call(
        application, "POST", "/v1/batch", body.encode(), HTTP_AUTHORIZATION=auth
    )
    assert status.startswith("200") and json.loads(content)["accepted"] == 1
    # None of the staff site's middleware ran: no session cookie, no CSP or frame headers.
    assert "Content-Security-Policy" not in headers and "X-Frame-Options" not in headers
    assert Event.objects.filter(type="Viewed").count() == 1  # Huey immediate in tests
    status, _headers, content = call(
        application, "POST", "/v1/track", b"{", HTTP_AUTHORIZATION=auth, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert status.startswith("400") and b"Malformed JSON" in content


def test_other_paths_keep_the_full_middleware(application: Any) -> None:
    status, headers, _content = call(application, "GET", "/login/")
    assert status.startswith("200") and "X-Frame-Options" in headers
