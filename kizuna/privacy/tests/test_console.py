"""Console pages of privacy: support opens and exports, only an administrator erases (after
typing the customer number), notices are published by version, the audit log downloads as
CSV, and the customer 360 shows the consent history."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from django.test import Client

from kizuna.customers.models import Customer
from kizuna.privacy.models import DataSubjectRequest, PurposeNotice
from kizuna.privacy.tests.conftest import EMAIL, World


def _login(client: Client, make_staff: Any, role: str) -> Any:
    user = make_staff(role)
    client.force_login(user)
    return user


def test_support_opens_and_exports_admin_erases(world: World, make_staff: Any) -> None:
    support = Client(HTTP_ACCEPT_LANGUAGE="en")
    _login(support, make_staff, "support")
    page = support.get(f"/privacy/?customer={world.subject.pk}")
    assert page.status_code == 200 and b"Open a request" in page.content
    response = support.post(
        "/privacy/", {"kind": "export", "customer_id": world.subject.pk, "note": "by post"}
    )
    assert response.status_code == 302
    export = DataSubjectRequest.objects.get(kind="export")
    response = support.post(f"/privacy/{export.pk}/export/")
    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "customers.profile.csv" in names

    bad = support.post("/privacy/", {"kind": "erase", "customer_id": 987654})
    assert bad.status_code == 400 and b"Choose a customer." in bad.content
    support.post("/privacy/", {"kind": "erase", "customer_id": world.subject.pk})
    erase = DataSubjectRequest.objects.get(kind="erase")
    assert support.post(f"/privacy/{erase.pk}/erase/", {"confirm": "x"}).status_code == 403

    admin = Client(HTTP_ACCEPT_LANGUAGE="en")
    _login(admin, make_staff, "admin")
    admin.post(f"/privacy/{erase.pk}/erase/", {"confirm": "999"})
    assert Customer.objects.get(pk=world.subject.pk).email == EMAIL  # not confirmed
    response = admin.post(f"/privacy/{erase.pk}/erase/", {"confirm": str(world.subject.pk)})
    assert response.status_code == 302
    assert Customer.objects.get(pk=world.subject.pk).email == ""
    page = admin.get(f"/privacy/{erase.pk}/")
    assert b"customers.profile" in page.content and b"Completed" in page.content
    assert b"erased-" in admin.get("/privacy/erasures/").content


def test_notices_publish_versions(db: None, make_staff: Any) -> None:
    admin = Client(HTTP_ACCEPT_LANGUAGE="en")
    _login(admin, make_staff, "admin")
    data = {"purpose": "analytics", "title": "分析", "text": "購買履歴を分析します。"}
    assert admin.post("/privacy/notices/", data).status_code == 302
    assert admin.post("/privacy/notices/", {**data, "text": "v2"}).status_code == 302
    assert list(PurposeNotice.objects.values_list("version", flat=True)) == [2, 1]
    assert admin.post("/privacy/notices/", {**data, "title": ""}).status_code == 400
    marketer = Client()
    _login(marketer, make_staff, "marketer")
    assert marketer.get("/privacy/notices/").status_code == 200
    assert marketer.post("/privacy/notices/", data).status_code == 403
    assert PurposeNotice.objects.count() == 2


def test_audit_log_browse_and_csv(world: World, make_staff: Any) -> None:
    admin = Client(HTTP_ACCEPT_LANGUAGE="en")
    _login(admin, make_staff, "admin")
    page = admin.get("/privacy/audit/?model=customers.customer")
    assert page.status_code == 200 and "山田".encode() in page.content
    response = admin.get("/privacy/audit/?model=customers.customer&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["id", "timestamp", "actor"]
    assert len(rows) > 1 and all(r[4] == "customers.customer" for r in rows[1:])
    analyst = Client()
    _login(analyst, make_staff, "analyst")
    assert analyst.get("/privacy/audit/").status_code == 403


def test_customer_360_shows_the_consent_history(world: World, make_staff: Any) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    _login(client, make_staff, "support")
    page = client.get(f"/customers/{world.subject.pk}/")
    assert page.status_code == 200
    assert b"Consent history and privacy requests" in page.content
    assert b"portal" in page.content  # the ledger entry's source
