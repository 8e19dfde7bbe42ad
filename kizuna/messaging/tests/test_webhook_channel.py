"""The outbound webhook channel against a real local HTTP server: JSON payload, HMAC-SHA256
signature over timestamp and body, idempotency key, retry on 5xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kizuna.messaging import services
from kizuna.messaging.channels.webhook import signature
from kizuna.messaging.tests.conftest import free_port, make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]], list[int]]]:
    received: list[dict[str, Any]] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers.items()), "body": body})
            self.send_response(statuses.pop(0) if statuses else 204)
            self.end_headers()

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/hook", received, statuses
    server.shutdown()
    server.server_close()


def test_signed_payload_and_retry(commit, receiver) -> None:
    url, received, statuses = receiver
    channel = services.channel_save(
        kind="webhook", name="crm", settings={"url": url}, credentials={"secret": "whsec"}
    )
    template = services.template_save(
        slug="hook",
        name="hook",
        channel_kind="webhook",
        body_format="json",
        purpose="transactional",
        variants={"ja": {"subject": "", "body": '{"name": "{{ customer.name }}", "n": 1}'}},
    )
    statuses.append(503)
    delivery, _ = commit(
        services.delivery_enqueue,
        source="order:9",
        customer=make_customer(opt_in=False),
        channel=channel,
        template=template,
    )
    delivery.refresh_from_db()
    assert delivery.status == "deferred" and "503" in delivery.reason
    services.delivery_send_batch(delivery_ids=[delivery.pk])  # not yet due: skipped
    assert len(received) == 1
    type(delivery).objects.filter(pk=delivery.pk).update(not_before=None)
    services.delivery_send_batch(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    first, second = received
    assert first["body"] == second["body"]
    assert first["headers"]["Idempotency-Key"] == delivery.idempotency_key
    payload = json.loads(second["body"])
    assert payload == {
        "delivery_id": delivery.pk,
        "to": str(delivery.customer_id),
        "name": "山田 花子",
        "n": 1,
    }
    header = second["headers"]["X-Kizuna-Signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    expected = hmac.new(b"whsec", f"{timestamp}.".encode() + second["body"], hashlib.sha256)
    assert header == f"t={timestamp},v1={expected.hexdigest()}"
    assert signature("other", timestamp, second["body"]) != header


def test_webhook_channel_needs_url_and_secret() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as err:
        services.channel_save(kind="webhook", name="x", settings={}, credentials={})
    assert set(err.value.message_dict) == {"settings.url", "credentials.secret"}
    with pytest.raises(ValidationError) as err:
        services.channel_save(
            kind="email", name="y", settings={"host": "h", "from_address": "a@b", "bogus": 1}
        )
    assert set(err.value.message_dict) == {"settings.bogus"}
