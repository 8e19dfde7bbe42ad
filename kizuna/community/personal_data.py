"""A customer's personal data in the community (kizuna/core/personal_data.py): event
registrations, ideas they posted (free text), their votes and comments (free text).

Erasure: registrations are deleted (attendance counts are not kept per person); ideas keep
their votes but lose their author, title and text (replaced by the pseudonym / blanked);
votes are deleted (the idea's vote count keeps the number); comments are blanked, hidden
and unlinked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.community.models import Idea, IdeaComment, IdeaVote, Registration
from kizuna.core.personal_data import register, row_dict


def _registrations_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = Registration.objects.filter(customer_id=customer_id).select_related("event")
    for r in rows.order_by("pk"):
        yield {**row_dict(r), "event": r.event.title}


def _registrations_erase(customer_id: int, *, pseudonym: str) -> int:
    return Registration.objects.filter(customer_id=customer_id).delete()[0]


def _ideas_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for idea in Idea.objects.filter(author_id=customer_id).order_by("pk"):
        yield row_dict(idea)


def _ideas_erase(customer_id: int, *, pseudonym: str) -> int:
    return Idea.objects.filter(author_id=customer_id).update(
        author=None, title=pseudonym[:120], body="", staff_note=""
    )


def _votes_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for vote in IdeaVote.objects.filter(customer_id=customer_id).order_by("pk"):
        yield row_dict(vote)


def _votes_erase(customer_id: int, *, pseudonym: str) -> int:
    return IdeaVote.objects.filter(customer_id=customer_id).delete()[0]


def _comments_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for comment in IdeaComment.objects.filter(customer_id=customer_id).order_by("pk"):
        yield row_dict(comment)


def _comments_erase(customer_id: int, *, pseudonym: str) -> int:
    return IdeaComment.objects.filter(customer_id=customer_id).update(
        customer=None, body="", hidden=True
    )


register(
    "community.registration",
    export=_registrations_export,
    erase=_registrations_erase,
    label=_("Event registrations"),
)
register("community.idea", export=_ideas_export, erase=_ideas_erase, label=_("Ideas posted"))
register("community.vote", export=_votes_export, erase=_votes_erase, label=_("Idea votes"))
register(
    "community.comment", export=_comments_export, erase=_comments_erase, label=_("Idea comments")
)
