"""Identity resolution: which customer an incoming message (or imported row) belongs to.

Deterministic rules, applied to each subject in order:

1. a known user id (an `external` identity) decides;
2. else a known verified identity named in the traits: email, then phone, then LINE id;
3. else a known anonymous id (a device/browser seen before and linked on identify);
4. else a new customer is created when the subject has a user id, an email or a phone;
   a subject with only an anonymous id stays anonymous (its events keep the anonymous id
   and are stitched to the customer once an identify links that anonymous id).

After the decision, every identifier the subject carries that is not yet linked to anybody
is linked to the chosen customer (user id, anonymous id, email, phone). An identifier that
already belongs to *another* customer is never moved silently: that is a suspected
duplicate for staff to review (or an `alias` call, which merges explicitly).

`subjects_resolve` does this for thousands of subjects with a handful of queries and bulk
inserts; it runs inside the caller's transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kizuna.core.bulk import allocate_ids, batched, table_insert
from kizuna.customers.bulk import (
    _PROFILE_DEFAULTS,
    CUSTOMER_FIELDS,
    EventRow,
    _identity_owners,
    events_insert,
)
from kizuna.customers.choices import Gender, IdentityKind
from kizuna.customers.models import Customer, Event, Identity
from kizuna.customers.validation import (
    katakana,
    nfkc,
    normalize_email,
    normalize_identity,
    normalize_phone,
    normalize_postal_code,
)

MATCH_ORDER = (IdentityKind.EXTERNAL, IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.LINE)


@dataclass
class Subject:
    """Who a message is about, as far as the message says."""

    user_id: str = ""
    anonymous_id: str = ""
    traits: dict[str, Any] = field(default_factory=dict)  # profile traits (identify only)
    at: datetime | None = None


def _clean(fn: Any, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        return str(fn(value))
    except ValueError:
        return ""


def subject_identifiers(subject: Subject) -> dict[str, str]:
    """The normalised identifiers a subject carries, by identity kind (pure)."""
    out: dict[str, str] = {}
    if subject.user_id:
        out[IdentityKind.EXTERNAL] = subject.user_id[:255]
    traits = subject.traits
    if traits:
        email = _clean(normalize_email, traits.get("email"))
        if email:
            out[IdentityKind.EMAIL] = email
        phone = _clean(normalize_phone, traits.get("phone"))
        if phone:
            out[IdentityKind.PHONE] = phone
        line = _clean(lambda v: normalize_identity(IdentityKind.LINE, v), traits.get("lineUserId"))
        if line:
            out[IdentityKind.LINE] = line
    if subject.anonymous_id:
        out[IdentityKind.ANONYMOUS] = subject.anonymous_id[:255]
    return out


def profile_from_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment's reserved traits mapped to profile fields; invalid values are left out
    (the raw traits stay on the event) (pure)."""
    out: dict[str, Any] = {}
    email = _clean(normalize_email, traits.get("email"))
    if email:
        out["email"] = email
    phone = _clean(normalize_phone, traits.get("phone"))
    if phone:
        out["phone"] = phone
    for key, target, limit in (
        ("lastName", "family_name", 100),
        ("firstName", "given_name", 100),
        ("lastNameKana", "family_name_kana", 100),
        ("firstNameKana", "given_name_kana", 100),
    ):
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            # As clean_profile: NFKC (half-width kana, full-width letters), readings in katakana.
            text = katakana(value) if target.endswith("_kana") else nfkc(value)
            if len(text) <= limit:
                out[target] = text
    if "family_name" not in out and "given_name" not in out:
        name = traits.get("name")
        if isinstance(name, str) and name.strip() and len(name) <= 200:
            family, _sep, given = nfkc(name).partition(" ")
            out["family_name"], out["given_name"] = family[:100], given.strip()[:100]
    gender = traits.get("gender")
    if isinstance(gender, str) and gender.lower() in Gender.values:
        out["gender"] = gender.lower()
    birthday = traits.get("birthday")
    if isinstance(birthday, str) and len(birthday) >= 10:
        from datetime import date

        with contextlib.suppress(ValueError):
            out["birthday"] = date.fromisoformat(birthday[:10])
    address = traits.get("address")
    postal = address.get("postalCode") if isinstance(address, dict) else None
    postal = _clean(normalize_postal_code, postal or traits.get("postalCode"))
    if postal:
        out["postal_code"] = postal
    return out


@dataclass
class Resolution:
    customer_ids: list[int | None]
    created: int = 0
    linked: int = 0
    stitched_anonymous: list[str] = field(default_factory=list)
    # Anonymous ids linked to a customer by this call: a caller appending events of the
    # same subjects gives that customer the anonymous-only ones resolved before the link.
    anonymous_links: dict[str, int] = field(default_factory=dict)


