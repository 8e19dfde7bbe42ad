"""Imports through the real readers and bulk services."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from kizuna.catalog.models import Product
from kizuna.commerce.models import Order
from kizuna.customers.models import Customer, Identity
from kizuna.dataio.importers import run_import
from kizuna.dataio.mapping import auto_mapping
from kizuna.dataio.readers import detect_encoding, open_table

pytestmark = pytest.mark.django_db

HEADER = "external_id,family_name,given_name,email,phone,birthday\n"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _csv(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_encodings_are_detected_and_read_right(tmp_path: Path) -> None:
    text = HEADER + "c1,山田,花子,hanako@example.com,090-1111-2222,1990-04-01\n"
    for encoding, expected in (("cp932", "cp932"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8")):
        path = _csv(tmp_path, text, encoding)
        table = open_table(path)
        assert table.encoding == expected
        rows = list(table.rows)
        assert rows == [
            (
                1,
                {
                    "external_id": "c1",
                    "family_name": "山田",
                    "given_name": "花子",
                    "email": "hanako@example.com",
                    "phone": "090-1111-2222",
                    "birthday": "1990-04-01",
                },
            )
        ]
    assert table.columns[0] == "external_id"  # no BOM glued to the first column name
    assert detect_encoding("ｱｲｳ髙橋①".encode("cp932")) == "cp932"  # CP932-only characters


def test_hubspot_and_salesforce_columns_map_automatically() -> None:
    hubspot = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Postal Code"]
    assert auto_mapping("customers", hubspot) == {
        "Record ID": "external_id",
        "First Name": "given_name",
        "Last Name": "family_name",
        "Email": "email",
        "Phone Number": "phone",
        "Postal Code": "postal_code",
    }
    salesforce = ["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "Birthdate"]
    mapped = auto_mapping("customers", salesforce)
    assert mapped["Id"] == "external_id" and mapped["Birthdate"] == "birthday"
    assert mapped["Phone"] == "phone" and "MobilePhone" not in mapped


def test_import_is_idempotent_and_updates_by_external_id(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "Record ID,First Name,Last Name,Email\n"
        "h-1,Hanako,Yamada,hanako@example.com\n"
        "h-2,Taro,Sato,taro@example.com\n",
    )
    first = run_import("customers", path)
    assert (first.created, first.updated, first.errors) == (2, 0, [])
    again = run_import("customers", path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Customer.objects.count() == 2
    changed = _csv(tmp_path, "Record ID,Last Name\nh-1,Suzuki\n", name="b.csv")
    assert run_import("customers", changed).updated == 1
    hanako = Customer.objects.get(identities__kind="external", identities__value="h-1")
    assert (hanako.family_name, hanako.given_name) == ("Suzuki", "Hanako")


def test_bad_rows_all_or_nothing_or_skipped(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        HEADER
        + "c1,山田,花子,ok@example.com,,\n"
        + "c2,佐藤,太郎,not-an-email,,\n"
        + "c3,鈴木,一郎,,,2999-01-01\n"
        + "c4,田中,次郎,ok@example.com,,\n",
    )
    report = run_import("customers", path)
    assert [(e.row, e.field) for e in report.errors] == [
        (2, "email"),
        (3, "birthday"),
        (4, "email"),
    ]
    assert not report.applied and Customer.objects.count() == 0 and Identity.objects.count() == 0
    preview = run_import("customers", path, dry_run=True, skip_bad_rows=True)
    assert preview.created == 1 and Customer.objects.count() == 0  # dry run writes nothing
    skipped = run_import("customers", path, skip_bad_rows=True)
    assert (skipped.created, skipped.skipped) == (1, 3)
    assert list(Customer.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_broken_quote_deep_in_the_file_names_the_row(tmp_path: Path) -> None:
    lines = [HEADER] + [f"c{i},山田,花子{i},,,\n" for i in range(1, 50_000)]
    lines.append('c50000,"山田,花子,,,\n')  # the quote is never closed
    lines.append("c50001,山田,花子,,,\n")
    path = _csv(tmp_path, "".join(lines))
    report = run_import("customers", path)
    assert len(report.errors) == 1
    assert report.errors[0].row == 50_000 and "line 50001" in report.errors[0].message
    assert Customer.objects.count() == 0  # the 49,999 good rows before it were rolled back


def test_jsonl_products_and_orders(tmp_path: Path) -> None:
    products = tmp_path / "p.jsonl"
    products.write_text(
        json.dumps({"sku": "TEA-1", "name": "緑茶", "price_minor": 1200})
        + "\n"
        + json.dumps({"sku": "CUP-1", "name": "湯呑", "price_minor": "3,000"})
        + "\n",
        encoding="utf-8",
    )
    assert run_import("products", products).created == 2
    assert Product.objects.get(sku="CUP-1").price_minor == 3000
    run_import("customers", _csv(tmp_path, "external_id,email\nc1,a@example.com\n", name="c.csv"))
    orders = _csv(
        tmp_path,
        "number,customer_external_id,placed_at,sku,quantity\n"
        "A-1,c1,2026-04-01 10:00,TEA-1,2\n"
        "A-1,c1,2026-04-01 10:00,CUP-1,1\n"
        "A-2,nobody,2026-04-02 10:00,TEA-1,1\n",
        name="o.csv",
    )
    report = run_import("orders", orders, skip_bad_rows=True)
    assert report.created == 1 and [(e.row, e.field) for e in report.errors] == [
        (3, "customer_external_id")
    ]
    order = Order.objects.get(number="A-1")
    assert order.total_minor == 2 * 1200 + 3000 and order.lines.count() == 2
    assert run_import("orders", orders, skip_bad_rows=True).unchanged == 1  # re-import


def test_cli_import_and_export(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Id,FirstName,LastName,Email\nsf-1,Ken,Ito,ken@example.com\n", "cp932")
    out = io.StringIO()
    call_command("import", "customers", str(path), "--dry-run", stdout=out)
    assert "Dry run" in out.getvalue() and Customer.objects.count() == 0
    call_command("import", "customers", str(path), stdout=io.StringIO())
    bad = _csv(tmp_path, "Id,Email\nsf-2,nope\n", name="bad.csv")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import", "customers", str(bad), stdout=io.StringIO())
    target = tmp_path / "out.csv"
    call_command("export", "customers", "--out", str(target))
    text = target.read_text(encoding="utf-8-sig")
    assert text.splitlines()[1].startswith(f"{Customer.objects.get().pk},sf-1,Ito,Ken,")
    # The export re-imports unchanged.
    assert run_import("customers", target).unchanged == 1
    dump = io.StringIO()
    call_command("export", "customer", str(Customer.objects.get().pk), stdout=dump)
    data = json.loads(dump.getvalue())
    assert data["customer"]["email"] == "ken@example.com"
    assert {i["kind"] for i in data["identities"]} == {"external", "email"}


PROFILE_COLUMNS = (
    "external_id,family_name,given_name,family_name_kana,given_name_kana,email,phone,"
    "birthday,gender,postal_code,prefecture,city,address_line,locale\n"
)


def test_imported_customers_are_stored_as_the_services_store_them(tmp_path: Path) -> None:
    """The bulk write (COPY on PostgreSQL, INSERTs on SQLite) stores what customer_create
    stores, with one signup time on the customer, its identities and its created event."""
    from kizuna.customers.models import Event
    from kizuna.customers.services import customer_create

    values = {
        "family_name": "山田",
        "given_name": "花子",
        "family_name_kana": "やまだ",
        "given_name_kana": "ﾊﾅｺ",
        "email": "Hanako@Example.JP",
        "phone": "03(1234)5678",
        "birthday": "1990-04-01",
        "gender": "female",
        "postal_code": "１５０-０００１",
        "prefecture": "JP-13",
        "city": "渋谷区",
        "address_line": "神南1-2-3",
        "locale": "en",
    }
    before = timezone.now()
    path = _csv(tmp_path, PROFILE_COLUMNS + "c1," + ",".join(values.values()) + "\n")
    report = run_import("customers", path)
    assert (report.created, report.errors) == (1, [])
    imported = Customer.objects.get()
    reference = customer_create(
        data={**values, "email": "other@example.jp", "phone": "090-1234-5678"}
    )
    fields = [f.name for f in Customer._meta.concrete_fields]
    skip = {"id", "email", "phone", "created_at", "updated_at", "first_seen_at", "last_seen_at"}
    skip.add("last_seen_on")  # derived from last_seen_at
    for name in fields:
        if name not in skip:
            assert getattr(imported, name) == getattr(reference, name), name
    assert (imported.email, imported.phone) == ("hanako@example.jp", "+81312345678")
    assert imported.gender == "female" and str(imported.birthday) == "1990-04-01"
    signup = imported.created_at
    assert before <= signup <= timezone.now() and signup.tzinfo is not None
    assert imported.updated_at == imported.first_seen_at == imported.last_seen_at == signup
    identities = Identity.objects.filter(customer=imported).order_by("kind")
    assert [(i.kind, i.value, i.source, i.created_at) for i in identities] == [
        ("email", "hanako@example.jp", "import", signup),
        ("external", "c1", "import", signup),
        ("phone", "+81312345678", "import", signup),
    ]
    event = Event.objects.get(customer=imported)
    assert (event.type, event.source, event.properties, event.context) == (
        "customer.created",
        "import",
        {},
        {},
    )
    assert event.occurred_at == event.received_at == signup and len(event.message_id) == 32
    assert int(event.message_id[16:], 16) == imported.pk


def test_reimport_of_many_rows_updates_only_the_changed(tmp_path: Path) -> None:
    rows = [f"c{i},山田,花子{i},c{i}@example.com,090{10_000_000 + i:08d},\n" for i in range(2000)]
    first = run_import("customers", _csv(tmp_path, HEADER + "".join(rows)))
    assert (first.created, first.errors) == (2000, [])
    rows[5] = "c5,佐藤,花子5,c5@example.com,090-1000-0005,\n"  # same phone, written differently
    rows[1500] = "c1500,山田,花子1500,new1500@example.com,09010001500,\n"
    rows.append("c2000,鈴木,一郎,c2000@example.com,,\n")
    again = run_import("customers", _csv(tmp_path, HEADER + "".join(rows), name="b.csv"))
    assert (again.created, again.updated, again.unchanged, again.errors) == (1, 2, 1998, [])
    assert Customer.objects.get(identities__value="c5").family_name == "佐藤"
    moved = Customer.objects.get(identities__value="c1500")
    assert moved.email == "new1500@example.com"
    assert Identity.objects.get(kind="email", value="new1500@example.com").customer == moved
    assert Customer.objects.count() == 2001


def _rows(count: int) -> list[str]:
    return [f"c{i},山田,花子,c{i}@example.com,090{10_000_000 + i:08d},\n" for i in range(count)]


def _nothing_written() -> bool:
    from kizuna.customers.models import Event

    return not (Customer.objects.exists() or Identity.objects.exists() or Event.objects.exists())


def test_all_or_nothing_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks already handed to the database (on PostgreSQL: copying on their thread while
    the next chunk is checked) are rolled back with everything else."""
    from kizuna.customers.models import Event
    from kizuna.dataio import importers

    monkeypatch.setattr(importers, "CHUNK", 500)
    rows = _rows(1600)
    rows[1233] = "c1233,山田,花子,not-an-email,,\n"
    path = _csv(tmp_path, HEADER + "".join(rows))
    report = run_import("customers", path)
    assert [(e.row, e.field) for e in report.errors] == [(1234, "email")]
    assert not report.applied and _nothing_written()
    broken = [*rows[:1300], 'c1300,"山田,花子,,,\n', *rows[1301:]]  # a quote never closed
    report = run_import("customers", _csv(tmp_path, HEADER + "".join(broken), name="b.csv"))
    assert [e.row for e in report.errors] == [1301] and _nothing_written()
    skipped = run_import("customers", path, skip_bad_rows=True)
    assert (skipped.created, skipped.skipped) == (1599, 1)
    assert Customer.objects.count() == Event.objects.count() == 1599
    assert Identity.objects.count() == 3 * 1599


def test_a_failed_write_rolls_back_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails in the database (here: made to fail on the third chunk's
    identities, as a unique constraint would) fails the import, and nothing is kept."""
    from django.db import IntegrityError, connection

    from kizuna.customers import bulk
    from kizuna.dataio import importers

    monkeypatch.setattr(importers, "CHUNK", 500)
    real_copy = bulk.table_copy
    calls: list[str] = []

    threads: set[str] = set()

    def failing_copy(model, fields, rows, **kwargs):
        calls.append(model.__name__)
        threads.add(threading.current_thread().name)
        if calls.count("Identity") == 3:
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_copy(model, fields, rows, **kwargs)

    monkeypatch.setattr(bulk, "table_copy", failing_copy)
    with pytest.raises(IntegrityError):
        run_import("customers", _csv(tmp_path, HEADER + "".join(_rows(1600))))
    assert calls.count("Customer") >= 3 and _nothing_written()
    # On PostgreSQL the chunks were copied on the import's writer thread.
    assert ("kizuna-copy-behind" in threads) == (connection.vendor == "postgresql")
