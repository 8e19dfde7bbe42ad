"""A customer's personal data in accounts (kizuna/core/personal_data.py): their contact
roles at accounts, activities logged on them (free text), deals naming them as the contact
and their service level. Erasure blanks the free text and unlinks them; amounts stay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.accounts.models import AccountContact, Activity, CustomerCare, Deal
from kizuna.core.personal_data import register, row_dict


def _contacts_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for link in AccountContact.objects.filter(customer_id=customer_id).select_related("account"):
        yield {**row_dict(link), "account_name": link.account.name}


def _contacts_erase(customer_id: int, *, pseudonym: str) -> int:
    return AccountContact.objects.filter(customer_id=customer_id).delete()[0]


def _activities_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for activity in Activity.objects.filter(customer_id=customer_id).order_by("pk"):
        yield row_dict(activity)


def _activities_erase(customer_id: int, *, pseudonym: str) -> int:
    return (
        Activity.objects.filter(customer_id=customer_id)
        .exclude(subject=pseudonym, body="")
        .update(subject=pseudonym, body="")
    )


def _deals_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for deal in Deal.objects.filter(contact_id=customer_id).order_by("pk"):
        yield row_dict(deal)


def _deals_erase(customer_id: int, *, pseudonym: str) -> int:
    return Deal.objects.filter(contact_id=customer_id).update(contact=None)


def _care_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(c) for c in CustomerCare.objects.filter(customer_id=customer_id)]


def _care_erase(customer_id: int, *, pseudonym: str) -> int:
    return CustomerCare.objects.filter(customer_id=customer_id).delete()[0]


register(
    "accounts.contact", export=_contacts_export, erase=_contacts_erase, label=_("Account contacts")
)
register(
    "accounts.activity",
    export=_activities_export,
    erase=_activities_erase,
    label=_("Calls, meetings, tasks and notes"),
)
register("accounts.deal", export=_deals_export, erase=_deals_erase, label=_("Deals as contact"))
register("accounts.care", export=_care_export, erase=_care_erase, label=_("Service level"))
