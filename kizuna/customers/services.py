"""Writes of the profile layer: customers, identities, consent, traits and the event stream."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core import ids
from kizuna.core.audit import acting_as
from kizuna.core.bulk import batched, datetime_adapter, json_adapter
from kizuna.core.timeutil import local_date, now
from kizuna.customers.choices import (
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    IdentityKind,
    LegalBasis,
    TraitType,
)
from kizuna.customers.japanese import fill_address_from_postal_code
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity, TraitDefinition
from kizuna.customers.validation import FieldErrors, clean_profile, normalize_identity

MAX_PROPERTIES_BYTES = 32_768


def _trait_definitions() -> dict[str, dict[str, Any]]:
    return {d["key"]: dict(d) for d in TraitDefinition.objects.values("key", "type", "choices")}


def _raise(errors: FieldErrors) -> None:
    if errors:
        raise ValidationError(dict(errors))


# --- event stream -------------------------------------------------------------------------


def event_record(
    *,
    type: str,
    customer: Customer | None = None,
    anonymous_id: str = "",
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    source: str = "kizuna",
    message_id: str | None = None,
) -> tuple[Event, bool]:
    """Append one event to the stream and publish it on the bus after commit.

    Idempotent on `message_id`: recording the same id again returns the stored event and
    `created=False` without publishing twice.
    """
    errors = FieldErrors()
    if not type or len(type) > 100:
        errors.add("type", _("An event type of 1 to 100 characters is required."))
    if customer is None and not anonymous_id:
        errors.add("customer", _("An event needs a customer or an anonymous id."))
    properties = properties or {}
    if not isinstance(properties, dict):
        errors.add("properties", _("Properties must be an object."))
    elif len(repr(properties)) > MAX_PROPERTIES_BYTES:
        errors.add("properties", _("Properties are larger than 32 KB."))
    _raise(errors)
    occurred_at = occurred_at or now()
    message_id = message_id or ids.message_id()
    try:
        with transaction.atomic():
            event = Event.objects.create(
                message_id=message_id,
                type=type,
                customer=customer,
                anonymous_id=anonymous_id,
                occurred_at=occurred_at,
                properties=properties,
                context=context or {},
                source=source,
            )
    except IntegrityError:
        existing = Event.objects.filter(message_id=message_id).first()
        if existing is None:
            raise
        return existing, False
    if customer is not None:
        _customer_seen(customer.pk, occurred_at)
    bus.publish(
        bus.DomainEvent(
            type=type,
            occurred_at=occurred_at,
            customer_id=customer.pk if customer else None,
            event_id=event.pk,
            properties=properties,
            source=source,
        )
    )
    return event, True


@dataclasses.dataclass(frozen=True)
class NewEvent:
    """One event for `event_record_many`: the arguments `event_record` takes."""

    type: str
    customer_id: int | None = None
    anonymous_id: str = ""
    occurred_at: datetime | None = None
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "kizuna"
    message_id: str | None = None


_EVENT_COLUMNS = (
    "message_id",
    "type",
    "customer_id",
    "anonymous_id",
    "occurred_at",
    "received_at",
    "source",
    "properties",
    "context",
)


def event_record_many(*, events: Sequence[NewEvent]) -> list[int | None]:
    """`event_record` for several events in a few statements (a worker recording its sends).

    The same validation (errors keyed `events.<n>.<field>`, nothing written), the same
    idempotency on `message_id` (an id already stored, or repeated in `events`, is skipped
    and not published again), first/last seen widened per customer, and the new events
    published on the bus in order. Returns each event's new id, None for a skipped one.
    """
    errors = FieldErrors()
    for n, item in enumerate(events):
        if not item.type or len(item.type) > 100:
            errors.add(f"events.{n}.type", _("An event type of 1 to 100 characters is required."))
        if item.customer_id is None and not item.anonymous_id:
            errors.add(f"events.{n}.customer", _("An event needs a customer or an anonymous id."))
        if not isinstance(item.properties, dict):
            errors.add(f"events.{n}.properties", _("Properties must be an object."))
        elif len(repr(item.properties)) > MAX_PROPERTIES_BYTES:
            errors.add(f"events.{n}.properties", _("Properties are larger than 32 KB."))
    _raise(errors)
    if not events:
        return []
    received = now()
    rows: list[tuple[str, NewEvent, datetime]] = []
    for item in events:
        rows.append((item.message_id or ids.message_id(), item, item.occurred_at or received))
    connection = connections[router.db_for_write(Event)]
    ops = connection.ops
    adapt_time = datetime_adapter(connection)
    adapt_json = json_adapter(connection, None)
    table = ops.quote_name(Event._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in _EVENT_COLUMNS)
    marks = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    created: dict[str, int] = {}
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        for chunk in batched(rows, 500):
            params: list[Any] = []
            for message_id, item, occurred_at in chunk:
                params += [
                    message_id,
                    item.type,
                    item.customer_id,
                    item.anonymous_id,
                    adapt_time(occurred_at),
                    adapt_time(received),
                    item.source,
                    adapt_json(item.properties),
                    adapt_json(item.context or {}),
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([marks] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT ({ops.quote_name('message_id')}) DO NOTHING "
                f"RETURNING {ops.quote_name('id')}, {ops.quote_name('message_id')}",
                params,
            )
            created.update((message_id, pk) for pk, message_id in cursor.fetchall())
        result: list[int | None] = []
        published: list[bus.DomainEvent] = []
        span: dict[int, tuple[datetime, datetime]] = {}
        for message_id, item, occurred_at in rows:
            pk = created.pop(message_id, None)  # popped: a repeated id counts once
            result.append(pk)
            if pk is None:
                continue
            if item.customer_id is not None:
                low, high = span.get(item.customer_id, (occurred_at, occurred_at))
                span[item.customer_id] = (min(low, occurred_at), max(high, occurred_at))
            published.append(
                bus.DomainEvent(
                    type=item.type,
                    occurred_at=occurred_at,
                    customer_id=item.customer_id,
                    event_id=pk,
                    properties=item.properties,
                    source=item.source,
                )
            )
        customer_table = ops.quote_name(Customer._meta.db_table)
        cursor.executemany(
            f"UPDATE {customer_table} SET "  # noqa: S608
            "last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < %s "
            "THEN %s ELSE last_seen_at END, "
            "first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > %s "
            "THEN %s ELSE first_seen_at END "
            "WHERE id = %s AND (last_seen_at IS NULL OR last_seen_at < %s "
            "OR first_seen_at IS NULL OR first_seen_at > %s)",
            [
                (
                    adapt_time(high),
                    adapt_time(high),
                    adapt_time(low),
                    adapt_time(low),
                    customer_id,
                    adapt_time(high),
                    adapt_time(low),
                )
                for customer_id, (low, high) in sorted(span.items())
            ],
        )
        bus.publish_many(published)
    return result


def _customer_seen(customer_id: int, at: datetime) -> None:
    Customer.objects.filter(pk=customer_id).filter(
        Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=at)
    ).update(last_seen_at=at)
    Customer.objects.filter(pk=customer_id).filter(
        Q(first_seen_at__isnull=True) | Q(first_seen_at__gt=at)
    ).update(first_seen_at=at)


# --- customers ----------------------------------------------------------------------------


@transaction.atomic
def customer_create(
    *,
    data: dict[str, Any],
    actor: AbstractBaseUser | None = None,
    source: str = "kizuna",
) -> Customer:
    """Create a customer from profile fields; email and phone become identities.

    Raises ValidationError keyed by field (unknown fields, bad values, an email or phone
    already linked to another customer); nothing is written then.
    """
    clean, errors = clean_profile(data, definitions=_trait_definitions(), today=local_date(now()))
    clean = fill_address_from_postal_code(clean)
    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
        value = clean.get(kind)
        if value and Identity.objects.filter(kind=kind, value=value).exists():
            errors.add(kind, _("Already linked to another customer."))
    _raise(errors)
    with acting_as(actor):
        customer = Customer.objects.create(**clean)
        for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
            if clean.get(kind):
                Identity.objects.create(
                    customer=customer, kind=kind, value=clean[kind], source=source
                )
    event_record(
        type="customer.created", customer=customer, source=source, occurred_at=customer.created_at
    )
    return customer


@transaction.atomic
def customer_update(
    *,
    customer: Customer,
    data: dict[str, Any],
    actor: AbstractBaseUser | None = None,
    source: str = "kizuna",
) -> Customer:
    """Partially update a customer; `traits` merges (a null value removes a trait)."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    clean, errors = clean_profile(
        data,
        definitions=_trait_definitions(),
        today=local_date(now()),
        existing_traits=customer.traits,
    )
    clean = fill_address_from_postal_code(clean, customer)
    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
        value = clean.get(kind)
        if (
            value
            and Identity.objects.filter(kind=kind, value=value).exclude(customer=customer).exists()
        ):
            errors.add(kind, _("Already linked to another customer."))
    _raise(errors)
    changed = {f: v for f, v in clean.items() if getattr(customer, f) != v}
    if not changed:
        return customer
    with acting_as(actor):
        for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
            if kind in changed:
                old = getattr(customer, kind)
                if old:
                    Identity.objects.filter(customer=customer, kind=kind, value=old).delete()
                if changed[kind]:
                    Identity.objects.get_or_create(
                        customer=customer,
                        kind=kind,
                        value=changed[kind],
                        defaults={"source": source},
                    )
        for field, value in changed.items():
            setattr(customer, field, value)
        customer.save(update_fields=[*changed, "updated_at"])
    event_record(
        type="customer.updated",
        customer=customer,
        source=source,
        properties={"fields": sorted(changed)},
    )
    return customer


