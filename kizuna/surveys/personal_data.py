"""A customer's personal data in surveys (kizuna/core/personal_data.py): their responses with
every answer (scores, choices, free text) and the survey invitations they were sent.

Erasure blanks the free text (and its stored terms), drops the chosen answers, and unlinks
the response from the customer: the scores stay, anonymous, so the survey's NPS/CSAT do not
change. Invitations (which survey was sent when) are deleted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register
from kizuna.surveys.models import Answer, Invitation, Response


def _responses_export(customer_id: int) -> Iterable[dict[str, Any]]:
    responses = (
        Response.objects.filter(customer_id=customer_id)
        .select_related("survey")
        .prefetch_related("answers__question")
        .order_by("pk")
    )
    for r in responses:
        yield {
            "id": r.pk,
            "survey_id": r.survey_id,
            "survey": r.survey.title,
            "version": r.version,
            "submitted_at": r.submitted_at.isoformat(),
            "language": r.language,
            "channel": r.channel,
            "nps": r.nps,
            "csat": r.csat,
            "answers": [
                {
                    "question": a.question.key,
                    "question_text": a.question.text,
                    "score": a.score,
                    "choices": a.choices,
                    "text": a.text,
                }
                for a in r.answers.all()
            ],
        }


def _responses_erase(customer_id: int, *, pseudonym: str) -> int:
    ids = list(Response.objects.filter(customer_id=customer_id).values_list("pk", flat=True))
    if not ids:
        return 0
    Answer.objects.filter(response_id__in=ids).update(text="", terms=[], choices=[])
    return Response.objects.filter(pk__in=ids).update(customer=None, invitation=None)


def _invitations_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for inv in Invitation.objects.filter(customer_id=customer_id).order_by("pk"):
        yield {
            "id": inv.pk,
            "survey_id": inv.survey_id,
            "channel": inv.channel,
            "sent_at": inv.sent_at.isoformat(),
            "responded_at": inv.responded_at.isoformat() if inv.responded_at else None,
        }


def _invitations_erase(customer_id: int, *, pseudonym: str) -> int:
    return Invitation.objects.filter(customer_id=customer_id).delete()[0]


register(
    "surveys.response",
    export=_responses_export,
    erase=_responses_erase,
    label=_("Survey answers"),
    order=50,
)
register(
    "surveys.invitation",
    export=_invitations_export,
    erase=_invitations_erase,
    label=_("Survey invitations"),
    order=60,
)
