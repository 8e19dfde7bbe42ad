"""The customer profile, identities, consent ledger, events and merges, for data-subject
export and erasure (contract: kizuna/core/personal_data.py). Added by the privacy work."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.customers.choices import Gender
from kizuna.customers.models import ConsentEntry, Customer, CustomerMerge, Event, Identity

_PROFILE_BLANK: dict[str, Any] = {
    "family_name": "",
    "given_name": "",
    "family_name_kana": "",
    "given_name_kana": "",
    "email": "",
    "phone": "",
    "birthday": None,
    "gender": Gender.UNSPECIFIED,
    "postal_code": "",
    "city": "",
    "address_line": "",
    "traits": {},
}


def _profile_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(c) for c in Customer.objects.filter(pk=customer_id)]


def _profile_erase(customer_id: int, *, pseudonym: str) -> int:
    # Prefecture, language and time zone stay: coarse, and the aggregates are cut by them.
    return Customer.objects.filter(pk=customer_id).update(**_PROFILE_BLANK)


def _identity_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(i) for i in Identity.objects.filter(customer_id=customer_id).order_by("pk")]


def _identity_erase(customer_id: int, *, pseudonym: str) -> int:
    deleted, _per_model = Identity.objects.filter(customer_id=customer_id).delete()
    return deleted


def _consent_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = ConsentEntry.objects.filter(customer_id=customer_id).order_by("recorded_at", "pk")
    return [row_dict(e) for e in rows]


def _consent_erase(customer_id: int, *, pseudonym: str) -> int:
    # The decisions stay (proof of what was allowed when); their evidence (IP, form) goes.
    return ConsentEntry.objects.filter(customer_id=customer_id).update(evidence={})


def _event_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for event in Event.objects.filter(customer_id=customer_id).order_by("occurred_at", "pk"):
        yield row_dict(event)


def _event_erase(customer_id: int, *, pseudonym: str) -> int:
    # Type and time stay (counts and funnels); properties, context and device ids go.
    return Event.objects.filter(customer_id=customer_id).update(
        properties={}, context={}, anonymous_id=""
    )


def _merge_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = CustomerMerge.objects.filter(Q(survivor_id=customer_id) | Q(merged_id=customer_id))
    return [row_dict(m) for m in rows.order_by("pk")]


def _merge_erase(customer_id: int, *, pseudonym: str) -> int:
    rows = CustomerMerge.objects.filter(Q(survivor_id=customer_id) | Q(merged_id=customer_id))
    return rows.update(snapshot={}, reason="")


register("customers.event", export=_event_export, erase=_event_erase, label=_("Events"))
register("customers.consent", export=_consent_export, erase=_consent_erase, label=_("Consents"))
register("customers.merge", export=_merge_export, erase=_merge_erase, label=_("Profile merges"))
register(
    "customers.identity",
    export=_identity_export,
    erase=_identity_erase,
    label=_("Identities"),
    order=900,
)
register(
    "customers.profile",
    export=_profile_export,
    erase=_profile_erase,
    label=_("Profile"),
    order=1000,
)
