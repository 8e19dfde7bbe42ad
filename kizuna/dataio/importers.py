"""Imports of customers, products and orders from CSV / JSON Lines files.

The file is read in chunks; each chunk is mapped to kizuna fields and handed to the app's
bulk service, all inside one transaction. All-or-nothing (the default): any bad row rolls
everything back and every error is reported with its row number and field. Skip-bad-rows:
good rows are written, bad ones reported. A dry run does the whole import and rolls it back,
so its preview is exactly what a real run would do. Re-importing a file is idempotent:
customers are matched by external id, products by SKU, orders by number.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from kizuna.catalog.bulk import catalog_bulk_load
from kizuna.catalog.models import Product
from kizuna.catalog.services import product_update
from kizuna.commerce.bulk import LineRow, OrderRow, orders_bulk_place
from kizuna.commerce.models import Order
from kizuna.core.bulk import batched
from kizuna.core.timeutil import JST
from kizuna.customers.bulk import CopyBehind, customers_bulk_upsert
from kizuna.customers.choices import IdentityKind
from kizuna.customers.models import Identity
from kizuna.dataio.mapping import FIELDS, auto_mapping
from kizuna.dataio.readers import FileFormatError, open_table

CHUNK = 50_000
PREVIEW_ROWS = 20
Progress = Callable[[int], None]
Handler = Callable[[list[tuple[int, dict[str, Any]]], "ImportReport", bool], None]


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row of the file (0: the file as a whole)
    field: str
    message: str


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    encoding: str = ""
    dry_run: bool = False
    applied: bool = False  # whether anything was written

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportAborted(Exception):
    pass


def _mapped(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, target in mapping.items():
        value = row.get(column)
        if isinstance(value, str):
            value = value.strip()
        if value not in (None, ""):
            out[target] = value
    return out


def run_import(
    kind: str,
    source: str | Path | IO[bytes],
    *,
    name: str = "",
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    if kind not in FIELDS:
        raise ValueError(kind)
    report = ImportReport(kind=kind, dry_run=dry_run)
    try:
        table = open_table(source, name=name)
    except FileFormatError as exc:
        report.errors.append(RowError(exc.row, "", exc.message))
        return report
    report.encoding = table.encoding
    columns = table.columns
    explicit = dict(mapping or {})
    bad_targets = [t for t in explicit.values() if t not in FIELDS[kind]]
    if bad_targets:
        report.errors.append(
            RowError(0, "mapping", _("Unknown fields: %(f)s.") % {"f": ", ".join(bad_targets)})
        )
        return report
    # Customers: each chunk's rows are copied in on a thread while the next chunk is read
    # and checked (PostgreSQL; see CopyBehind). Joined before the transaction ends.
    behind = CopyBehind()
    handlers: dict[str, Handler] = {
        "customers": partial(_customers, behind=behind),
        "products": _products,
        "orders": _orders,
    }
    handler = handlers[kind]
    try:
        with transaction.atomic():
            try:
                first = True
                for chunk in batched(table.rows, CHUNK):
                    if first:
                        if not columns:  # JSON Lines: the keys of the first records
                            columns = list(dict.fromkeys(k for _n, r in chunk[:100] for k in r))
                        report.mapping = {**auto_mapping(kind, columns), **explicit}
                        report.unmapped = [c for c in columns if c not in report.mapping]
                        first = False
                    rows = [(n, _mapped(r, report.mapping)) for n, r in chunk]
                    if len(report.preview) < PREVIEW_ROWS:
                        report.preview.extend(
                            {"row": n, **r} for n, r in rows[: PREVIEW_ROWS - len(report.preview)]
                        )
                    report.rows += len(rows)
                    handler(rows, report, skip_bad_rows)
                    if progress is not None:
                        progress(len(rows))
            finally:
                behind.wait()  # nothing is still being written when this commits or rolls back
            if report.errors and not skip_bad_rows:
                raise ImportAborted
            if dry_run:
                raise ImportAborted
            report.applied = bool(report.created or report.updated)
    except FileFormatError as exc:
        report.errors.append(RowError(exc.row, "", exc.message))
        report.applied = False
    except ImportAborted:
        report.applied = False
    report.errors.sort(key=lambda e: (e.row, e.field))
    return report


# --- customers ----------------------------------------------------------------------------


def _customers(
    rows: list[tuple[int, dict[str, Any]]],
    report: ImportReport,
    skip: bool,
    *,
    behind: CopyBehind | None = None,
) -> None:
    items = []
    for number, data in rows:
        external_id = str(data.pop("external_id", "") or "")
        items.append((number, external_id, data))
    result = customers_bulk_upsert(rows=items, skip_bad_rows=True, behind=behind)
    # (All-or-nothing is the import's transaction: the chunk's good rows are written and
    # rolled back with everything else if any row of the file is bad.)
    report.created += result.created
    report.updated += result.updated
    report.unchanged += result.unchanged
    for number, errors in result.errors.items():
        for name, messages in errors.items():
            report.errors.append(RowError(number, name, " ".join(messages)))
    report.skipped += len(result.errors)


# --- products -----------------------------------------------------------------------------


def _int(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.replace(",", "")):
        return int(value.replace(",", ""))
    return value


def _bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "y"):
            return True
        if lowered in ("false", "0", "no", "n"):
            return False
    return value


_ROW_KEY = re.compile(r"^(?:products|rows)\[(\d+)\]\.?(.*)$")


def _split_errors(exc: ValidationError, numbers: list[int]) -> list[RowError]:
    out = []
    for key, messages in exc.message_dict.items():
        match = _ROW_KEY.match(key)
        if match:
            out.append(RowError(numbers[int(match.group(1))], match.group(2), " ".join(messages)))
        else:
            out.append(RowError(0, key, " ".join(messages)))
    return out


def _products(rows: list[tuple[int, dict[str, Any]]], report: ImportReport, skip: bool) -> None:
    for _n, data in rows:
        if "price_minor" in data:
            data["price_minor"] = _int(data["price_minor"])
        if "active" in data:
            data["active"] = _bool(data["active"])
    skus = [str(d.get("sku", "")) for _n, d in rows]
    existing = {p.sku: p for p in Product.objects.filter(sku__in=[s for s in skus if s])}
    new = [(n, d) for n, d in rows if d.get("sku") not in existing]
    for number, data in rows:
        product = existing.get(data.get("sku", ""))
        if product is None:
            continue
        changes = {k: v for k, v in data.items() if k != "sku" and getattr(product, k, v) != v}
        if not changes:
            report.unchanged += 1
            continue
        try:
            with transaction.atomic():
                product_update(product=product, data=changes)
            report.updated += 1
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                report.errors.append(RowError(number, name, " ".join(messages)))
    while new:
        try:
            with transaction.atomic():
                catalog_bulk_load(categories=[], products=[d for _n, d in new])
            report.created += len(new)
            break
        except ValidationError as exc:
            errors = _split_errors(exc, [n for n, _d in new])
            report.errors.extend(errors)
            if not skip:
                break
            bad = {e.row for e in errors}
            report.skipped += len(bad)
            new = [(n, d) for n, d in new if n not in bad]


# --- orders -------------------------------------------------------------------------------


def _placed_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = parse_datetime(value.strip().replace("/", "-"))
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=JST)


def _customer_ids(values: Iterable[str], kind: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in batched(sorted(set(values)), 900):
        found.update(
            Identity.objects.filter(kind=kind, value__in=chunk).values_list("value", "customer_id")
        )
    return found


def _orders(rows: list[tuple[int, dict[str, Any]]], report: ImportReport, skip: bool) -> None:
    """One row per order line; lines of one order share its number (and order fields)."""
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for number, data in rows:
        grouped[str(data.get("number", ""))].append((number, data))
    stored = set(
        Order.objects.filter(number__in=[n for n in grouped if n]).values_list("number", flat=True)
    )
    by_ext = _customer_ids(
        (str(d.get("customer_external_id")) for _n, d in rows if d.get("customer_external_id")),
        IdentityKind.EXTERNAL,
    )
    by_email = _customer_ids(
        (str(d.get("customer_email")).lower() for _n, d in rows if d.get("customer_email")),
        IdentityKind.EMAIL,
    )
    built: list[OrderRow] = []
    first_rows: list[int] = []
    for order_number, lines in grouped.items():
        first_number, head = lines[0]
        if order_number in stored:
            report.unchanged += 1
            continue
        problems: list[RowError] = []
        if not order_number:
            problems.append(RowError(first_number, "number", _("An order number is required.")))
        customer_id = by_ext.get(str(head.get("customer_external_id", ""))) or by_email.get(
            str(head.get("customer_email", "")).lower()
        )
        if customer_id is None:
            problems.append(
                RowError(
                    first_number, "customer_external_id", _("No customer with this id or email.")
                )
            )
        placed_at = _placed_at(head.get("placed_at"))
        if placed_at is None:
            problems.append(
                RowError(first_number, "placed_at", _("Enter a date-time like 2026-04-01 10:30."))
            )
        order_lines = []
        for number, data in lines:
            quantity = _int(data.get("quantity", "1"))
            price = _int(data["unit_price_minor"]) if "unit_price_minor" in data else None
            if not isinstance(quantity, int) or quantity <= 0:
                problems.append(
                    RowError(number, "quantity", _("Expected a positive whole number."))
                )
                continue
            if price is not None and not isinstance(price, int):
                problems.append(RowError(number, "unit_price_minor", _("Expected a whole number.")))
                continue
            order_lines.append(
                LineRow(sku=str(data.get("sku", "")), quantity=quantity, unit_price_minor=price)
            )
        discount = _int(head.get("discount_minor", "0"))
        if problems or customer_id is None or placed_at is None:
            report.errors.extend(problems)
            report.skipped += 1
            continue
        built.append(
            OrderRow(
                number=order_number,
                customer_id=customer_id,
                placed_at=placed_at,
                lines=order_lines,
                discount_minor=discount if isinstance(discount, int) else -1,
                channel=str(head.get("channel") or "store"),
                store=str(head.get("store") or ""),
                currency=str(head.get("currency") or "JPY"),
                source="import",
            )
        )
        first_rows.append(first_number)
    while built:
        try:
            with transaction.atomic():
                orders_bulk_place(rows=built)
            report.created += len(built)
            break
        except ValidationError as exc:
            errors = _split_errors(exc, first_rows)
            report.errors.extend(errors)
            if not skip:
                break
            bad = {e.row for e in errors}
            report.skipped += len(bad)
            keep = [i for i, n in enumerate(first_rows) if n not in bad]
            if len(keep) == len(built):
                break
            built = [built[i] for i in keep]
            first_rows = [first_rows[i] for i in keep]
