"""Reads of the profile layer."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from kizuna.core.errors import NotFound
from kizuna.customers.models import (
    ConsentEntry,
    Customer,
    CustomerMerge,
    Event,
    Identity,
    TraitDefinition,
)
from kizuna.customers.validation import hiragana, katakana
from kizuna.iam.selectors import Principal, principal_has_perm


def last_seen_between(since: datetime, until: datetime) -> Q:
    """Customers last seen from `since` (inclusive) to `until` (exclusive), as a condition
    the database answers from the index of the last-seen day (`Customer.last_seen_on`)."""
    return Q(
        last_seen_on__gte=since.astimezone(UTC).date(),
        last_seen_on__lte=until.astimezone(UTC).date(),
        last_seen_at__gte=since,
        last_seen_at__lt=until,
    )


def customer_list(
    *,
    search: str = "",
    prefecture: str = "",
    gender: str = "",
    has_email: bool | None = None,
    ordering: str = "-id",
) -> QuerySet[Customer]:
    """Customers matching a free-text search (name, kana in hiragana or katakana, email,
    phone, id) and filters, in a stable order."""
    qs = Customer.objects.all()
    term = unicodedata.normalize("NFKC", search).strip()
    if term:
        kata = katakana(term)
        hira = hiragana(term)
        # Kana-insensitive: a name written in katakana or hiragana is found by either script.
        cond = (
            Q(family_name__icontains=term)
            | Q(given_name__icontains=term)
            | Q(family_name__icontains=kata)
            | Q(given_name__icontains=kata)
            | Q(family_name__icontains=hira)
            | Q(given_name__icontains=hira)
            | Q(family_name_kana__icontains=kata)
            | Q(given_name_kana__icontains=kata)
            | Q(email__icontains=term.lower())
            | Q(identities__value__iexact=term)
        )
        digits = "".join(ch for ch in term if ch.isdigit())
        if len(digits) >= 4:
            cond |= Q(phone__contains=digits.lstrip("0"))
        if term.isdigit():
            cond |= Q(pk=int(term))
        if " " in term:
            family, _, given = term.partition(" ")
            cond |= (Q(family_name__icontains=family) & Q(given_name__icontains=given.strip())) | (
                Q(family_name_kana__icontains=katakana(family))
                & Q(given_name_kana__icontains=katakana(given.strip()))
            )
        qs = qs.filter(cond).distinct()
    if prefecture:
        qs = qs.filter(prefecture=prefecture)
    if gender:
        qs = qs.filter(gender=gender)
    if has_email is True:
        qs = qs.exclude(email="")
    elif has_email is False:
        qs = qs.filter(email="")
    allowed = {
        "id",
        "-id",
        "last_seen_at",
        "-last_seen_at",
        "family_name_kana",
        "-family_name_kana",
        "created_at",
        "-created_at",
    }
    order = ordering if ordering in allowed else "-id"
    tiebreak = "-id" if order.startswith("-") else "id"
    if order.lstrip("-") == "id":
        return qs.order_by(order)
    if order.lstrip("-") == "last_seen_at":
        # By the indexed day first (the database reads the index in order and sorts each
        # day's customers only as far as the page needs), then the time.
        return qs.order_by(order.replace("_at", "_on"), order, tiebreak)
    return qs.order_by(order, tiebreak)


def customer_get(*, customer_id: int) -> Customer:
    try:
        return Customer.objects.get(pk=customer_id)
    except Customer.DoesNotExist as exc:
        raise NotFound("customer", customer_id) from exc


def merge_get(*, merge_id: int) -> CustomerMerge:
    try:
        return CustomerMerge.objects.get(pk=merge_id)
    except CustomerMerge.DoesNotExist as exc:
        raise NotFound("merge", merge_id) from exc


def merge_list(*, limit: int = 50) -> QuerySet[CustomerMerge]:
    """The most recent merges, newest first (with both customers)."""
    return CustomerMerge.objects.select_related("survivor", "merged", "merged_by")[:limit]


def access_customer(*, principal: Principal, customer_id: int) -> Customer:
    """The customer if `principal` may view customers; NotFound otherwise (missing or not)."""
    if not principal_has_perm(principal, "customers.view_customer"):
        raise NotFound("customer", customer_id)
    return customer_get(customer_id=customer_id)


def identity_list(*, customer: Customer) -> QuerySet[Identity]:
    return customer.identities.order_by("kind", "created_at")


def customer_find_by_identity(*, kind: str, value: str) -> Customer | None:
    identity = Identity.objects.select_related("customer").filter(kind=kind, value=value).first()
    return identity.customer if identity else None


def consent_state(*, customer: Customer) -> list[ConsentEntry]:
    """The current consent per (purpose, channel): the newest ledger entry of each."""
    latest: dict[tuple[str, str], ConsentEntry] = {}
    for entry in customer.consents.order_by("-recorded_at", "-id"):
        latest.setdefault((entry.purpose, entry.channel), entry)
    return sorted(latest.values(), key=lambda e: (e.purpose, e.channel))


def consent_history(*, customer: Customer) -> QuerySet[ConsentEntry]:
    return customer.consents.select_related("recorded_by").order_by("-recorded_at", "-id")


def has_consent(*, customer: Customer, purpose: str, channel: str) -> bool:
    entry = (
        customer.consents.filter(purpose=purpose, channel__in=[channel, "any"])
        .order_by("-recorded_at", "-id")
        .first()
    )
    return entry is not None and entry.status == "granted"


DEFAULT_LEGAL_BASES = {"analytics": "legitimate_interest", "personalisation": "legitimate_interest"}


def default_basis(purpose: str) -> str | None:
    """The legal basis on which `purpose` is processed when the customer's ledger says
    nothing (`KIZUNA_DEFAULT_LEGAL_BASES`; by default analytics and personalisation on
    legitimate interest, so a customer may object; marketing and provision to third parties
    need a recorded basis). None: no processing without an entry."""
    bases = getattr(settings, "KIZUNA_DEFAULT_LEGAL_BASES", DEFAULT_LEGAL_BASES)
    return bases.get(purpose) or None


def has_basis(*, customer: Customer | int, purpose: str, channel: str = "any") -> bool:
    """Whether the customer's data may be processed for `purpose` (docs/privacy.md, "No
    processing without a basis"): the newest ledger entry for the purpose (on `channel` or
    "any"; with channel "any", on any channel) decides: granted (whatever its legal basis)
    yes, withdrawn (a withdrawal or an objection) no; with no entry, only when the purpose
    has a default basis. Every processing path of a purpose asks this (or `basis_decisions`
    for many customers at once)."""
    customer_id = customer if isinstance(customer, int) else customer.pk
    entries = ConsentEntry.objects.filter(customer_id=customer_id, purpose=purpose)
    if channel != "any":
        entries = entries.filter(channel__in=[channel, "any"])
    status = entries.order_by("-recorded_at", "-id").values_list("status", flat=True).first()
    if status is None:
        return default_basis(purpose) is not None
    return status == "granted"


def basis_decisions(*, purpose: str) -> tuple[bool, dict[int, bool]]:
    """For a processing path over many customers: (the default when the ledger says
    nothing, {customer id: the newest entry for the purpose is granted}), in one query.
    A customer is processed when `decisions.get(id, default)`."""
    decisions: dict[int, bool] = {}
    rows = (
        ConsentEntry.objects.filter(purpose=purpose)
        .order_by("customer_id", "-recorded_at", "-id")
        .values_list("customer_id", "status")
    )
    for customer_id, status in rows.iterator(chunk_size=5000):
        decisions.setdefault(customer_id, status == "granted")
    return default_basis(purpose) is not None, decisions


class ConsentLedgers:
    """The consent ledgers of many customers for one purpose, read in one query:
    `granted` answers exactly what `has_consent` answers, without a query per customer."""

    def __init__(self, entries: dict[int, list[tuple[str, str, datetime]]]) -> None:
        self._entries = entries  # customer id → [(channel, status, recorded_at)], newest first

    def latest(self, customer_id: int, channel: str) -> tuple[str, datetime] | None:
        """(status, recorded_at) of the newest entry for `channel` or "any"; None if none."""
        for entry_channel, status, recorded_at in self._entries.get(customer_id, ()):
            if entry_channel in (channel, "any"):
                return status, recorded_at
        return None

    def granted(self, customer_id: int, channel: str) -> bool:
        latest = self.latest(customer_id, channel)
        return latest is not None and latest[0] == "granted"


def consent_ledgers(*, customer_ids: Iterable[int], purpose: str) -> ConsentLedgers:
    entries: dict[int, list[tuple[str, str, datetime]]] = {}
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 900):
        rows = (
            ConsentEntry.objects.filter(customer_id__in=ids[start : start + 900], purpose=purpose)
            .order_by("customer_id", "-recorded_at", "-id")
            .values_list("customer_id", "channel", "status", "recorded_at")
        )
        for customer_id, channel, status, recorded_at in rows:
            entries.setdefault(customer_id, []).append((channel, status, recorded_at))
    return ConsentLedgers(entries)


def timeline(
    *,
    customer: Customer,
    limit: int = 50,
    before_id: int | None = None,
    types: list[str] | None = None,
) -> list[Event]:
    qs = customer.events.order_by("-occurred_at", "-id")
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    if types:
        qs = qs.filter(type__in=types)
    return list(qs[:limit])


def trait_definitions() -> QuerySet[TraitDefinition]:
    return TraitDefinition.objects.order_by("key")


def customer_counts() -> dict[str, Any]:
    return {
        "customers": Customer.objects.count(),
        "with_email": Customer.objects.exclude(email="").count(),
        "events": Event.objects.count(),
    }


def customer_totals() -> dict[str, int]:
    """Customers and customers with an email address, in one aggregate query."""
    agg = Customer.objects.aggregate(
        customers=Count("id"), with_email=Count("id", filter=~Q(email=""))
    )
    return {"customers": agg["customers"] or 0, "with_email": agg["with_email"] or 0}


def timeline_page(
    *, customer: Customer, limit: int = 20, before_event_id: int | None = None
) -> tuple[list[Event], bool]:
    """One page of the timeline (newest first) and whether older events exist.

    Pages by the (occurred_at, id) keyset of the event `before_event_id`, so events recorded
    late with an earlier `occurred_at` (imports) are neither skipped nor shown twice."""
    qs = customer.events.order_by("-occurred_at", "-id")
    if before_event_id is not None:
        cursor = customer.events.filter(pk=before_event_id).values("occurred_at", "id").first()
        if cursor is None:
            return [], False
        qs = qs.filter(
            Q(occurred_at__lt=cursor["occurred_at"])
            | Q(occurred_at=cursor["occurred_at"], id__lt=cursor["id"])
        )
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit


def event_list(*, customer: Customer, types: list[str] | None = None) -> QuerySet[Event]:
    """A customer's timeline as a queryset, newest first (for page-number pagination)."""
    qs = customer.events.order_by("-occurred_at", "-id")
    if types:
        qs = qs.filter(type__in=types)
    return qs
