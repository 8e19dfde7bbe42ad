"""Exports: customer lists to CSV, and everything kizuna holds about one customer as JSON
(for privacy requests: access and portability)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from kizuna.core.timeutil import now
from kizuna.customers.export_providers import export_sections
from kizuna.customers.models import ConsentEntry, Customer, CustomerMerge, Event, Identity
from kizuna.iam.masking import mask_identity, mask_row
from kizuna.segments.selectors import segment_condition, segment_get

CSV_COLUMNS = [
    "id",
    "external_id",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "birthday",
    "gender",
    "postal_code",
    "prefecture",
    "city",
    "address_line",
    "locale",
    "first_seen_at",
    "last_seen_at",
    "created_at",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def in_segment(customers: QuerySet[Customer], segment_id: int | None) -> QuerySet[Customer]:
    """`customers` narrowed to the current members of a segment (its rules evaluated now, or
    its static list); unchanged for None. Raises NotFound for an unknown segment."""
    if segment_id is None:
        return customers
    # The segment's condition in the same WHERE, so each page of the export reads only its rows.
    return customers.filter(segment_condition(segment=segment_get(segment_id=segment_id)))


def customer_csv_lines(
    customers: QuerySet[Customer], *, bom: bool = True, masked: bool = False
) -> Iterator[str]:
    """CSV text, line by line (for a streaming response or a file); UTF-8 with a BOM so Excel
    opens Japanese names correctly. Re-importable: the columns are kizuna's field names.
    `masked` (a caller whose role sees personal data masked, kizuna.iam.masking): names,
    contact details, address and birthday masked."""
    writer = csv.writer(_Echo())
    if bom:
        yield "\ufeff"
    yield writer.writerow(CSV_COLUMNS)
    qs = customers.filter(merged_into__isnull=True).order_by("pk")
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last)[:2000])
        if not page:
            return
        external = dict(
            Identity.objects.filter(customer__in=page, kind="external").values_list(
                "customer_id", "value"
            )
        )
        for customer in page:
            values = {**{c: getattr(customer, c, None) for c in CSV_COLUMNS}}
            values["external_id"] = external.get(customer.pk, "")
            if masked:
                values = mask_row(values)
                values["external_id"] = mask_identity("external", values["external_id"])
            yield writer.writerow([_text(values[c]) for c in CSV_COLUMNS])
        last = page[-1].pk


def _rows(qs: Iterable[Any], fields: list[str]) -> list[dict[str, Any]]:
    return [
        {
            f: _text(getattr(obj, f))
            if not isinstance(getattr(obj, f), dict | list)
            else getattr(obj, f)
            for f in fields
        }
        for obj in qs
    ]


def customer_data_export(customer: Customer) -> dict[str, Any]:
    """Everything stored about one customer (and the profiles merged into it): the profile's
    own data, then every app's registered export provider (orders, loyalty, ...)."""
    merged_ids = list(Customer.objects.filter(merged_into=customer).values_list("pk", flat=True))
    return {
        "exported_at": now().isoformat(),
        "customer": {
            f.name: _text(getattr(customer, f.attname))
            if not isinstance(getattr(customer, f.attname), dict)
            else getattr(customer, f.attname)
            for f in Customer._meta.concrete_fields
            if not f.generated  # derived by the database from the fields given
        },
        "identities": _rows(
            Identity.objects.filter(customer=customer).order_by("pk"),
            ["kind", "value", "source", "created_at"],
        ),
        "consents": _rows(
            ConsentEntry.objects.filter(customer=customer).order_by("recorded_at", "pk"),
            [
                "purpose",
                "channel",
                "status",
                "legal_basis",
                "source",
                "notice_version",
                "recorded_at",
            ],
        ),
        "events": _rows(
            Event.objects.filter(customer=customer).order_by("occurred_at", "pk"),
            ["message_id", "type", "occurred_at", "source", "properties", "context"],
        ),
        "merged_profiles": merged_ids,
        "merges": _rows(
            CustomerMerge.objects.filter(survivor=customer),
            ["merged_id", "reason", "merged_at", "undone_at"],
        ),
        **export_sections(customer),
    }