# --- identities ---------------------------------------------------------------------------


@transaction.atomic
def identity_add(
    *,
    customer: Customer,
    kind: str,
    value: str,
    source: str = "kizuna",
    actor: AbstractBaseUser | None = None,
) -> Identity:
    errors = FieldErrors()
    try:
        normalized = normalize_identity(kind, value)
    except ValueError as exc:
        errors.add("kind" if kind not in IdentityKind.values else "value", str(exc))
        _raise(errors)
        raise  # unreachable: _raise raised
    existing = Identity.objects.filter(kind=kind, value=normalized).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        errors.add(
            "value", _("This %(kind)s is already linked to another customer.") % {"kind": kind}
        )
        _raise(errors)
    with acting_as(actor):
        identity = Identity.objects.create(
            customer=customer, kind=kind, value=normalized, source=source
        )
    event_record(
        type="identity.linked", customer=customer, source=source, properties={"kind": kind}
    )
    return identity


# --- consent ------------------------------------------------------------------------------


@transaction.atomic
def consent_record(
    *,
    customer: Customer,
    purpose: str,
    channel: str,
    status: str,
    source: str,
    legal_basis: str = LegalBasis.CONSENT,
    notice_version: str = "",
    evidence: dict[str, Any] | None = None,
    recorded_by: Any = None,
    recorded_at: datetime | None = None,
) -> ConsentEntry:
    """Append a consent decision to the ledger; the newest entry per purpose/channel rules."""
    errors = FieldErrors()
    for field, value, allowed in (
        ("purpose", purpose, ConsentPurpose.values),
        ("channel", channel, ConsentChannel.values),
        ("status", status, ConsentStatus.values),
        ("legal_basis", legal_basis, LegalBasis.values),
    ):
        if value not in allowed:
            errors.add(field, _("Choose one of: %(c)s.") % {"c": ", ".join(allowed)})
    if not source or len(source) > 50:
        errors.add("source", _("A source of 1 to 50 characters is required."))
    if evidence is not None and not isinstance(evidence, dict):
        errors.add("evidence", _("Evidence must be an object."))
    _raise(errors)
    entry = ConsentEntry.objects.create(
        customer=customer,
        purpose=purpose,
        channel=channel,
        status=status,
        legal_basis=legal_basis,
        source=source,
        notice_version=notice_version,
        evidence=evidence or {},
        recorded_at=recorded_at or now(),
        recorded_by=recorded_by if getattr(recorded_by, "is_authenticated", False) else None,
    )
    event_record(
        type=f"consent.{status}",
        customer=customer,
        source=source,
        occurred_at=entry.recorded_at,
        properties={"purpose": purpose, "channel": channel},
    )
    return entry


# --- trait schema -------------------------------------------------------------------------


@transaction.atomic
def trait_definition_create(
    *, key: str, label: str, type: str, choices: list[Any] | None = None, description: str = ""
) -> TraitDefinition:
    errors = FieldErrors()
    if type not in TraitType.values:
        errors.add("type", _("Choose one of: %(c)s.") % {"c": ", ".join(TraitType.values)})
    if type == TraitType.CHOICE and not choices:
        errors.add("choices", _("A choice trait needs at least one choice."))
    if TraitDefinition.objects.filter(key=key).exists():
        errors.add("key", _("A trait with this key already exists."))
    _raise(errors)
    definition = TraitDefinition(
        key=key, label=label, type=type, choices=choices or [], description=description
    )
    definition.full_clean()
    definition.save()
    return definition