def subjects_resolve(
    subjects: Sequence[Subject], *, source: str, at: datetime, backfill_anonymous: bool = True
) -> Resolution:
    """Resolve each subject to a customer id (None: anonymous) with the module's rules,
    creating customers and linking identifiers in bulk. Call inside a transaction."""
    wanted: dict[str, set[str]] = {}
    per_subject = [subject_identifiers(s) for s in subjects]
    for ids in per_subject:
        for kind, value in ids.items():
            wanted.setdefault(kind, set()).add(value)
    known: dict[tuple[str, str], int] = {}
    for kind, values in wanted.items():
        # One query per kind (sorted: index probes in order).
        for value, cid in _identity_owners(kind, sorted(values)).items():
            known[(kind, value)] = cid

    new_customers: list[tuple[int, dict[str, Any], datetime]] = []  # (temp id, profile, at)
    new_links: dict[tuple[str, str], int] = {}
    updates: dict[int, dict[str, Any]] = {}
    result: list[int | None] = []
    next_temp = -1
    for subject, ids in zip(subjects, per_subject, strict=True):
        chosen: int | None = None
        for kind in (*MATCH_ORDER, IdentityKind.ANONYMOUS):
            candidate = ids.get(kind)
            if candidate and (kind, candidate) in known:
                chosen = known[(kind, candidate)]
                break
        profile = profile_from_traits(subject.traits) if subject.traits else {}
        if chosen is None and (
            ids.get(IdentityKind.EXTERNAL)
            or ids.get(IdentityKind.EMAIL)
            or ids.get(IdentityKind.PHONE)
        ):
            chosen = next_temp
            next_temp -= 1
            new_customers.append((chosen, dict(profile), subject.at or at))
        elif chosen is not None and profile:
            updates.setdefault(chosen, {}).update(profile)
        if chosen is not None:
            for kind, value in ids.items():
                if (kind, value) not in known:
                    known[(kind, value)] = chosen
                    new_links[(kind, value)] = chosen
        result.append(chosen)

    # Real ids for the new customers, then the writes.
    temp_to_real: dict[int, int] = {}
    if new_customers:
        real = allocate_ids(Customer, len(new_customers))
        temp_to_real = {temp: rid for (temp, _p, _a), rid in zip(new_customers, real, strict=True)}
        # A new customer's profile may still change with later identifies in this chunk.
        profiles = {temp: prof for temp, prof, _a in new_customers}
        for temp, changes in list(updates.items()):
            if temp < 0:
                profiles[temp].update(changes)
                del updates[temp]
        table_insert(
            Customer,
            CUSTOMER_FIELDS,
            [
                (
                    temp_to_real[temp],
                    *(
                        profiles[temp].get(name, _PROFILE_DEFAULTS[name])
                        for name in _PROFILE_DEFAULTS
                    ),
                    when,
                    when,
                    when,
                    when,
                )
                for temp, _p, when in new_customers
            ],
        )
        events_insert(
            [
                EventRow(
                    type="customer.created",
                    customer_id=temp_to_real[temp],
                    occurred_at=when,
                    source=source,
                )
                for temp, _p, when in new_customers
            ]
        )

    def real_id(cid: int | None) -> int | None:
        return temp_to_real.get(cid, cid) if cid is not None and cid < 0 else cid

    if new_links:
        table_insert(
            Identity,
            ["customer", "kind", "value", "source", "created_at"],
            [(real_id(cid), kind, value, source, at) for (kind, value), cid in new_links.items()],
        )
    for cid, changes in updates.items():
        _profile_fill(cid, changes, at)
    stitched: list[str] = []
    anon_links = {
        value: real_id(cid)
        for (kind, value), cid in new_links.items()
        if kind == IdentityKind.ANONYMOUS and cid is not None
    }
    if backfill_anonymous and anon_links:
        stitched = _anonymous_stitch(anon_links)
    return Resolution(
        customer_ids=[real_id(c) for c in result],
        created=len(new_customers),
        linked=len(new_links),
        stitched_anonymous=stitched,
        anonymous_links={k: v for k, v in anon_links.items() if v is not None},
    )


def _anonymous_stitch(owners: dict[str, int | None]) -> list[str]:
    """Give the stored anonymous-only events of each newly linked anonymous id to its
    customer; returns the ids that had any. Which of them have events is one query through
    the partial index of unlinked anonymous events; only those get an UPDATE."""
    values = sorted(owners)
    with_events: set[str] = set()
    for chunk in batched(values, 5000):
        with_events.update(
            Event.objects.filter(customer__isnull=True, anonymous_id__in=chunk)
            .values_list("anonymous_id", flat=True)
            .distinct()
        )
    stitched = sorted(with_events)
    for anonymous in stitched:
        Event.objects.filter(anonymous_id=anonymous, customer__isnull=True).update(
            customer=owners[anonymous]
        )
    return stitched


def _profile_fill(customer_id: int, changes: dict[str, Any], at: datetime) -> None:
    """Apply profile traits from an identify (the newest value wins, as in Segment). A row
    that already holds these values is not rewritten (nor its `updated_at` moved)."""
    Customer.objects.filter(pk=customer_id).exclude(**changes).update(**changes, updated_at=at)
