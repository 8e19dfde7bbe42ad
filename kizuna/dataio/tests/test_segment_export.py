"""Exporting one segment's members to CSV: console button, API filter and CLI option."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from kizuna.customers.services import customer_create
from kizuna.iam.services import api_key_create
from kizuna.segments.services import segment_save

pytestmark = pytest.mark.django_db


def _emails(text: str) -> set[str]:
    rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    return {row["email"] for row in rows}


@pytest.fixture
def tokyo_segment() -> int:
    customer_create(data={"family_name": "東京", "prefecture": "JP-13", "email": "t@x.jp"})
    customer_create(data={"family_name": "大阪", "prefecture": "JP-27", "email": "o@x.jp"})
    customer_create(data={"family_name": "新宿", "prefecture": "JP-13", "email": "s@x.jp"})
    rules = {
        "version": 1,
        "match": "all",
        "conditions": [{"field": "profile.prefecture", "op": "eq", "value": "JP-13"}],
    }
    return segment_save(data={"name": "Tokyo", "rules": rules}).pk


def test_console_exports_only_the_segments_members(make_staff, tokyo_segment: int) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_staff("marketer"))
    page = client.get(f"/segments/{tokyo_segment}/").content.decode()
    assert f"/data/customers.csv?segment={tokyo_segment}" in page
    response = client.get("/data/customers.csv", {"segment": tokyo_segment})
    assert response.status_code == 200
    assert f"segment-{tokyo_segment}-customers.csv" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    assert _emails(text) == {"t@x.jp", "s@x.jp"}
    # the segment narrows the other filters, it does not replace them
    narrowed = client.get("/data/customers.csv", {"segment": str(tokyo_segment), "q": "新宿"})
    assert _emails(b"".join(narrowed.streaming_content).decode()) == {"s@x.jp"}  # type: ignore[attr-defined]
    assert client.get("/data/customers.csv", {"segment": 999999}).status_code == 404
    assert client.get("/data/customers.csv", {"segment": "x"}).status_code == 404


def test_console_segment_export_needs_the_customer_permission(
    django_user_model: Any, tokyo_segment: int
) -> None:
    anonymous = Client().get("/data/customers.csv", {"segment": tokyo_segment})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    client = Client()
    client.force_login(django_user_model.objects.create_user("norole", is_staff=True))
    assert client.get("/data/customers.csv", {"segment": tokyo_segment}).status_code == 403


def test_api_segment_filter(django_user_model: Any, tokyo_segment: int) -> None:
    owner = django_user_model.objects.create_user("owner", is_staff=True)
    key = api_key_create(name="m", role="marketer", created_by=owner).secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get("/api/v1/exports/customers.csv", {"segment": tokyo_segment})
    assert response.status_code == 200
    assert _emails(b"".join(response.streaming_content).decode()) == {"t@x.jp", "s@x.jp"}  # type: ignore[attr-defined]
    missing = client.get("/api/v1/exports/customers.csv", {"segment": 999999})
    assert missing.status_code == 422
    [problem] = missing.json()["detail"]
    assert problem["field"] == "segment" and "999999" in problem["message"]
    assert client.get("/api/v1/exports/customers.csv", {"segment": 0}).status_code == 422
    assert Client().get("/api/v1/exports/customers.csv", {"segment": 1}).status_code == 401


def test_cli_segment_option(tmp_path, tokyo_segment: int) -> None:
    target = tmp_path / "tokyo.csv"
    call_command("export", "customers", "--segment", str(tokyo_segment), "--out", str(target))
    assert _emails(target.read_text(encoding="utf-8")) == {"t@x.jp", "s@x.jp"}
    missing = tmp_path / "missing.csv"
    with pytest.raises(CommandError, match="999999"):
        call_command("export", "customers", "--segment", "999999", "--out", str(missing))
    assert not missing.exists()  # nothing half-written
