"""Bulk loading of the profile layer: many customers, identities, consents and events at once.

For imports and the demo business. Every row is validated the way the per-row services
validate it (the same `validation` functions, the same choices and limits); the whole
input is checked before anything is written, and each call runs in one transaction, so a
bad row leaves nothing half-written.

Two deliberate differences from the services:

- rows carry their own historical timestamps (`created_at`, `recorded_at`, `occurred_at`);
- recorded events are *not* published on the bus: importing three years of history must
  not start journeys or send messages for things that happened long ago.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils.translation import gettext as _

from kizuna.core import ids
from kizuna.core.bulk import (
    BATCH_SIZE,
    Progress,
    allocate_ids,
    batched,
    datetime_adapter,
    table_copy,
    table_insert,
)
from kizuna.core.timeutil import local_date, now
from kizuna.customers.choices import (
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Gender,
    IdentityKind,
    LegalBasis,
    Locale,
)
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity, TraitDefinition
from kizuna.customers.services import MAX_PROPERTIES_BYTES
from kizuna.customers.validation import FieldErrors, clean_profile, normalize_identity

MAX_REPORTED_ERRORS = 50


def _raise_row_errors(errors: dict[str, list[str]]) -> None:
    if errors:
        shown = dict(islice(errors.items(), MAX_REPORTED_ERRORS))
        if len(errors) > MAX_REPORTED_ERRORS:
            shown["__all__"] = [
                _("%(n)d more rows have errors.") % {"n": len(errors) - MAX_REPORTED_ERRORS}
            ]
        raise ValidationError(shown)


def _row_errors(prefix: str, errors: FieldErrors, into: dict[str, list[str]]) -> None:
    for field_name, messages in errors.items():
        into[f"{prefix}.{field_name}"] = messages


def _existing_identity_values(kind: str, values: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in batched(values, 500):
        found.update(
            Identity.objects.filter(kind=kind, value__in=chunk).values_list("value", flat=True)
        )
    return found


def _identity_owners(kind: str, values: Sequence[str]) -> dict[str, int]:
    """{value: customer id} for the given values of one identity kind that are linked.

    One query per call: on PostgreSQL `value = ANY(array)`, on SQLite the values as one JSON
    parameter (`json_each`), an index probe per value either way."""
    connection = connections[router.db_for_write(Identity)]
    found: dict[str, int] = {}
    if not values:
        return found
    table = connection.ops.quote_name(Identity._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT value, customer_id FROM {table} "  # noqa: S608 (a quoted name)
                "WHERE kind = %s AND value = ANY(%s)",
                [kind, list(values)],
            )
            found.update(cursor.fetchall())
        return found
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT value, customer_id FROM {table} "  # noqa: S608 (a quoted name)
                "WHERE kind = %s AND value IN (SELECT j.value FROM json_each(%s) AS j)",
                [kind, orjson.dumps(list(values)).decode()],
            )
            found.update(cursor.fetchall())
        return found
    for chunk in batched(values, 900):
        found.update(
            Identity.objects.filter(kind=kind, value__in=chunk).values_list("value", "customer_id")
        )
    return found


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    type: str
    customer_id: int
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = "kizuna"
    message_id: str = ""  # a random one (as event_record draws) when empty
    context: dict[str, Any] = field(default_factory=dict)


EVENT_FIELDS = [
    "message_id",
    "type",
    "customer",
    "anonymous_id",
    "occurred_at",
    "received_at",
    "source",
    "properties",
    "context",
]


Span = dict[int, list[Any]]  # customer id -> [earliest, latest] event time


def events_bulk_check(rows: Sequence[EventRow]) -> Span:
    """Check event rows as `event_record` would; returns each customer's time span.

    A message id given twice is an error here, not a silent skip (a bulk load is
    all-or-nothing); one already stored fails the insert on its unique constraint.
    """
    errors: dict[str, list[str]] = {}
    seen_ids: set[str] = set()
    span: Span = {}
    for i, row in enumerate(rows):
        if not row.type or len(row.type) > 100:
            errors[f"rows[{i}].type"] = [_("An event type of 1 to 100 characters is required.")]
        if not isinstance(row.properties, dict):
            errors[f"rows[{i}].properties"] = [_("Properties must be an object.")]
        elif len(repr(row.properties)) > MAX_PROPERTIES_BYTES:
            errors[f"rows[{i}].properties"] = [_("Properties are larger than 32 KB.")]
        if not row.source or len(row.source) > 50:
            errors[f"rows[{i}].source"] = [_("A source of 1 to 50 characters is required.")]
        if row.message_id:
            if row.message_id in seen_ids or len(row.message_id) > 100:
                errors[f"rows[{i}].message_id"] = [_("Duplicate or over-long message id.")]
            seen_ids.add(row.message_id)
        bounds = span.get(row.customer_id)
        if bounds is None:
            span[row.customer_id] = [row.occurred_at, row.occurred_at]
        elif row.occurred_at < bounds[0]:
            bounds[0] = row.occurred_at
        elif row.occurred_at > bounds[1]:
            bounds[1] = row.occurred_at
    _check_customers_exist(span.keys(), errors)
    _raise_row_errors(errors)
    return span


def events_insert(
    rows: Iterable[EventRow], *, batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> int:
    """INSERT checked event rows (see `events_bulk_check`); received when they occurred."""
    return table_insert(
        Event,
        EVENT_FIELDS,
        (
            (
                row.message_id or ids.message_id(),
                row.type,
                row.customer_id,
                "",
                row.occurred_at,
                row.occurred_at,
                row.source,
                row.properties,
                row.context,
            )
            for row in rows
        ),
        batch_size=batch_size,
        progress=progress,
    )


def events_bulk_record(
    *,
    rows: Sequence[EventRow],
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> int:
    """Append customer events to the stream, with `first_seen_at`/`last_seen_at` kept equal
    to each customer's earliest and latest event, as `event_record` keeps them."""
    span = events_bulk_check(rows)
    with transaction.atomic():
        written = events_insert(rows, batch_size=batch_size, progress=progress)
        customers_seen_widen(span)
    return written


