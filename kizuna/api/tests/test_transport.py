from __future__ import annotations

import json

import pytest
from django.test import override_settings

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.customers.models import Customer, Event

# The after-commit subscribers of each request run as in production (no real commit needed:
# nothing here reads from another thread or process), without the flush of transaction=True.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ('{"family_name": "山田",', "Malformed JSON"),
        ("{'family_name': 'x'}", "Malformed JSON"),
        ('["family_name"]', "JSON object"),
        ('{"age": NaN}', "NaN"),
        (b"\xff\xfe{", "UTF-8"),
    ],
)
def test_malformed_json_is_400_naming_the_body(admin_api: ApiClient, raw: str, says: str) -> None:
    response = admin_api.post("/api/v1/customers", raw, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert fields(response) == ["body"]
    assert says in response.json()["detail"][0]["message"]
    assert Customer.objects.count() == 0


def test_missing_body_is_422(admin_api: ApiClient) -> None:
    response = admin_api.post("/api/v1/customers", "")
    assert response.status_code == 422
    assert fields(response) == ["body"]


@override_settings(KIZUNA_API_MAX_BODY_BYTES=1024)
def test_oversize_body_is_413_before_anything_else(admin_api: ApiClient) -> None:
    big = {"family_name": "山", "address_line": "x" * 2000}
    response = admin_api.post("/api/v1/customers", big)
    assert response.status_code == 413
    assert fields(response) == ["body"]
    assert "1024" in response.json()["detail"][0]["message"]
    assert Customer.objects.count() == 0
    assert Event.objects.count() == 0
    # Checked before authentication and parsing: even junk from nobody gets 413.
    junk = ApiClient(None).post("/api/v1/customers", "{" * 2000)
    assert junk.status_code == 413
    small = admin_api.post("/api/v1/customers", {"family_name": "山"})
    assert small.status_code == 201


@override_settings(KIZUNA_API_MAX_BODY_BYTES=10_000, DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_djangos_own_body_limit_is_also_a_413_json(admin_api: ApiClient) -> None:
    response = admin_api.post("/api/v1/customers", {"address_line": "x" * 2000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert fields(response) == ["body"]
    assert Customer.objects.count() == 0


def test_responses_are_utf8_json_with_unescaped_japanese(admin_api: ApiClient) -> None:
    response = admin_api.post("/api/v1/customers", {"family_name": "山田"})
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert "山田".encode() in response.content
    assert json.loads(response.content)["family_name"] == "山田"
