"""The official Segment and RudderStack Python SDKs, unmodified, against a live kizuna
server on loopback: what they send is accepted, deduplicated and processed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpResponse
from pytest_django.live_server_helper import LiveServer

from kizuna.customers.models import Customer, Event
from kizuna.tracking import views
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import source_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def write_key(transactional_db: None) -> str:
    return source_create(name="Server SDK").write_key


def _fail_once_after_storing(
    monkeypatch: pytest.MonkeyPatch, status: int, headers: dict[str, str] | None = None
) -> list[int]:
    """The worst case for a client: the batch is stored, then the answer is an error, so
    the client sends it again. Returns the statuses answered."""
    real = views._accepted_response
    answered: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> HttpResponse:
        if not answered:
            response = HttpResponse(status=status)
            for name, value in (headers or {}).items():
                response[name] = value
        else:
            response = real(*args, **kwargs)
        answered.append(response.status_code)
        return response

    monkeypatch.setattr(views, "_accepted_response", flaky)
    return answered


def _send(client: Any, n: int) -> None:
    client.identify("user-1", {"email": "sdk@example.com", "firstName": "Taro"})
    for i in range(n):
        client.track("user-1", "Product Viewed", {"sku": f"SKU-{i}"})
    client.page(anonymous_id="anon-7", name="Home", properties={"path": "/"})


def _check(n: int) -> None:
    customer = Customer.objects.get(identities__kind="external", identities__value="user-1")
    assert customer.email == "sdk@example.com" and customer.given_name == "Taro"
    viewed = Event.objects.filter(type="Product Viewed", customer=customer)
    assert viewed.count() == n  # each exactly once, retries included
    assert sorted(viewed.values_list("properties__sku", flat=True)) == sorted(
        f"SKU-{i}" for i in range(n)
    )
    page = Event.objects.get(type="page")
    assert page.anonymous_id == "anon-7" and page.customer_id is None
    assert page.context["library"]["name"]  # the SDK's context is kept
    assert InboxBatch.objects.filter(processed_at__isnull=True).count() == 0


def test_segment_sdk_with_a_retried_batch(
    live_server: LiveServer, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment.analytics import Client

    answered = _fail_once_after_storing(monkeypatch, 503)
    errors: list[Any] = []
    client = Client(
        write_key, host=live_server.url, on_error=lambda e, batch: errors.append(e), max_retries=3
    )
    _send(client, 25)
    client.flush()
    client.shutdown()
    assert errors == []
    assert answered[0] == 503 and answered[1:] and set(answered[1:]) == {200}
    assert InboxBatch.objects.count() >= 2  # the same batch was stored twice...
    _check(25)  # ...and processed once


def test_segment_sdk_honours_429_retry_after(
    live_server: LiveServer, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment.analytics import Client

    answered = _fail_once_after_storing(monkeypatch, 429, {"Retry-After": "1"})
    client = Client(write_key, host=live_server.url, max_retries=3)
    _send(client, 5)
    client.flush()
    client.shutdown()
    assert answered[0] == 429 and 200 in answered
    _check(5)


def test_segment_sdk_sync_mode(live_server: LiveServer, write_key: str) -> None:
    from segment.analytics import Client

    client = Client(write_key, host=live_server.url, sync_mode=True)
    _send(client, 3)
    _check(3)


def test_rudderstack_sdk_gzip_and_retry(
    live_server: LiveServer, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rudderstack.analytics import Client

    answered = _fail_once_after_storing(monkeypatch, 500)
    errors: list[Any] = []
    client = Client(
        write_key,
        host=live_server.url,
        gzip=True,
        on_error=lambda e, batch: errors.append(e),
        max_retries=3,
    )
    _send(client, 20)
    client.flush()
    client.shutdown()
    assert errors == []
    assert answered[0] == 500 and 200 in answered
    _check(20)


def test_sdk_with_a_wrong_key_delivers_nothing(live_server: LiveServer, write_key: str) -> None:
    from segment.analytics import Client

    errors: list[Callable[..., Any]] = []
    client = Client("kzw_not-a-key", host=live_server.url, on_error=lambda e, b: errors.append(e))
    client.track("user-1", "Product Viewed")
    client.flush()
    client.shutdown()
    assert errors and getattr(errors[0], "status", None) == 401
    assert Event.objects.filter(type="Product Viewed").count() == 0