def _check_customers_exist(customer_ids: Iterable[int], errors: dict[str, list[str]]) -> None:
    wanted = set(customer_ids)
    found: set[int] = set()
    for chunk in batched(sorted(wanted), 900):
        found.update(Customer.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    missing = wanted - found
    if missing:
        errors["customer"] = [
            _("Unknown customer ids: %(ids)s.") % {"ids": ", ".join(map(str, sorted(missing)[:20]))}
        ]


def _iso(value: Any) -> str:
    """A bound as PostgreSQL reads it in an array literal: ISO 8601 text (no character
    that needs quoting there) with its offset, given so or from an aware datetime."""
    return value if isinstance(value, str) else value.isoformat()


SEEN_WIDEN_ROWS = 5000  # customers per statement (SQLite: 3 bound parameters each)


def customers_seen_widen(span: Span) -> None:
    """Widen first/last seen to cover the given (earliest, latest) per customer: one
    set-based UPDATE per 5,000 customers (`UPDATE ... FROM` a VALUES list on SQLite, arrays
    on PostgreSQL), in id order (two writers widening the same customers lock them in the
    same order), rewriting only the rows whose values change. The bounds are aware
    datetimes or the text of UTC times (one kind per call): on SQLite as stored, on
    PostgreSQL ISO 8601 (the tracking worker's)."""
    if not span:
        return
    connection = connections[router.db_for_write(Customer)]
    table = connection.ops.quote_name(Customer._meta.db_table)
    widen = (
        "first_seen_at = CASE WHEN c.first_seen_at IS NULL OR c.first_seen_at > s.lo "
        "THEN s.lo ELSE c.first_seen_at END, "
        "last_seen_at = CASE WHEN c.last_seen_at IS NULL OR c.last_seen_at < s.hi "
        "THEN s.hi ELSE c.last_seen_at END "
    )
    changes = (
        "c.id = s.id AND (c.first_seen_at IS NULL OR c.first_seen_at > s.lo "
        "OR c.last_seen_at IS NULL OR c.last_seen_at < s.hi)"
    )
    with connection.cursor() as cursor:
        for chunk in batched(sorted(span.items()), SEEN_WIDEN_ROWS):
            if connection.vendor == "postgresql":
                # Three array literals (ids, and times as ISO 8601 text with their offset):
                # joined here, parsed by the server in C; a JSON record set cost 2 us a row
                # to take apart, psycopg's list adaptation 1 us an element.
                cursor.execute(
                    f"UPDATE {table} AS c SET {widen}"  # noqa: S608 (quoted names only)
                    "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) "
                    f"AS s(id, lo, hi) WHERE {changes}",
                    [
                        "{" + ",".join([str(cid) for cid, _bounds in chunk]) + "}",
                        "{" + ",".join([_iso(bounds[0]) for _cid, bounds in chunk]) + "}",
                        "{" + ",".join([_iso(bounds[1]) for _cid, bounds in chunk]) + "}",
                    ],
                )
                continue
            adapt = datetime_adapter(connection)
            params: list[Any] = []
            for cid, (lo, hi) in chunk:
                # Text is the stored form already (the tracking worker's, see its services).
                params += (
                    cid,
                    lo if isinstance(lo, str) else adapt(lo),
                    hi if isinstance(hi, str) else adapt(hi),
                )
            cursor.execute(
                f"WITH s(id, lo, hi) AS (VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))}) "  # noqa: S608
                f"UPDATE {table} AS c SET {widen}FROM s WHERE {changes}",
                params,
            )


# --- customers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRow:
    """Profile fields as `customer_create` takes them, plus when the customer signed up."""

    data: dict[str, Any]
    created_at: datetime


CUSTOMER_FIELDS = [
    "id",
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
    "timezone",
    "traits",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
]
_PROFILE_DEFAULTS: dict[str, Any] = {
    "family_name": "",
    "given_name": "",
    "family_name_kana": "",
    "given_name_kana": "",
    "email": "",
    "phone": "",
    "birthday": None,
    "gender": Gender.UNSPECIFIED.value,
    "postal_code": "",
    "prefecture": "",
    "city": "",
    "address_line": "",
    "locale": Locale.JA.value,
    "timezone": "Asia/Tokyo",
    "traits": {},
}


def customers_bulk_create(
    *,
    rows: Sequence[CustomerRow],
    source: str = "kizuna",
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[int]:
    """Create customers as `customer_create` would (email and phone become identities, a
    `customer.created` event at signup) and return their ids in input order.

    Raises ValidationError keyed `rows[i].field` for bad values or an email or phone that
    is already linked (in the database or earlier in `rows`); nothing is written then.
    """
    definitions: dict[str, dict[str, Any]] = {
        d["key"]: dict(d) for d in TraitDefinition.objects.values("key", "type", "choices")
    }
    today = local_date(now())
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, Any]] = []
    taken: dict[str, set[str]] = {IdentityKind.EMAIL: set(), IdentityKind.PHONE: set()}
    for i, row in enumerate(rows):
        clean, row_errors = clean_profile(row.data, definitions=definitions, today=today)
        for kind, values in taken.items():
            value = clean.get(kind)
            if value:
                if value in values:
                    row_errors.add(kind, _("Already linked to another customer."))
                values.add(value)
        if row.created_at > now():
            row_errors.add("created_at", _("A signup time cannot be in the future."))
        _row_errors(f"rows[{i}]", row_errors, errors)
        cleaned.append(clean)
    for kind, values in taken.items():
        for value in _existing_identity_values(kind, values):
            errors.setdefault(kind, []).append(
                _("%(value)s is already linked to another customer.") % {"value": value}
            )
    _raise_row_errors(errors)

    with transaction.atomic():
        customer_ids = allocate_ids(Customer, len(rows))
        # Chunk by chunk, so progress covers the customers, their identities and events.
        for chunk in batched(range(len(rows)), batch_size):
            part = [(customer_ids[i], cleaned[i], rows[i]) for i in chunk]
            table_insert(
                Customer,
                CUSTOMER_FIELDS,
                [
                    (
                        cid,
                        *(clean.get(name, _PROFILE_DEFAULTS[name]) for name in _PROFILE_DEFAULTS),
                        row.created_at,
                        row.created_at,
                        row.created_at,
                        row.created_at,
                    )
                    for cid, clean, row in part
                ],
                batch_size=batch_size,
            )
            table_insert(
                Identity,
                ["customer", "kind", "value", "source", "created_at"],
                [
                    (cid, kind, clean[kind], source, row.created_at)
                    for cid, clean, row in part
                    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE)
                    if clean.get(kind)
                ],
                batch_size=batch_size,
            )
            events_insert(
                [
                    EventRow(
                        type="customer.created",
                        customer_id=cid,
                        occurred_at=row.created_at,
                        source=source,
                    )
                    for cid, _clean, row in part
                ],
                batch_size=batch_size,
            )
            if progress is not None:
                progress(len(chunk))
    return customer_ids


