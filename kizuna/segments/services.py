"""Writes of audiences: saving segments, materialising membership, static lists."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils.text import slugify
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.bulk import batched, table_insert
from kizuna.core.timeutil import now
from kizuna.customers.bulk import EventRow, events_bulk_check, events_insert
from kizuna.customers.choices import IdentityKind
from kizuna.customers.models import Customer, Identity
from kizuna.customers.validation import normalize_identity
from kizuna.segments import rules as rule_language
from kizuna.segments.models import Segment, SegmentKind, SegmentMembership, SegmentSnapshot
from kizuna.segments.selectors import rule_context, segment_condition

logger = logging.getLogger(__name__)

ENTERED = "segment.entered"
LEFT = "segment.left"
EVENT_SOURCE = "segments"
SAVE_FIELDS = {"name", "slug", "kind", "rules", "description"}


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _unique_slug(base: str, exclude_id: int | None) -> str:
    base = (base or "segment")[:90].strip("-") or "segment"
    taken = set(
        Segment.objects.filter(slug__startswith=base)
        .exclude(pk=exclude_id or 0)
        .values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


@transaction.atomic
def segment_save(
    *,
    data: dict[str, Any],
    actor: AbstractBaseUser | None = None,
    segment: Segment | None = None,
) -> Segment:
    """Create a segment (`segment=None`) or update one from `data` (name, slug, kind,
    rules, description; on update every key is optional and `kind` cannot change).

    Rules are validated against the trait schema and the other segments (unknown fields,
    wrong operators, bad values, cycles of segments referring to each other): errors are
    raised as ValidationError keyed by the condition's path (`conditions[2].field`), and
    nothing is saved. Membership is refreshed after commit (in the background)."""
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - SAVE_FIELDS):
        errors.setdefault(key, []).append(_("Unknown field."))
    if segment is not None:
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
    name = data.get("name", segment.name if segment else "")
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not name or len(name) > 100:
        errors.setdefault("name", []).append(_("A name of 1 to 100 characters is required."))
        name = ""
    kind = data.get("kind", segment.kind if segment else SegmentKind.DYNAMIC)
    if kind not in SegmentKind.values:
        errors.setdefault("kind", []).append(_('Expected "dynamic" or "static".'))
    elif segment is not None and kind != segment.kind:
        errors.setdefault("kind", []).append(_("The kind of a segment cannot change."))
    description = data.get("description", segment.description if segment else "")
    if not isinstance(description, str) or len(description) > 2000:
        errors.setdefault("description", []).append(_("At most 2000 characters of text."))
    slug = data.get("slug") or ""
    if slug:
        if not isinstance(slug, str) or slugify(slug) != slug or len(slug) > 100:
            errors.setdefault("slug", []).append(
                _("Lower-case letters, digits and hyphens only (at most 100).")
            )
        elif Segment.objects.filter(slug=slug).exclude(pk=segment.pk if segment else 0).exists():
            errors.setdefault("slug", []).append(_("Another segment has this slug."))
    rules = data.get("rules", segment.rules if segment else None)
    if kind == SegmentKind.STATIC and "kind" not in errors:
        if rules not in (None, {}):
            errors.setdefault("rules", []).append(_("A static segment has no rules."))
        rules = {}
    elif kind == SegmentKind.DYNAMIC and "kind" not in errors:
        if rules is None:
            rules = {"version": rule_language.VERSION, "match": "all", "conditions": []}
        try:
            rule_language.validate(
                rules, rule_context(self_id=segment.pk if segment else None, rules=rules)
            )
        except ValidationError as exc:
            for path, messages in exc.message_dict.items():
                errors.setdefault(path, []).extend(messages)
    _raise(errors)
    with acting_as(actor):
        if segment is None:
            segment = Segment(
                kind=kind,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
            )
        segment.name = name
        segment.slug = slug or (segment.slug if segment.slug else "")
        if not segment.slug:
            segment.slug = _unique_slug(slugify(name), segment.pk)
        segment.rules = rules
        segment.description = description
        try:
            with transaction.atomic():
                segment.save()
        except IntegrityError as exc:
            raise ValidationError({"slug": [_("Another segment has this slug.")]}) from exc
    if kind == SegmentKind.DYNAMIC:
        segment_id = segment.pk
        transaction.on_commit(lambda: _queue_refresh(segment_id))
    return segment


def _queue_refresh(segment_id: int) -> None:
    from kizuna.segments import tasks

    tasks.segment_refresh_task(segment_id)


@dataclass
class Refreshed:
    segment_id: int
    size: int
    entered: int
    left: int
    at: datetime


def _membership_events(
    segment: Segment, kind: str, customer_ids: Iterable[int], at: datetime
) -> list[EventRow]:
    stamp = int(at.timestamp() * 1_000_000)
    props = {"segment_id": segment.pk, "segment": segment.slug, "name": segment.name}
    tag = "in" if kind == ENTERED else "out"
    return [
        EventRow(
            type=kind,
            customer_id=cid,
            occurred_at=at,
            properties=props,
            source=EVENT_SOURCE,
            message_id=f"seg:{segment.pk}:{stamp}:{tag}:{cid}",
        )
        for cid in customer_ids
    ]


def _apply(segment: Segment, entered: list[int], left: list[int], at: datetime) -> None:
    """Write a membership change (inside the caller's transaction): delete who left,
    insert who entered, append `segment.entered`/`segment.left` to their timelines in bulk
    and publish them on the bus after commit (journeys trigger on them).

    The events do not move the customers' first/last-seen times: being computed into a
    segment is not the customer being seen (and would feed back into `last_seen_at` rules).
    """
    for chunk in batched(left, 900):
        SegmentMembership.objects.filter(segment=segment, customer_id__in=chunk).delete()
    table_insert(
        SegmentMembership,
        ["segment", "customer", "entered_at"],
        ((segment.pk, cid, at) for cid in entered),
    )
    rows = _membership_events(segment, ENTERED, entered, at) + _membership_events(
        segment, LEFT, left, at
    )
    if rows:
        events_bulk_check(rows)
        events_insert(rows)
        bus.publish_many(
            [
                bus.DomainEvent(
                    type=row.type,
                    occurred_at=at,
                    customer_id=row.customer_id,
                    properties=row.properties,
                    source=EVENT_SOURCE,
                )
                for row in rows
            ]
        )


@transaction.atomic
def segment_refresh(*, segment: Segment) -> Refreshed:
    """Materialise a dynamic segment's membership now (set-based: one statement finds who
    left, one who entered), record entered/left events and a size snapshot. Concurrent
    refreshes of one segment run one after the other (the segment row is locked). A static
    segment's list is kept as it is; only its size is recorded."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    at = now()
    entered: list[int] = []
    left: list[int] = []
    members = SegmentMembership.objects.filter(segment=segment)
    if segment.kind == SegmentKind.DYNAMIC:
        condition = segment_condition(segment=segment)
        matching = Customer.objects.filter(condition)
        left = list(
            members.filter(
                ~Exists(matching.filter(pk=OuterRef("customer_id")).values("pk"))
            ).values_list("customer_id", flat=True)
        )
        entered = list(
            matching.filter(
                ~Exists(
                    SegmentMembership.objects.filter(segment=segment, customer_id=OuterRef("pk"))
                )
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _apply(segment, entered, left, at)
    size = members.filter(customer__merged_into__isnull=True).count()
    SegmentSnapshot.objects.create(
        segment=segment, taken_at=at, size=size, entered=len(entered), left=len(left)
    )
    Segment.objects.filter(pk=segment.pk).update(member_count=size, refreshed_at=at)
    segment.member_count, segment.refreshed_at = size, at
    return Refreshed(segment.pk, size, len(entered), len(left), at)


def segments_refresh_all() -> list[Refreshed]:
    """Refresh every dynamic segment, each in its own transaction; a segment whose rules
    no longer compile (a trait definition removed) is skipped and logged."""
    done: list[Refreshed] = []
    for segment in Segment.objects.filter(kind=SegmentKind.DYNAMIC).order_by("pk"):
        try:
            done.append(segment_refresh(segment=segment))
        except ValidationError:
            logger.exception("segment %s no longer compiles; not refreshed", segment.pk)
    return done


# --- static lists -------------------------------------------------------------------------

KEY_COLUMNS = {
    "email": "email",
    "mail": "email",
    "external_id": "external",
    "external": "external",
    "customer_id": "customer_id",
    "id": "customer_id",
}
MAX_UPLOAD_ROWS = 200_000


@dataclass
class Uploaded:
    matched: int
    entered: int
    left: int
    unknown: list[str] = field(default_factory=list)


def _read_keys(text: str, key: str | None) -> tuple[str, list[tuple[int, str]]]:
    """(key kind, [(line number, value)]) from CSV text: a header row naming the key column
    (email, external_id or customer_id) or, without a header, one value per line of the kind
    `key` (emails when not given)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [row for row in reader]
    if not rows:
        raise ValidationError({"file": [_("The file is empty.")]})
    header = [cell.strip().lower() for cell in rows[0]]
    column = 0
    start = 0
    found = [i for i, cell in enumerate(header) if cell in KEY_COLUMNS]
    if found:
        column = found[0]
        kind = KEY_COLUMNS[header[column]]
        start = 1
    else:
        kind = KEY_COLUMNS.get(key or "email", key or "")
    if kind not in ("email", "external", "customer_id"):
        raise ValidationError({"key": [_("Expected email, external_id or customer_id.")]})
    values = [
        (n + 1, row[column].strip())
        for n, row in enumerate(rows[start:], start=start)
        if len(row) > column and row[column].strip()
    ]
    if len(values) > MAX_UPLOAD_ROWS:
        raise ValidationError(
            {"file": [_("At most %(n)d rows per upload.") % {"n": MAX_UPLOAD_ROWS}]}
        )
    return kind, values


def _resolve(
    kind: str, values: list[tuple[int, str]]
) -> tuple[dict[int, int], dict[str, list[str]]]:
    """Line number -> customer id (a merged profile resolves to its survivor); errors by row."""
    errors: dict[str, list[str]] = {}
    wanted: dict[int, str] = {}
    for line, raw in values:
        try:
            if kind == "customer_id":
                if not raw.isdigit():
                    raise ValueError(_("Expected a customer id."))
                wanted[line] = raw
            else:
                wanted[line] = normalize_identity(
                    IdentityKind.EMAIL if kind == "email" else IdentityKind.EXTERNAL, raw
                )
        except ValueError as exc:
            errors[f"rows[{line}]"] = [str(exc)]
    found: dict[str, int] = {}
    keys = sorted(set(wanted.values()))
    for chunk in batched(keys, 900):
        if kind == "customer_id":
            customers = Customer.objects.filter(pk__in=[int(v) for v in chunk])
            found.update(
                {
                    str(pk): merged or pk
                    for pk, merged in customers.values_list("pk", "merged_into_id")
                }
            )
        else:
            identity_kind = IdentityKind.EMAIL if kind == "email" else IdentityKind.EXTERNAL
            identities = Identity.objects.filter(kind=identity_kind, value__in=chunk)
            triples = identities.values_list("value", "customer_id", "customer__merged_into_id")
            found.update({value: merged or cid for value, cid, merged in triples})
    resolved: dict[int, int] = {}
    for line, value in wanted.items():
        if value in found:
            resolved[line] = found[value]
        else:
            errors[f"rows[{line}]"] = [_("No customer with %(value)s.") % {"value": value}]
    return resolved, errors


@transaction.atomic
def segment_upload_static(
    *,
    segment: Segment,
    text: str,
    key: str | None = None,
    replace: bool = True,
    skip_unknown: bool = False,
    actor: AbstractBaseUser | None = None,
) -> Uploaded:
    """Set (`replace=True`) or extend a static segment's list from CSV text of emails,
    external ids or customer ids. Rows that match no customer are errors keyed
    `rows[<line>]` and nothing is written, unless `skip_unknown` (they are then returned).
    Who entered and left is recorded on the timelines like a refresh."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.kind != SegmentKind.STATIC:
        raise ValidationError({"kind": [_("Only a static segment takes an uploaded list.")]})
    kind, values = _read_keys(text, key)
    resolved, errors = _resolve(kind, values)
    unknown = sorted(errors, key=lambda k: int(k[5:-1]))
    if errors and not skip_unknown:
        _raise(dict(list(errors.items())[:50]))
    wanted = set(resolved.values())
    current = set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )
    entered = sorted(wanted - current)
    left = sorted(current - wanted) if replace else []
    at = now()
    with acting_as(actor):
        _apply(segment, entered, left, at)
        size = SegmentMembership.objects.filter(
            segment=segment, customer__merged_into__isnull=True
        ).count()
        SegmentSnapshot.objects.create(
            segment=segment, taken_at=at, size=size, entered=len(entered), left=len(left)
        )
        Segment.objects.filter(pk=segment.pk).update(member_count=size, refreshed_at=at)
    return Uploaded(
        matched=len(wanted),
        entered=len(entered),
        left=len(left),
        unknown=[f"{k}: {errors[k][0]}" for k in unknown],
    )


@transaction.atomic
def segment_delete(*, segment: Segment, actor: AbstractBaseUser | None = None) -> None:
    """Delete a segment that no other segment refers to."""
    referring = [
        s.name
        for s in Segment.objects.exclude(pk=segment.pk).filter(kind=SegmentKind.DYNAMIC)
        if segment.pk in rule_language.segment_refs(s.rules)
    ]
    if referring:
        raise ValidationError(
            {"segment": [_("Used by other segments: %(names)s.") % {"names": ", ".join(referring)}]}
        )
    with acting_as(actor):
        segment.delete()
