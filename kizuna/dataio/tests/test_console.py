"""Console pages of data in and out."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation

from kizuna.customers import services
from kizuna.customers.models import Customer, CustomerMerge
from kizuna.dataio.models import ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_pages_need_login_and_permissions(make_staff) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    assert client.get("/data/").status_code == 302
    client.force_login(make_staff("analyst"))
    assert client.get("/data/").status_code == 200
    assert client.get("/data/duplicates/").status_code == 403
    assert client.get("/data/sources/").status_code == 403


def test_upload_preview_then_run_as_a_job(
    make_staff, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.DATA_DIR = tmp_path
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    client.force_login(make_staff("admin"))
    upload = SimpleUploadedFile(
        "hubspot.csv",
        "Record ID,First Name,Email\nh1,Hanako,h@example.com\nh2,Taro,bad\n".encode("cp932"),
    )
    response = client.post("/data/", {"kind": "customers", "file": upload})
    assert response.status_code == 302
    preview = client.get(response["Location"])
    body = preview.content.decode()
    assert "1 error" in body and "Hanako" in body and Customer.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = client.post(
            response["Location"],
            {
                "action": "run",
                "skip_bad_rows": "on",
                "map:Record ID": "external_id",
                "map:First Name": "given_name",
                "map:Email": "email",
            },
        )
    assert run.status_code == 302 and Customer.objects.count() == 0  # not run in the request
    job = ImportJob.objects.get()
    assert (job.status, job.rows_total, job.skip_bad_rows) == ("queued", 2, True)
    waiting = client.get(f"/data/jobs/{job.pk}/progress/").content.decode()
    assert "hx-get" in waiting and "0 of about 2 rows" in waiting
    for callback in queued:  # the worker (Huey immediate in tests)
        callback()
    assert list(Customer.objects.values_list("given_name", flat=True)) == ["Hanako"]
    page = client.get(run["Location"]).content.decode()
    assert "Imported: 1 created, 0 updated, 1 skipped." in page and "hx-get" not in page
    errors = client.get(f"/data/jobs/{job.pk}/errors.csv")
    content = b"".join(errors.streaming_content)  # type: ignore[attr-defined]
    lines = content.decode().lstrip("\ufeff").splitlines()
    assert lines[0] == "row,field,message" and lines[1].startswith("2,email,")
    assert len(lines) == 2
    client.force_login(make_staff("analyst"))  # may not import customers
    assert client.get(f"/data/jobs/{job.pk}/").status_code == 404


def test_a_running_job_shows_live_progress_from_the_cache(make_staff, tmp_path) -> None:
    from django.core.cache import cache

    job = ImportJob.objects.create(
        kind="customers", file_name="x.csv", path=str(tmp_path / "x"), rows_total=1000
    )
    ImportJob.objects.filter(pk=job.pk).update(status="running")
    cache.set(f"dataio:import-job:{job.pk}:rows", 250)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    client.force_login(make_staff("admin"))
    body = client.get(f"/data/jobs/{job.pk}/progress/").content.decode()
    assert 'value="25"' in body and "250 of about 1000 rows" in body and "hx-get" in body
    cache.delete(f"dataio:import-job:{job.pk}:rows")


def test_a_job_of_an_all_or_nothing_file_with_a_bad_row_writes_nothing(tmp_path) -> None:
    from kizuna.dataio.jobs import import_job_run, import_job_start

    path = tmp_path / "c.upload"
    path.write_text("external_id,email\ne1,a@example.com\ne2,not-an-email\n")
    job = import_job_start(kind="customers", path=path, file_name="c.csv")
    job = import_job_run(job_id=job.pk)
    assert (job.status, job.applied, job.errors_total) == ("done", False, 1)
    assert job.errors[0]["row"] == 2 and job.errors[0]["field"] == "email"
    assert Customer.objects.count() == 0 and not path.exists()
    assert import_job_run(job_id=job.pk).finished_at == job.finished_at  # not run twice


def test_duplicates_page_and_merge(make_staff) -> None:
    a = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "花子",
            "birthday": "1990-01-01",
            "postal_code": "100-0001",
        }
    )
    b = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "花子",
            "birthday": "1990-01-01",
            "postal_code": "100-0001",
        }
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    client.force_login(make_staff("marketer"))
    page = client.get("/data/duplicates/")
    assert f"Merge into #{a.pk}" in page.content.decode()
    client.post("/data/merge/", {"survivor": a.pk, "merged": b.pk})
    assert CustomerMerge.objects.get().merged_id == b.pk
    listing = client.get("/data/duplicates/").content.decode()
    assert "No suspected duplicates" in listing and "Undo merge" in listing
    record = CustomerMerge.objects.get()
    client.post("/data/merge/", {"undo": record.pk})
    record.refresh_from_db()
    assert record.undone_at is not None
    assert Customer.objects.get(pk=b.pk).merged_into_id is None
    assert f"Merge into #{a.pk}" in client.get("/data/duplicates/").content.decode()
    client.force_login(make_staff("analyst"))
    assert client.post("/data/merge/", {"undo": record.pk}).status_code == 403


def test_sources_page_shows_the_key_once(make_staff) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    client.force_login(make_staff("admin"))
    created = client.post("/data/sources/", {"name": "Web shop"}).content.decode()
    assert "kzw_" in created
    assert "kzw_" in client.get("/data/sources/").content.decode()  # the prefix only...
    from kizuna.tracking.models import Source

    source = Source.objects.get()
    assert source.write_key_prefix in created and len(source.write_key_digest) == 64


def test_customer_csv_export(make_staff) -> None:
    services.customer_create(data={"family_name": "山田", "email": "y@example.com"})
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English text
    client.force_login(make_staff("marketer"))  # an analyst's export is masked (privacy)
    response = client.get("/data/customers.csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert text.splitlines()[0].startswith("id,external_id,family_name")
    assert "y@example.com" in text