# --- identities ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityRow:
    customer_id: int
    kind: str
    value: str
    linked_at: datetime
    source: str = "kizuna"


def identities_bulk_add(
    *, rows: Sequence[IdentityRow], batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> int:
    """Link identities as `identity_add` does (normalised, unique per kind, an
    `identity.linked` event each)."""
    errors: dict[str, list[str]] = {}
    normalized: list[str] = []
    taken: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        try:
            value = normalize_identity(row.kind, row.value)
        except ValueError as exc:
            errors[f"rows[{i}].value"] = [str(exc)]
            value = ""
        if value:
            if value in taken.setdefault(row.kind, set()):
                errors[f"rows[{i}].value"] = [_("Already linked to another customer.")]
            taken[row.kind].add(value)
        normalized.append(value)
    for kind, values in taken.items():
        for value in _existing_identity_values(kind, values):
            errors.setdefault("value", []).append(
                _("%(value)s is already linked to another customer.") % {"value": value}
            )
    _raise_row_errors(errors)
    with transaction.atomic():
        written = table_insert(
            Identity,
            ["customer", "kind", "value", "source", "created_at"],
            (
                (row.customer_id, row.kind, value, row.source, row.linked_at)
                for row, value in zip(rows, normalized, strict=True)
            ),
            batch_size=batch_size,
            progress=progress,
        )
        events_bulk_record(
            rows=[
                EventRow(
                    type="identity.linked",
                    customer_id=row.customer_id,
                    occurred_at=row.linked_at,
                    source=row.source,
                    properties={"kind": row.kind},
                )
                for row in rows
            ],
            batch_size=batch_size,
        )
    return written


# --- consent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRow:
    customer_id: int
    purpose: str
    channel: str
    status: str
    source: str
    recorded_at: datetime
    legal_basis: str = LegalBasis.CONSENT.value
    notice_version: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def consents_bulk_record(
    *, rows: Sequence[ConsentRow], batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> int:
    """Append consent decisions to the ledger as `consent_record` does (a `consent.<status>`
    event each, at the time of the decision)."""
    errors: dict[str, list[str]] = {}
    purposes, channels = ConsentPurpose.values, ConsentChannel.values
    statuses, bases = ConsentStatus.values, LegalBasis.values
    for i, row in enumerate(rows):
        for name, value, allowed in (
            ("purpose", row.purpose, purposes),
            ("channel", row.channel, channels),
            ("status", row.status, statuses),
            ("legal_basis", row.legal_basis, bases),
        ):
            if value not in allowed:
                errors[f"rows[{i}].{name}"] = [
                    _("Choose one of: %(c)s.") % {"c": ", ".join(allowed)}
                ]
        if not row.source or len(row.source) > 50:
            errors[f"rows[{i}].source"] = [_("A source of 1 to 50 characters is required.")]
        if not isinstance(row.evidence, dict):
            errors[f"rows[{i}].evidence"] = [_("Evidence must be an object.")]
    _raise_row_errors(errors)
    with transaction.atomic():
        written = table_insert(
            ConsentEntry,
            [
                "customer",
                "purpose",
                "channel",
                "status",
                "legal_basis",
                "source",
                "notice_version",
                "evidence",
                "recorded_at",
                "recorded_by",
            ],
            (
                (
                    row.customer_id,
                    row.purpose,
                    row.channel,
                    row.status,
                    row.legal_basis,
                    row.source,
                    row.notice_version,
                    row.evidence,
                    row.recorded_at,
                    None,
                )
                for row in rows
            ),
            batch_size=batch_size,
            progress=progress,
        )
        events_bulk_record(
            rows=[
                EventRow(
                    type=f"consent.{row.status}",
                    customer_id=row.customer_id,
                    occurred_at=row.recorded_at,
                    source=row.source,
                    properties={"purpose": row.purpose, "channel": row.channel},
                )
                for row in rows
            ],
            batch_size=batch_size,
        )
    return written


# --- upsert by external id (imports) ------------------------------------------------------


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: dict[int, dict[str, list[str]]] = field(default_factory=dict)  # row number -> field


Job = tuple[type[Any], list[str], Callable[[int, int], Iterable[Sequence[Any]]]]


def _creation_jobs(
    new: Sequence[tuple[str, dict[str, Any]]], customer_ids: list[int], stamp: Any, source: str
) -> list[Job]:
    """The rows that create customers `new[start:stop]`: the customer, its identities
    (external id, email, phone) and its `customer.created` event, per table."""
    defaults = list(_PROFILE_DEFAULTS.items())
    # The event's message id: 64 random bits drawn once per call, then the customer's id.
    # As unique as `ids.message_id()`, and the ids of a call are consecutive in the unique
    # index instead of scattered over it (a third less server work for these rows).
    prefix = ids.message_id()[:16]

    def customers(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
        for i in range(start, stop):
            clean = new[i][1]
            yield (
                customer_ids[i],
                *[clean.get(name, default) for name, default in defaults],
                stamp,
                stamp,
                stamp,
                stamp,
            )

    def identities(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
        for i in range(start, stop):
            ext, clean = new[i]
            cid = customer_ids[i]
            yield (cid, IdentityKind.EXTERNAL, ext, source, stamp)
            if clean.get("email"):
                yield (cid, IdentityKind.EMAIL, clean["email"], source, stamp)
            if clean.get("phone"):
                yield (cid, IdentityKind.PHONE, clean["phone"], source, stamp)

    def events(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
        # As `events_insert` writes them (received when they occurred).
        for cid in customer_ids[start:stop]:
            yield (f"{prefix}{cid:016x}", "customer.created", cid, "", stamp, stamp, source, {}, {})

    return [
        (Customer, CUSTOMER_FIELDS, customers),
        (Identity, ["customer", "kind", "value", "source", "created_at"], identities),
        (Event, EVENT_FIELDS, events),
    ]


class CopyBehind:
    """COPYs run on a thread, on the caller's connection and so in its transaction, while
    the caller goes on with work that needs no database (reading and checking the next rows
    of an import); the PostgreSQL server then inserts one chunk while Python checks the next.

    psycopg holds the connection's lock for the whole of a COPY, so anything else that uses
    the connection meanwhile waits for it. `wait()` joins the thread and raises what the
    COPY raised (Django's database errors, as `table_copy` raises them); it must be called
    before the transaction ends, also on the way out of a failure, so that nothing is
    still being written when it commits or rolls back.
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done: tuple[int, Progress | None] = (0, None)

    def start(
        self,
        jobs: list[tuple[type[Any], list[str], Iterable[Sequence[Any]]]],
        count: int,
        progress: Progress | None,
    ) -> None:
        self.wait()
        shared = connections[self.alias]
        shared.inc_thread_sharing()

        def run() -> None:
            connections[self.alias] = shared  # this thread works in the caller's transaction
            try:
                for model, fields, rows in jobs:
                    table_copy(model, fields, rows)
            except BaseException as exc:  # raised in the caller's thread by wait()
                self._error = exc

        self._done = (count, progress)
        self._thread = threading.Thread(target=run, name="kizuna-copy-behind", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join()
        connections[self.alias].dec_thread_sharing()
        error, self._error = self._error, None
        if error is not None:
            raise error
        count, progress = self._done
        if progress is not None:
            progress(count)


def customers_bulk_upsert(
    *,
    rows: Sequence[tuple[int, str, dict[str, Any]]],
    source: str = "import",
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    behind: CopyBehind | None = None,
) -> UpsertResult:
    """Create or update customers from `(row number, external id, profile fields)`.

    A row whose external id is already linked updates that customer (re-importing a file
    changes nothing the second time); a new one creates a customer with the external id,
    email and phone as identities. Bad rows (a bad value, an email or phone that belongs to
    another customer, an external id given twice) are reported by row number and field:
    with `skip_bad_rows` the others are still written, otherwise nothing is. `dry_run`
    checks everything and writes nothing.

    With `behind` (on PostgreSQL, inside the caller's transaction) the new customers are
    copied on its thread while the caller reads and checks the next rows; the caller must
    `behind.wait()` before its transaction ends (a failed COPY raises there).
    """
    if behind is not None:
        behind.wait()  # the previous chunk's rows are in before anything is looked up
    definitions: dict[str, dict[str, Any]] = {
        d["key"]: dict(d) for d in TraitDefinition.objects.values("key", "type", "choices")
    }
    today = local_date(now())
    result = UpsertResult()
    cleaned: list[tuple[int, str, dict[str, Any]]] = []
    seen_ext: set[str] = set()
    for number, external_id, data in rows:
        clean, row_errors = clean_profile(data, definitions=definitions, today=today)
        if not external_id:
            row_errors.add("external_id", _("An external id is required to import a customer."))
        elif len(external_id) > 255:
            row_errors.add("external_id", _("At most 255 characters."))
        elif external_id in seen_ext:
            row_errors.add("external_id", _("This external id appears twice in the file."))
        seen_ext.add(external_id)
        if row_errors:
            result.errors[number] = dict(row_errors)
        else:
            cleaned.append((number, external_id, clean))
    existing = _identity_owners(IdentityKind.EXTERNAL, [ext for _n, ext, _c in cleaned])
    owners: dict[tuple[str, str], int] = {}
    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
        values = sorted({c[kind] for _n, _e, c in cleaned if c.get(kind)})
        for value, cid in _identity_owners(kind, values).items():
            owners[(kind, value)] = cid
    good: list[tuple[int, str, dict[str, Any]]] = []
    claimed: dict[tuple[str, str], str] = {}
    for number, ext, clean in cleaned:
        mine = existing.get(ext)
        row_errors = FieldErrors()
        for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
            value = str(clean.get(kind) or "")
            if not value:
                continue
            owner = owners.get((kind, value))
            if (owner is not None and owner != mine) or claimed.get((kind, value), ext) != ext:
                row_errors.add(kind, _("Already linked to another customer."))
            claimed[(kind, value)] = ext
        if row_errors:
            result.errors[number] = dict(row_errors)
        else:
            good.append((number, ext, clean))
    if result.errors and not skip_bad_rows:
        return result
    if dry_run:
        result.created = sum(1 for _n, ext, _c in good if ext not in existing)
        result.updated = len(good) - result.created
        return result
    created_at = now()
    # COPY on PostgreSQL (`table_copy`; batched INSERTs elsewhere). The signup time goes to
    # COPY as ISO 8601 text with its UTC offset (the same instant once parsed), which is
    # several times cheaper for psycopg to write than an aware datetime in every row.
    copying = connections[router.db_for_write(Customer)].vendor == "postgresql"
    stamp: Any = created_at.isoformat() if copying else created_at
    if behind is not None and not (copying and transaction.get_connection().in_atomic_block):
        behind = None  # only inside the caller's transaction, and worth it only for COPY
    with transaction.atomic():
        new = [(ext, clean) for _n, ext, clean in good if ext not in existing]
        jobs = _creation_jobs(new, allocate_ids(Customer, len(new)), stamp, source)
        if behind is None:
            for start in range(0, len(new), batch_size):
                stop = min(start + batch_size, len(new))
                for model, fields, make_rows in jobs:
                    table_copy(model, fields, make_rows(start, stop))
                if progress is not None:
                    progress(stop - start)
        result.created = len(new)
        # Re-imported rows: read the current values of a batch at once, update the changed.
        known = [(existing[ext], clean) for _n, ext, clean in good if ext in existing]
        for batch in batched(known, 900):
            names = sorted({name for _cid, clean in batch for name in clean})
            current = {
                row["pk"]: row
                for row in Customer.objects.filter(pk__in=[cid for cid, _c in batch]).values(
                    "pk", *names
                )
            }
            for found, clean in batch:
                now_values = current.get(found, {})
                changed = {k: v for k, v in clean.items() if now_values.get(k) != v}
                if not changed:
                    result.unchanged += 1
                    continue
                Customer.objects.filter(pk=found).update(**changed, updated_at=created_at)
                for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
                    if changed.get(kind):
                        Identity.objects.get_or_create(
                            kind=kind,
                            value=changed[kind],
                            defaults={"customer_id": found, "source": source},
                        )
                result.updated += 1
            if progress is not None:
                progress(len(batch))
    if behind is not None and new:
        behind.start([(m, f, make(0, len(new))) for m, f, make in jobs], len(new), progress)
    return result
