"""Double opt-in for marketing email (docs/privacy.md, "Double opt-in").

`PRIVACY_DOUBLE_OPT_IN` turns it on: ``True`` for every source, or a list of sources (e.g.
``["portal", "preference_centre", "api"]``); off (``False``) by default. When it applies,
`email_opt_in` does not grant marketing consent: it records a pending `EmailConfirmation`
(and a ``consent.confirmation_requested`` event on the timeline), and sends the customer a
transactional email through messaging with a signed link that expires after
`PRIVACY_DOUBLE_OPT_IN_HOURS` (48). `email_opt_in_confirm` (the portal page behind the link)
grants the consent in the ledger, with the request and both times as its evidence. Until
then the ledger has no granted entry, so messaging sends no marketing email to the person.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from kizuna.core.timeutil import now
from kizuna.customers import services as customer_services
from kizuna.customers.models import ConsentEntry, Customer
from kizuna.messaging import services as messaging_services
from kizuna.messaging.choices import BodyFormat, ChannelKind, Purpose
from kizuna.messaging.links import absolute
from kizuna.messaging.models import Channel, Template
from kizuna.privacy.models import ConfirmationStatus, EmailConfirmation

SALT = "kizuna.privacy.double-opt-in"
TEMPLATE_SLUG = "privacy-email-confirmation"
REQUESTED_EVENT = "consent.confirmation_requested"

_SUBJECT = {
    "ja": "【要確認】メールマガジン登録の確認",
    "en": "Please confirm your subscription",
}
_BODY = {
    "ja": (
        "<p>{{ customer.name }}様</p><p>メールマガジンの配信登録を受け付けました。"
        "下のリンクを開き、登録を確定してください（{{ expires }}まで有効）。</p>"
        '<p><a href="{{ confirm_url }}">登録を確定する</a></p>'
        "<p>お心当たりのない場合は、このメールを破棄してください。登録はされません。</p>"
    ),
    "en": (
        "<p>Dear {{ customer.name }},</p><p>We received a request to send you our newsletter. "
        "Please open the link below to confirm it (valid until {{ expires }}).</p>"
        '<p><a href="{{ confirm_url }}">Confirm my subscription</a></p>'
        "<p>If you did not ask for this, ignore this email: nothing will be sent.</p>"
    ),
}


def required(source: str) -> bool:
    """Whether an email opt-in from `source` must be confirmed by link."""
    setting = getattr(settings, "PRIVACY_DOUBLE_OPT_IN", False)
    if isinstance(setting, list | tuple | set | frozenset):
        return source in setting
    return bool(setting)


def lifetime() -> timedelta:
    return timedelta(hours=int(getattr(settings, "PRIVACY_DOUBLE_OPT_IN_HOURS", 48)))


def token_for(confirmation: EmailConfirmation) -> str:
    return signing.dumps({"e": confirmation.pk}, salt=SALT, compress=True)


def confirmation_url(confirmation: EmailConfirmation) -> str:
    return absolute(reverse("portal:email_confirm", args=[token_for(confirmation)]))


def _template() -> Template:
    template = Template.objects.filter(slug=TEMPLATE_SLUG).first()
    if template is not None:
        return template
    return messaging_services.template_save(
        slug=TEMPLATE_SLUG,
        name="Email subscription confirmation (double opt-in)",
        channel_kind=ChannelKind.EMAIL,
        body_format=BodyFormat.HTML,
        purpose=Purpose.TRANSACTIONAL,
        variants={lang: {"subject": _SUBJECT[lang], "body": _BODY[lang]} for lang in ("ja", "en")},
    )


@transaction.atomic
def email_opt_in(
    *,
    customer: Customer,
    source: str,
    notice_version: str = "",
    evidence: dict[str, Any] | None = None,
    actor: Any = None,
) -> EmailConfirmation | ConsentEntry:
    """The customer asks for marketing email. Without double opt-in for `source` (or when
    they are subscribed already) the ledger's granted entry; with it, the pending
    confirmation, its email queued. Bad input is a ValidationError and writes nothing."""
    errors: dict[str, list[str]] = {}
    if not source or len(source) > 50:
        errors["source"] = [_("A source of 1 to 50 characters is required.")]
    if customer.merged_into_id is not None:
        errors["customer"] = [_("This profile was merged into another one.")]
    if not customer.email:
        errors["email"] = [_("The customer has no email address to confirm.")]
    if evidence is not None and not isinstance(evidence, dict):
        errors["evidence"] = [_("Evidence must be an object.")]
    if errors:
        raise ValidationError(errors)
    current = (
        customer.consents.filter(purpose="marketing", channel__in=["email", "any"])
        .order_by("-recorded_at", "-id")
        .first()
    )
    if current is not None and current.status == "granted":
        return current
    if not required(source):
        return customer_services.consent_record(
            customer=customer,
            purpose="marketing",
            channel="email",
            status="granted",
            source=source,
            notice_version=notice_version,
            evidence=evidence,
            recorded_by=actor,
        )
    channel = Channel.objects.filter(kind=ChannelKind.EMAIL, active=True).order_by("pk").first()
    if channel is None:
        raise ValidationError({"channel": [_("No active email channel sends the confirmation.")]})
    pending = EmailConfirmation.objects.filter(
        customer=customer,
        email=customer.email,
        status=ConfirmationStatus.PENDING,
        expires_at__gt=now(),
    ).first()
    if pending is not None:
        return pending  # one link at a time: the email already sent stays valid
    confirmation = EmailConfirmation.objects.create(
        customer=customer,
        email=customer.email,
        source=source,
        notice_version=notice_version,
        expires_at=now() + lifetime(),
    )
    local = confirmation.expires_at.astimezone()
    delivery, _created = messaging_services.delivery_enqueue(
        source=f"privacy:double-opt-in:{confirmation.pk}",
        customer=customer,
        channel=channel,
        template=_template(),
        extra_context={
            "confirm_url": confirmation_url(confirmation),
            "expires": local.strftime("%Y-%m-%d %H:%M"),
        },
        idempotency_key=f"privacy-double-opt-in:{confirmation.pk}",
        to_address=customer.email,
        actor=actor,
    )
    confirmation.delivery_id = delivery.pk
    confirmation.save(update_fields=["delivery_id"])
    customer_services.event_record(
        type=REQUESTED_EVENT,
        customer=customer,
        source=source,
        properties={
            "purpose": "marketing",
            "channel": "email",
            "confirmation_id": confirmation.pk,
            "delivery_id": delivery.pk,
        },
    )
    return confirmation


def confirmation_from(token: str) -> EmailConfirmation:
    """The confirmation a link names; ValidationError keyed `token` for a forged, altered
    or expired link (an expired one is marked expired)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=lifetime())
    except signing.SignatureExpired:
        data = signing.loads(token, salt=SALT)  # authentic, only too old
        EmailConfirmation.objects.filter(
            pk=data.get("e"), status=ConfirmationStatus.PENDING
        ).update(status=ConfirmationStatus.EXPIRED)
        raise ValidationError({"token": [_("This confirmation link has expired.")]}) from None
    except (signing.BadSignature, ValueError):
        raise ValidationError({"token": [_("This confirmation link is not valid.")]}) from None
    pk = data.get("e") if isinstance(data, dict) else None
    confirmation = (
        EmailConfirmation.objects.select_related("customer").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )
    if confirmation is None:
        raise ValidationError({"token": [_("This confirmation link is not valid.")]})
    return confirmation


