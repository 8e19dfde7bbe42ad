"""Cross-cutting personal data for erasure (kizuna/core/personal_data.py): the audit log's
copies of personal values, and the notes on this customer's own requests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.customers.models import Customer, Identity
from kizuna.privacy.models import DataSubjectRequest, EmailConfirmation


def _needles(customer_id: int) -> set[str]:
    """The strings that identify the customer, as stored in text and in JSON."""
    values: set[str] = set()
    for row in Customer.objects.filter(pk=customer_id).values(
        "family_name", "given_name", "family_name_kana", "given_name_kana", "email", "phone"
    ):
        values.update(str(v) for v in row.values() if v)
        full = f"{row['family_name']} {row['given_name']}".strip()
        if " " in full:
            values.add(full)
    values.update(Identity.objects.filter(customer_id=customer_id).values_list("value", flat=True))
    out: set[str] = set()
    for value in values:
        if len(value) < 2:
            continue
        out.add(value)
        escaped = json.dumps(value)[1:-1]  # JSON text may escape non-ASCII characters
        if escaped != value:
            out.add(escaped)
    return out


def _audit_export(customer_id: int) -> Iterable[dict[str, Any]]:
    ct = ContentType.objects.get_for_model(Customer)
    rows = LogEntry.objects.filter(content_type=ct, object_pk=str(customer_id)).order_by("pk")
    return [row_dict(e, exclude=("remote_addr", "remote_port", "cid", "actor_email")) for e in rows]


def _audit_erase(customer_id: int, *, pseudonym: str) -> int:
    """Blank the object text and change values of every audit entry about the profile or
    its identities, or that quotes the customer's name or identifiers."""
    match = Q(content_type=ContentType.objects.get_for_model(Customer), object_pk=str(customer_id))
    identity_pks = [
        str(pk)
        for pk in Identity.objects.filter(customer_id=customer_id).values_list("pk", flat=True)
    ]
    if identity_pks:
        match |= Q(
            content_type=ContentType.objects.get_for_model(Identity), object_pk__in=identity_pks
        )
    for needle in _needles(customer_id):
        match |= (
            Q(object_repr__contains=needle)
            | Q(changes_text__contains=needle)
            | Q(changes__icontains=needle)
            | Q(serialized_data__icontains=needle)
        )
    return LogEntry.objects.filter(match).update(
        object_repr=pseudonym,
        changes={},
        changes_text="",
        serialized_data=None,
        additional_data=None,
    )


def _requests_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = DataSubjectRequest.objects.filter(customer_id=customer_id).order_by("pk")
    return [row_dict(r) for r in rows]


def _requests_erase(customer_id: int, *, pseudonym: str) -> int:
    return (
        DataSubjectRequest.objects.filter(customer_id=customer_id).exclude(note="").update(note="")
    )


register("privacy.audit", export=_audit_export, erase=_audit_erase, label=_("Audit log"), order=0)
register(
    "privacy.request", export=_requests_export, erase=_requests_erase, label=_("Privacy requests")
)


def _confirmations_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = EmailConfirmation.objects.filter(customer_id=customer_id).order_by("pk")
    return [row_dict(r) for r in rows]


def _confirmations_erase(customer_id: int, *, pseudonym: str) -> int:
    # The consent ledger keeps the proof (its entry names the confirmation's id and times).
    return EmailConfirmation.objects.filter(customer_id=customer_id).delete()[0]


register(
    "privacy.email_confirmation",
    export=_confirmations_export,
    erase=_confirmations_erase,
    label=_("Email confirmations (double opt-in)"),
)
