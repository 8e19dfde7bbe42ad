"""Support inquiries and their threads for data-subject export and erasure
(kizuna/core/personal_data.py). Erasure keeps the inquiries (SLA and KPI figures stay
right) but blanks the contact details, subjects, message texts and attachments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register
from kizuna.support.models import Attachment, Inquiry, Message


def _inquiries(customer_id: int) -> Any:
    return Inquiry.objects.filter(customer_id=customer_id)


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    for inquiry in _inquiries(customer_id).order_by("pk"):
        yield {
            "id": inquiry.pk,
            "reference": inquiry.reply_token,
            "origin": inquiry.origin,
            "subject": inquiry.subject,
            "status": inquiry.status,
            "contact_name": inquiry.contact_name,
            "contact_email": inquiry.contact_email,
            "created_at": inquiry.created_at.isoformat(),
            "messages": [
                {
                    "id": m.pk,
                    "direction": m.direction,
                    "body": m.body,
                    "created_at": m.created_at.isoformat(),
                    "attachments": [a.filename for a in m.attachments.all()],
                }
                # internal notes are staff's own writing about the case, exported too
                for m in inquiry.messages.order_by("pk").prefetch_related("attachments")
            ],
        }


def _erase(customer_id: int, *, pseudonym: str) -> int:
    inquiries = _inquiries(customer_id)
    touched = inquiries.update(
        subject=pseudonym,
        contact_name="",
        contact_email="",
        contact_line_user_id="",
    )
    messages = Message.objects.filter(inquiry__customer_id=customer_id)
    touched += messages.filter(~Q(body="")).update(body="", email_message_id="")
    touched += Attachment.objects.filter(message__inquiry__customer_id=customer_id).delete()[0]
    return touched


register("support.inquiry", export=_export, erase=_erase, label=_("Support inquiries"))