@transaction.atomic
def email_opt_in_confirm(
    *, token: str, evidence: dict[str, Any] | None = None
) -> EmailConfirmation:
    """The customer opened the link and confirmed: marketing email consent granted in the
    ledger (source ``double_opt_in``, evidence naming the request and both times). A second
    confirmation changes nothing."""
    found = confirmation_from(token)
    confirmation = EmailConfirmation.objects.select_for_update().get(pk=found.pk)
    if confirmation.status == ConfirmationStatus.CONFIRMED:
        return confirmation
    moment = now()
    if confirmation.status == ConfirmationStatus.EXPIRED or confirmation.expires_at <= moment:
        EmailConfirmation.objects.filter(pk=confirmation.pk).update(
            status=ConfirmationStatus.EXPIRED
        )
        raise ValidationError({"token": [_("This confirmation link has expired.")]})
    customer = found.customer
    if customer.email != confirmation.email:
        raise ValidationError({"token": [_("The email address has changed since this link.")]})
    entry = customer_services.consent_record(
        customer=customer,
        purpose="marketing",
        channel="email",
        status="granted",
        source="double_opt_in",
        notice_version=confirmation.notice_version,
        evidence={
            **(evidence or {}),
            "confirmation_id": confirmation.pk,
            "requested_source": confirmation.source,
            "requested_at": confirmation.requested_at.isoformat(),
            "confirmed_at": moment.isoformat(),
            "delivery_id": confirmation.delivery_id,
        },
        recorded_at=moment,
    )
    confirmation.status = ConfirmationStatus.CONFIRMED
    confirmation.confirmed_at = moment
    confirmation.consent_entry_id = entry.pk
    confirmation.save(update_fields=["status", "confirmed_at", "consent_entry_id"])
    return confirmation


def pending_for(customer: Customer) -> EmailConfirmation | None:
    return (
        EmailConfirmation.objects.filter(customer=customer, status=ConfirmationStatus.PENDING)
        .order_by("-requested_at")
        .first()
    )
