"""Signed per-customer survey links (the same approach as the member portal's links: Django's
signer with the site's secret and a salt of its own; no password, no staff session).

The token names an `Invitation` (one per survey and customer), so a link works for that
customer and survey only, and answering marks the invitation used: a replayed link is then
refused with a clear message (see `services.response_submit`).

Messages reach the link through the messaging context key `surveys`, registered by messaging
(`kizuna/messaging/apps.py`): in a template, `{{ surveys["nps-2026"] }}` (or
`{{ surveys.nps_2026 }}` for a slug without hyphens) is the absolute URL of that survey for
the message's customer, creating the invitation (the response rate's denominator) the first
time it is rendered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.surveys.models import Invitation, Survey, SurveyStatus

SALT = "kizuna.surveys.invitation"
MAX_AGE = 60 * 60 * 24 * 180  # 180 days; a closed survey refuses answers anyway


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "s": invitation.survey_id}, salt=SALT, compress=True)


def invitation_from(token: str, *, max_age: int = MAX_AGE) -> Invitation | None:
    """The invitation a token names, or None (bad signature, expired, unknown)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict):
        return None
    invitation_id, survey_id = data.get("i"), data.get("s")
    if not isinstance(invitation_id, int) or not isinstance(survey_id, int):
        return None
    return (
        Invitation.objects.select_related("survey", "customer")
        .filter(pk=invitation_id, survey_id=survey_id)
        .first()
    )


def invitation_for(*, survey: Survey, customer: Customer, channel: str = "") -> Invitation:
    """The customer's invitation to `survey` (created, and counted as sent, the first time)."""
    existing = Invitation.objects.filter(survey=survey, customer=customer).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Invitation.objects.create(
                survey=survey, customer=customer, channel=channel[:20], sent_at=now()
            )
    except IntegrityError:
        return Invitation.objects.get(survey=survey, customer=customer)


def survey_path(survey: Survey, customer: Customer, *, channel: str = "") -> str:
    invitation = invitation_for(survey=survey, customer=customer, channel=channel)
    return reverse("portal:survey_answer", args=[invitation_token(invitation)])


def survey_url(survey: Survey, customer: Customer, *, channel: str = "") -> str:
    """The absolute signed link of `survey` for `customer` (KIZUNA_PUBLIC_URL + path)."""
    return settings.KIZUNA_PUBLIC_URL + survey_path(survey, customer, channel=channel)


def public_url(survey: Survey) -> str:
    """The anonymous link (surveys that allow anonymous answers)."""
    return settings.KIZUNA_PUBLIC_URL + reverse("portal:survey_public", args=[survey.slug])


class SurveyLinks(Mapping[str, str]):
    """The `surveys` template context: a mapping from an open survey's slug (or the slug with
    "-" replaced by "_") to the customer's link, resolved lazily so only the surveys a
    template names get an invitation. Not a dict, so context copies keep it lazy."""

    def __init__(self, customer: Customer, channel: str = "") -> None:
        self._customer = customer
        self._channel = channel
        self._resolved: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key in self._resolved:
            return self._resolved[key]
        survey = (
            Survey.objects.filter(status=SurveyStatus.OPEN, slug__in={key, key.replace("_", "-")})
            .order_by("id")
            .first()
        )
        if survey is None:
            raise KeyError(key)
        url = survey_url(survey, self._customer, channel=self._channel)
        self._resolved[key] = url
        return url

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._resolved))

    def __len__(self) -> int:
        return len(self._resolved)


def template_links(customer: Customer) -> SurveyLinks:
    """Messaging context provider for the key `surveys`."""
    return SurveyLinks(customer)
