"""Merging duplicate customers into one survivor, and finding suspected duplicates.

A merge moves the merged customer's identities, events and consents to the survivor, fills
the survivor's empty profile fields from the merged one, marks the merged profile
(`merged_into`), records a `CustomerMerge` with a snapshot of everything it changed, and
publishes `customer.merged` inside the same transaction, so that higher apps (orders,
loyalty points, survey answers) move their own rows as part of the very same write (and
note what they moved in the snapshot with `merge_note_moved`).

`customer_unmerge` reverses a merge from that snapshot: the identities, events and consents
that moved go back, the survivor's filled-in fields are restored where nobody changed them
since, the merged profile is live again, and `customer.unmerged` (in the same transaction)
lets the higher apps move their rows back.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils.translation import gettext as _

from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.customers.models import ConsentEntry, Customer, CustomerMerge, Event, Identity
from kizuna.customers.services import event_record

# Profile fields a survivor takes from the merged customer when its own are empty.
FILLABLE_FIELDS = [
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "birthday",
    "postal_code",
    "prefecture",
    "city",
    "address_line",
]
MERGED_EVENT = "customer.merged"
UNMERGED_EVENT = "customer.unmerged"


def _empty(value: Any) -> bool:
    return value in (None, "")


def merge_plan(survivor: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
    """The survivor's new field values: its own where set, else the merged customer's.
    Traits merge the same way, key by key (pure; tested without a database)."""
    changes: dict[str, Any] = {}
    for field in FILLABLE_FIELDS:
        if _empty(survivor.get(field)) and not _empty(merged.get(field)):
            changes[field] = merged[field]
    traits = dict(survivor.get("traits") or {})
    added = {k: v for k, v in (merged.get("traits") or {}).items() if k not in traits}
    if added:
        changes["traits"] = {**traits, **added}
    return changes


def _field_values(customer: Customer) -> dict[str, Any]:
    return {f: getattr(customer, f) for f in [*FILLABLE_FIELDS, "traits"]}


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@transaction.atomic
def customer_merge(
    *,
    survivor: Customer,
    merged: Customer,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> CustomerMerge:
    """Merge `merged` into `survivor` (see the module docstring). Raises ValidationError
    (keyed `merged`) for a customer merged with itself or one already merged."""
    if survivor.pk == merged.pk:
        raise ValidationError({"merged": [_("A customer cannot be merged with itself.")]})
    # Lock both in a fixed order so two concurrent merges of the same pair cannot interleave.
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[survivor.pk, merged.pk])
        .order_by("pk")
    }
    if len(locked) != 2:
        raise ValidationError({"merged": [_("Both customers must exist.")]})
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if merged.merged_into_id is not None:
        raise ValidationError({"merged": [_("This customer was already merged.")]})
    if survivor.merged_into_id is not None:
        raise ValidationError({"survivor": [_("The survivor was itself merged away.")]})

    changes = merge_plan(_field_values(survivor), _field_values(merged))
    identity_ids = list(Identity.objects.filter(customer=merged).values_list("pk", flat=True))
    event_ids = list(Event.objects.filter(customer=merged).values_list("pk", flat=True))
    consent_ids = list(ConsentEntry.objects.filter(customer=merged).values_list("pk", flat=True))
    snapshot = {
        "survivor_before": {k: _json_value(v) for k, v in _field_values(survivor).items()},
        "survivor_changes": {k: _json_value(v) for k, v in changes.items()},
        "merged_profile": {k: _json_value(v) for k, v in _field_values(merged).items()},
        "moved": {"identities": identity_ids, "events": event_ids, "consents": consent_ids},
    }
    with acting_as(actor):
        Identity.objects.filter(pk__in=identity_ids).update(customer=survivor)
        Event.objects.filter(pk__in=event_ids).update(customer=survivor)
        ConsentEntry.objects.filter(pk__in=consent_ids).update(customer=survivor)
        for field, value in changes.items():
            setattr(survivor, field, value)
        for bound in ("first_seen_at", "last_seen_at"):
            mine, theirs = getattr(survivor, bound), getattr(merged, bound)
            if theirs is not None and (
                mine is None or (theirs < mine if bound == "first_seen_at" else theirs > mine)
            ):
                setattr(survivor, bound, theirs)
                changes[bound] = theirs
        survivor.save(update_fields=[*changes, "updated_at"])
        # The merged profile keeps its row (orders reference it until they move, and the
        # snapshot can restore it) but gives up the email/phone the survivor now holds.
        merged.merged_into = survivor
        merged.save(update_fields=["merged_into", "updated_at"])
        record = CustomerMerge.objects.create(
            survivor=survivor,
            merged=merged,
            reason=reason[:200],
            snapshot=snapshot,
            merged_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
        )
    # Stored on the survivor's timeline and published on the bus now: in-transaction
    # subscribers (orders, points) move their rows inside this very transaction.
    event_record(
        type=MERGED_EVENT,
        customer=survivor,
        source="kizuna",
        properties={"survivor_id": survivor.pk, "merged_id": merged.pk, "merge_id": record.pk},
    )
    return record


def merge_note_moved(*, merge_id: int, key: str, row_ids: list[int]) -> None:
    """For an in-transaction subscriber of `customer.merged`: record in the merge's snapshot
    which of its own rows (`key`, e.g. "orders") it moved, so an unmerge can move them back."""
    record = CustomerMerge.objects.select_for_update().get(pk=merge_id)
    moved = record.snapshot.setdefault("moved", {})
    moved[key] = sorted({*moved.get(key, []), *row_ids})
    CustomerMerge.objects.filter(pk=merge_id).update(snapshot=record.snapshot)


def _from_json(field: str, value: Any) -> Any:
    if field == "birthday" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _seen_bounds(customer_id: int) -> dict[str, Any]:
    bounds = Event.objects.filter(customer_id=customer_id).aggregate(
        first=Min("occurred_at"), last=Max("occurred_at")
    )
    return {"first_seen_at": bounds["first"], "last_seen_at": bounds["last"]}


@transaction.atomic
def customer_unmerge(
    *, merge: CustomerMerge, actor: AbstractBaseUser | None = None, reason: str = ""
) -> CustomerMerge:
    """Reverse `merge` from its snapshot (see the module docstring); audited, and
    `customer.unmerged` published in this transaction. Raises ValidationError (keyed
    `merge`) when it was already undone, or when the merged customer was merged again
    or the survivor merged away since (undo those first)."""
    record = CustomerMerge.objects.select_for_update().filter(pk=merge.pk).first()
    if record is None:
        raise ValidationError({"merge": [_("This merge does not exist.")]})
    if record.undone_at is not None:
        raise ValidationError({"merge": [_("This merge was already undone.")]})
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[record.survivor_id, record.merged_id])
        .order_by("pk")
    }
    survivor, merged = locked[record.survivor_id], locked[record.merged_id]
    if merged.merged_into_id != survivor.pk or survivor.merged_into_id is not None:
        raise ValidationError(
            {"merge": [_("A later merge involves these customers; undo it first.")]}
        )
    snapshot = record.snapshot or {}
    moved = snapshot.get("moved", {})
    with acting_as(actor):
        Identity.objects.filter(pk__in=moved.get("identities", []), customer=survivor).update(
            customer=merged
        )
        Event.objects.filter(pk__in=moved.get("events", []), customer=survivor).update(
            customer=merged
        )
        ConsentEntry.objects.filter(pk__in=moved.get("consents", []), customer=survivor).update(
            customer=merged
        )
        # Fields the merge filled in go back to what they were, unless changed since.
        before = snapshot.get("survivor_before", {})
        restored: list[str] = []
        for field, filled in snapshot.get("survivor_changes", {}).items():
            if field not in before:
                continue
            if _json_value(getattr(survivor, field)) == filled:
                setattr(survivor, field, _from_json(field, before[field]))
                restored.append(field)
        for customer in (survivor, merged):
            for bound, value in _seen_bounds(customer.pk).items():
                setattr(customer, bound, value)
        survivor.save(update_fields=[*restored, "first_seen_at", "last_seen_at", "updated_at"])
        merged.merged_into = None
        merged.save(update_fields=["merged_into", "first_seen_at", "last_seen_at", "updated_at"])
        record.undone_at = now()
        record.save(update_fields=["undone_at"])
    event_record(
        type=UNMERGED_EVENT,
        customer=merged,
        source="kizuna",
        properties={
            "survivor_id": survivor.pk,
            "merged_id": merged.pk,
            "merge_id": record.pk,
            "moved": moved,
            "reason": reason[:200],
        },
    )
    return record


# --- suspected duplicates -----------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateGroup:
    reason: str  # "email", "phone" or "name_birthday_postcode"
    key: str
    customer_ids: list[int]


def _name_key(family: str, given: str) -> str:
    return unicodedata.normalize("NFKC", f"{family}{given}").replace(" ", "").lower()


def duplicate_groups(rows: list[dict[str, Any]]) -> list[DuplicateGroup]:
    """Group customers (dicts with id, email, phone, names, birthday, postal_code) that share
    a normalised email, a phone, or name + birthday + postcode (pure)."""
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        email = (row.get("email") or "").strip().lower()
        if email:
            buckets[("email", email)].append(row["id"])
        phone = (row.get("phone") or "").strip()
        if phone:
            buckets[("phone", phone)].append(row["id"])
        name = _name_key(row.get("family_name") or "", row.get("given_name") or "")
        if name and row.get("birthday") and row.get("postal_code"):
            key = f"{name}|{row['birthday']}|{row['postal_code']}"
            buckets[("name_birthday_postcode", key)].append(row["id"])
    groups = [
        DuplicateGroup(reason=reason, key=key, customer_ids=sorted(set(ids)))
        for (reason, key), ids in buckets.items()
        if len(set(ids)) > 1
    ]
    groups.sort(key=lambda g: g.customer_ids[0])
    return groups


def suspected_duplicates(*, limit: int = 200) -> list[DuplicateGroup]:
    """Groups of live (not merged) customers that look like one person."""
    fields = ["id", "email", "phone", "family_name", "given_name", "birthday", "postal_code"]
    live = Customer.objects.filter(merged_into__isnull=True)
    # Only rows sharing a value with another can be in a group: narrow in the database first.
    from django.db.models import Count

    def shared(field: str) -> list[Any]:
        return list(
            live.exclude(**{field: ""})
            .values(field)
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .values_list(field, flat=True)[:10_000]
        )

    emails, phones = shared("email"), shared("phone")
    triples = (
        live.exclude(family_name="")
        .exclude(postal_code="")
        .filter(birthday__isnull=False)
        .values("family_name", "given_name", "birthday", "postal_code")
        .annotate(n=Count("id"))
        .filter(n__gt=1)[:10_000]
    )
    cond = Q(email__in=emails) | Q(phone__in=phones)
    for t in triples:
        cond |= Q(
            family_name=t["family_name"],
            given_name=t["given_name"],
            birthday=t["birthday"],
            postal_code=t["postal_code"],
        )
    rows = list(live.filter(cond).values(*fields)) if (emails or phones or triples) else []
    return duplicate_groups(rows)[:limit]
