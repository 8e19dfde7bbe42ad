"""Writes of the messaging layer: channels, templates, deliveries and their sending, the
suppression list, tracking (opens, clicks, unsubscribes, bounces), LINE contacts and the
preference centre.

Sending is exactly-once where the provider allows it and at-most-once where it cannot:
a delivery is claimed (committed as `sending`) before the provider is called and marked
`sent` right after. A worker that dies in between leaves the claim behind; on restart, LINE
and webhook deliveries are sent again with the same retry/idempotency key (LINE answers 409
for a duplicate), and email deliveries become `unknown` — SMTP has no way to ask whether a
message was accepted, and sending it again could deliver it twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from jinja2 import meta

from kizuna.core.audit import acting_as
from kizuna.core.bulk import datetime_adapter, json_adapter, table_insert
from kizuna.core.timeutil import now
from kizuna.customers import selectors as customer_selectors
from kizuna.customers import services as customer_services
from kizuna.customers.choices import ConsentStatus, IdentityKind
from kizuna.customers.models import ConsentEntry, Customer, Identity
from kizuna.messaging import (
    breaker,
    crypto,
    engagement,
    guardrails,
    journal,
    lanes,
    links,
    rendering,
)
from kizuna.messaging import context as message_context
from kizuna.messaging.channels import ChannelConfigError, OutboundMessage, Outcome, open_session
from kizuna.messaging.choices import (
    BodyFormat,
    BounceKind,
    BreakerState,
    ChannelKind,
    EngagementKind,
    Frequency,
    Lane,
    Purpose,
    Status,
    SuppressionReason,
)
from kizuna.messaging.models import (
    BounceEvent,
    Channel,
    Delivery,
    DeliveryStatus,
    Engagement,
    LineContact,
    LineLinkCode,
    Preference,
    SendHold,
    Suppression,
    Template,
    TemplateVariant,
)

logger = logging.getLogger(__name__)
LINE_EVENT_NAMES = {"follow": "followed", "unfollow": "unfollowed", "accountLink": "account_link"}
MAX_ATTEMPTS = 6
BATCH = 50  # deliveries per worker task (transactional and journey lanes)
# Deliveries per bulk-lane task: what a task pays once (its database connection, the SMTP
# session, the batch's consent / suppression / frequency facts, the template) is shared by
# 200 messages. Claims and outcomes still go in groups (`lanes.send_group`), and holds are
# re-read between groups, so neither crash exposure nor pause latency grows with it.
BULK_BATCH = 200


def task_size(lane: str) -> int:
    return BULK_BATCH if lane == Lane.BULK else BATCH


# A channel that keeps failing (its breaker open) defers its deliveries without spending
# their attempts; after this long they fail with the channel's last error.
CHANNEL_GIVE_UP = timedelta(hours=24)
CIRCUIT_REASON = "circuit open"
CHANNEL_REASON = "channel: "
BACKOFF_BASE_SECONDS = 30
STALE_CLAIM = timedelta(minutes=15)
LINK_CODE_TTL = timedelta(minutes=30)
INTERESTS_TRAIT = "interests"
# Providers whose retries are deduplicated on their side (retry key / idempotency key).
IDEMPOTENT_KINDS = {ChannelKind.LINE, ChannelKind.WEBHOOK}
EVENT_PREFIX = {
    ChannelKind.EMAIL: "email",
    ChannelKind.LINE: "line",
    ChannelKind.WEBHOOK: "webhook",
}

_FORMATS_BY_KIND = {
    ChannelKind.EMAIL: {BodyFormat.MJML, BodyFormat.HTML},
    ChannelKind.LINE: {BodyFormat.TEXT, BodyFormat.FLEX, BodyFormat.IMAGE},
    ChannelKind.WEBHOOK: {BodyFormat.JSON},
}
_REQUIRED_SETTINGS = {
    ChannelKind.EMAIL: ("host", "from_address"),
    ChannelKind.LINE: (),
    ChannelKind.WEBHOOK: ("url",),
}
_ALLOWED_SETTINGS = {
    ChannelKind.EMAIL: {
        "host",
        "port",
        "security",
        "timeout",
        "from_address",
        "from_name",
        "reply_to",
        "physical_address",
        "contact",
        "charset",
        "dkim_selector",
        "dkim_domain",
        "bounce_domain",
        "helo",
        "rate_per_second",
        "domain_rates",
    },
    ChannelKind.LINE: {"host", "provider_id", "timeout", "rate_per_second"},
    ChannelKind.WEBHOOK: {"url", "timeout", "rate_per_second"},
}
_ALLOWED_SECRETS = {
    ChannelKind.EMAIL: {"username", "password", "dkim_private_key", "inbound_token"},
    ChannelKind.LINE: {"access_token", "channel_secret"},
    ChannelKind.WEBHOOK: {"secret"},
}


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _history(delivery: Delivery, status: str, reason: str = "", **detail: Any) -> None:
    DeliveryStatus.objects.create(
        delivery=delivery, status=status, reason=reason[:300], detail=detail, at=now()
    )


# --- channels -----------------------------------------------------------------------------


def _clean_channel(
    kind: str, settings_in: dict[str, Any], credentials: dict[str, Any]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if kind not in ChannelKind.values:
        errors["kind"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ChannelKind.values)}]
        return errors
    unknown = set(settings_in) - _ALLOWED_SETTINGS[ChannelKind(kind)]
    for key in sorted(unknown):
        errors[f"settings.{key}"] = [_("Unknown setting.")]
    for key in sorted(set(credentials) - _ALLOWED_SECRETS[ChannelKind(kind)]):
        errors[f"credentials.{key}"] = [_("Unknown credential.")]
    for key in _REQUIRED_SETTINGS[ChannelKind(kind)]:
        if not settings_in.get(key):
            errors[f"settings.{key}"] = [_("This setting is required.")]
    if kind == ChannelKind.EMAIL:
        charset = str(settings_in.get("charset") or "utf-8").lower()
        if charset not in ("utf-8", "iso-2022-jp"):
            errors["settings.charset"] = [_("Choose utf-8 or iso-2022-jp.")]
        if settings_in.get("security", "none") not in ("none", "starttls", "tls"):
            errors["settings.security"] = [_("Choose none, starttls or tls.")]
        if "@" not in str(settings_in.get("from_address", "@")):
            errors["settings.from_address"] = [_("Enter an email address.")]
    errors.update(_clean_rates(settings_in))
    if kind == ChannelKind.LINE:
        host = str(settings_in.get("host") or "")
        if host and not host.startswith(("https://", "http://127.", "http://localhost")):
            errors["settings.host"] = [_("The API host must be an https:// URL.")]
    return errors


def _positive(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def _clean_rates(settings_in: dict[str, Any]) -> dict[str, list[str]]:
    """rate_per_second: a number > 0; domain_rates: {"example.jp": 20, "*": 100}."""
    errors: dict[str, list[str]] = {}
    for key in ("rate_per_second", "timeout"):
        if key in settings_in and not _positive(settings_in[key]):
            errors[f"settings.{key}"] = [_("Enter a number greater than 0.")]
    rates = settings_in.get("domain_rates")
    if rates is not None and not (
        isinstance(rates, dict)
        and all(isinstance(k, str) and k and _positive(v) for k, v in rates.items())
    ):
        errors["settings.domain_rates"] = [
            _('An object of domain → messages per second, e.g. {"example.jp": 20, "*": 100}.')
        ]
    return errors


@transaction.atomic
def channel_save(
    *,
    kind: str,
    name: str,
    settings: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    active: bool = True,
    channel: Channel | None = None,
    actor: AbstractBaseUser | None = None,
) -> Channel:
    """Create or update a channel. Credentials given replace the stored ones key by key;
    a key given as an empty string is removed; the others are kept (never shown again)."""
    credentials = {k: v for k, v in (credentials or {}).items() if v is not None}
    existing = crypto.decrypt(channel.credentials_encrypted) if channel else {}
    merged = {**existing, **credentials}
    merged = {k: v for k, v in merged.items() if v != ""}
    settings = {k: v for k, v in settings.items() if v not in (None, "")}
    errors = _clean_channel(kind, settings, credentials)
    if not name or len(name) > 100:
        errors["name"] = [_("A name of 1 to 100 characters is required.")]
    elif Channel.objects.filter(name=name).exclude(pk=channel.pk if channel else 0).exists():
        errors["name"] = [_("Another channel has this name.")]
    if kind == ChannelKind.LINE and not merged.get("access_token"):
        errors["credentials.access_token"] = [_("The channel access token is required.")]
    if kind == ChannelKind.WEBHOOK and not merged.get("secret"):
        errors["credentials.secret"] = [_("A signing secret is required.")]
    _raise(errors)
    with acting_as(actor):
        if channel is None:
            channel = Channel(kind=kind)
        channel.name = name
        channel.settings = settings
        channel.active = active
        channel.credentials_encrypted = crypto.encrypt(merged)
        channel.save()
    return channel


def channel_secret_keys(channel: Channel) -> list[str]:
    """Which credentials are stored (names only, for the console)."""
    return sorted(crypto.decrypt(channel.credentials_encrypted))


# --- templates ----------------------------------------------------------------------------


def _check_variant(body_format: str, subject: str, body: str) -> dict[str, str]:
    """Compile a variant; {part: 'line N: message'} for each part that does not."""
    problems: dict[str, str] = {}
    try:
        rendering.compile_template(subject, "subject", False)
    except rendering.RenderError as exc:
        problems["subject"] = str(exc)
    try:
        if body_format in (BodyFormat.MJML, BodyFormat.HTML):
            rendering.compile_template(rendering.email_body_source(body, body_format), "body", True)
        else:
            rendering.compile_template(body, "body", False)
    except rendering.RenderError as exc:
        problems["body"] = str(exc)
    return problems


@transaction.atomic
def template_save(
    *,
    slug: str,
    name: str,
    channel_kind: str,
    body_format: str,
    variants: dict[str, dict[str, str]],
    purpose: str = Purpose.MARKETING,
    topic: str = "",
    template: Template | None = None,
    actor: AbstractBaseUser | None = None,
) -> Template:
    """Create or update a template and its per-locale variants ({"ja": {"subject", "body"}}).

    A variant that does not compile is an error keyed `variants.<locale>.<part>` naming the
    line; nothing is saved then."""
    errors: dict[str, list[str]] = {}
    if channel_kind not in ChannelKind.values:
        errors["channel_kind"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ChannelKind.values)}]
    elif body_format not in _FORMATS_BY_KIND[ChannelKind(channel_kind)]:
        allowed = ", ".join(sorted(_FORMATS_BY_KIND[ChannelKind(channel_kind)]))
        errors["body_format"] = [_("Choose one of: %(c)s.") % {"c": allowed}]
    if purpose not in Purpose.values:
        errors["purpose"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Purpose.values)}]
    if (
        not slug
        or Template.objects.filter(slug=slug).exclude(pk=template.pk if template else 0).exists()
    ):
        errors["slug"] = [_("A unique key is required.")]
    if not name:
        errors["name"] = [_("A name is required.")]
    if not variants:
        errors["variants"] = [_("At least one language variant is required.")]
    for locale, parts in variants.items():
        if locale not in ("ja", "en"):
            errors[f"variants.{locale}"] = [_("Choose ja or en.")]
            continue
        if not (parts.get("body") or "").strip():
            errors[f"variants.{locale}.body"] = [_("The body is required.")]
            continue
        if "errors" not in errors and body_format in BodyFormat.values:
            for part, problem in _check_variant(
                body_format, parts.get("subject", ""), parts["body"]
            ).items():
                errors[f"variants.{locale}.{part}"] = [problem]
    _raise(errors)
    with acting_as(actor):
        if template is None:
            template = Template()
        template.slug, template.name = slug, name
        template.channel_kind, template.body_format = channel_kind, body_format
        template.purpose, template.topic = purpose, topic
        template.save()
        for locale, parts in variants.items():
            TemplateVariant.objects.update_or_create(
                template=template,
                locale=locale,
                defaults={"subject": parts.get("subject", ""), "body": parts["body"]},
            )
    return template


def _variant_for(template: Template, locale: str) -> TemplateVariant:
    variants = {v.locale: v for v in template.variants.all()}
    for candidate in (locale, "ja", "en"):
        if candidate in variants:
            return variants[candidate]
    raise rendering.RenderError("the template has no variant", part="body")


@functools.lru_cache(maxsize=512)
def _needed_keys(*sources: str) -> frozenset[str]:
    env = rendering.environment(False)
    keys: set[str] = set()
    for source in sources:
        try:
            keys |= meta.find_undeclared_variables(env.parse(source))
        except Exception:  # noqa: S112  (a syntax error is reported by the render itself)
            continue
    return frozenset(keys)


def render_for(
    *,
    template: Template,
    customer: Customer,
    extra: dict[str, Any] | None = None,
    locale: str | None = None,
    delivery_id: int | None = None,
    channel: Channel | None = None,
) -> rendering.Rendered:
    """Render a template for one customer (preview, test send, delivery). RenderError names
    the part and line."""
    variant = _variant_for(template, locale or customer.locale)
    return render_draft(
        template=template,
        subject=variant.subject,
        body=variant.body,
        customer=customer,
        extra=extra,
        delivery_id=delivery_id,
        channel=channel,
    )


def render_draft(
    *,
    template: Template,
    subject: str,
    body: str,
    customer: Customer,
    extra: dict[str, Any] | None = None,
    delivery_id: int | None = None,
    channel: Channel | None = None,
) -> rendering.Rendered:
    """Render a subject and body (saved or still in the editor) for one customer."""
    keys = _needed_keys(subject, body)
    context = message_context.build(customer, extra, keys=keys)
    urls = {
        "preferences": links.preferences_url(customer.pk),
        "unsubscribe": links.unsubscribe_url(delivery_id) if delivery_id else "#",
    }
    context["links"] = dict(urls)
    result = rendering.render(
        body_format=template.body_format, subject=subject, body=body, context=context
    )
    if template.channel_kind == ChannelKind.EMAIL and result.html:
        marketing = template.purpose == Purpose.MARKETING
        result = _finish_email(result, channel, customer, delivery_id, urls, marketing=marketing)
    return result


@transaction.atomic
def test_send(
    *,
    template: Template,
    channel: Channel,
    customer: Customer,
    to_address: str,
    actor: AbstractBaseUser | None = None,
) -> Delivery:
    """Send the template, rendered for `customer`, to a staff address (not the customer's).
    Guardrails do not apply: the recipient is the member of staff who asked."""
    to_address = to_address.strip()
    if not to_address or (channel.kind == ChannelKind.EMAIL and "@" not in to_address):
        raise ValidationError({"to": [_("Enter the address to send the test to.")]})
    delivery, _created = delivery_enqueue(
        source=f"test:{secrets.token_hex(6)}",
        customer=customer,
        channel=channel,
        template=template,
        to_address=to_address,
        actor=actor,
    )
    return delivery


def _footer(channel: Channel | None, customer: Customer, urls: dict[str, str]) -> tuple[str, str]:
    """The sender identity, physical address and opt-out method every marketing email shows
    (特定電子メール法)."""
    s = channel.settings if channel else {}
    unsub, prefs = urls["unsubscribe"], urls["preferences"]
    lines = [
        str(s.get("from_name", "")),
        str(s.get("physical_address", "")),
        str(s.get("contact") or s.get("from_address", "")),
    ]
    label_unsub = _("Unsubscribe") if customer.locale == "en" else "配信停止"
    label_prefs = _("Email preferences") if customer.locale == "en" else "配信設定"
    from markupsafe import escape

    html = (
        '<div class="kizuna-footer" style="font-size:12px;color:#666;padding:16px">'
        + "<br>".join(str(escape(x)) for x in lines if x)
        + f'<br><a href="{escape(unsub)}">{escape(label_unsub)}</a> | '
        f'<a href="{escape(prefs)}">{escape(label_prefs)}</a></div>'
    )
    text = "\n".join(x for x in lines if x) + f"\n{label_unsub}: {unsub}\n{label_prefs}: {prefs}\n"
    return html, text


def _finish_email(
    result: rendering.Rendered,
    channel: Channel | None,
    customer: Customer,
    delivery_id: int | None,
    urls: dict[str, str],
    *,
    marketing: bool,
) -> rendering.Rendered:
    html, text = result.html, result.text
    if marketing:
        footer_html, footer_text = _footer(channel, customer, urls)
        html = (
            html.replace("</body>", footer_html + "</body>")
            if "</body>" in html
            else html + footer_html
        )
        text = text + "\n--\n" + footer_text
    if delivery_id is not None:
        html = rendering.rewrite_links(html, lambda url: links.click_url(delivery_id, url))
        pixel = f'<img src="{links.open_url(delivery_id)}" width="1" height="1" alt="">'
        html = html.replace("</body>", pixel + "</body>") if "</body>" in html else html + pixel
    return rendering.Rendered(subject=result.subject, html=html, text=text)


# --- deliveries ---------------------------------------------------------------------------


def _idempotency_key(
    source: str, customer_id: int, channel_id: int, template_id: int, variant: str
) -> str:
    raw = f"{source}|{customer_id}|{channel_id}|{template_id}|{variant}"
    return "d_" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def _enqueue_on_commit(ids: list[int], lane: str) -> None:
    """Wake the lane's workers for these deliveries once the transaction commits."""

    def wake(chunk: list[int]) -> None:
        transaction.on_commit(lambda: lanes.enqueue(lane, chunk))

    size = task_size(lane)
    for start in range(0, len(ids), size):
        wake(ids[start : start + size])


def enqueue_now(ids_by_lane: dict[str, list[int]], delay: float | None = None) -> None:
    for lane, ids in ids_by_lane.items():
        size = task_size(lane)
        for start in range(0, len(ids), size):
            lanes.enqueue(lane, ids[start : start + size], delay=delay)


@transaction.atomic
def delivery_enqueue(
    *,
    source: str,
    customer: Customer,
    channel: Channel,
    template: Template,
    extra_context: dict[str, Any] | None = None,
    variant: str = "",
    idempotency_key: str | None = None,
    to_address: str = "",
    actor: AbstractBaseUser | None = None,
) -> tuple[Delivery, bool]:
    """Queue one message; returns (delivery, created). The same idempotency key (given, or
    derived from source + customer + channel + template + variant) returns the first row."""
    errors: dict[str, list[str]] = {}
    if not source or len(source) > 120:
        errors["source"] = [_("A source of 1 to 120 characters is required.")]
    if template.channel_kind != channel.kind:
        errors["channel"] = [_("This template is for another kind of channel.")]
    if extra_context is not None and not isinstance(extra_context, dict):
        errors["extra_context"] = [_("Must be an object.")]
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 120):
        errors["idempotency_key"] = [_("1 to 120 characters.")]
    _raise(errors)
    key = idempotency_key or _idempotency_key(source, customer.pk, channel.pk, template.pk, variant)
    existing = Delivery.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic(), acting_as(actor):
            delivery = Delivery.objects.create(
                idempotency_key=key,
                source=source,
                customer=customer,
                channel=channel,
                template=template,
                locale=customer.locale,
                variant=variant,
                purpose=template.purpose,
                topic=template.topic,
                lane=lanes.lane_for(source, template.purpose),
                extra_context=extra_context or {},
                to_address=to_address,
            )
            _history(delivery, Status.QUEUED)
    except IntegrityError:
        return Delivery.objects.get(idempotency_key=key), False
    _enqueue_on_commit([delivery.pk], delivery.lane)
    return delivery, True


@transaction.atomic
def delivery_enqueue_many(
    *, source: str, customer_ids: Iterable[int], channel: Channel, template: Template
) -> int:
    """Queue one message per customer in bulk (campaigns, benchmarks); existing keys are
    skipped. Returns how many were queued."""
    if template.channel_kind != channel.kind:
        raise ValidationError({"channel": [_("This template is for another kind of channel.")]})
    locales = dict(Customer.objects.filter(pk__in=list(customer_ids)).values_list("pk", "locale"))
    keys = {cid: _idempotency_key(source, cid, channel.pk, template.pk, "") for cid in locales}
    taken = set(
        Delivery.objects.filter(idempotency_key__in=list(keys.values())).values_list(
            "idempotency_key", flat=True
        )
    )
    lane = lanes.lane_for(source, template.purpose)
    rows = [
        Delivery(
            idempotency_key=key,
            source=source,
            customer_id=cid,
            channel=channel,
            template=template,
            locale=locales[cid],
            purpose=template.purpose,
            topic=template.topic,
            lane=lane,
        )
        for cid, key in keys.items()
        if key not in taken
    ]
    Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    created = list(
        Delivery.objects.filter(
            idempotency_key__in=[r.idempotency_key for r in rows], status=Status.QUEUED
        ).values_list("pk", flat=True)
    )
    at = now()
    DeliveryStatus.objects.bulk_create(
        [DeliveryStatus(delivery_id=pk, status=Status.QUEUED, at=at) for pk in created],
        batch_size=500,
    )
    _enqueue_on_commit(sorted(created), lane)
    return len(created)


@dataclass(frozen=True)
class QueuedMessage:
    """One message of a keyed bulk enqueue: its customer, its own idempotency key and its
    template context."""

    customer: Customer
    idempotency_key: str
    extra_context: dict[str, Any] = field(default_factory=dict)


@transaction.atomic
def delivery_enqueue_keyed(
    *, source: str, channel: Channel, template: Template, messages: list[QueuedMessage]
) -> dict[str, tuple[int, bool]]:
    """Queue many messages at once, each under its own idempotency key (journeys: one key per
    step attempt, so re-entries of one customer stay apart). Returns key -> (delivery id,
    created); a key that exists returns its first row, as `delivery_enqueue` does. The rows
    and their `queued` history are bulk inserts and the lane's send task is woken once per
    chunk of deliveries on commit, not once per delivery."""
    errors: dict[str, list[str]] = {}
    if not source or len(source) > 120:
        errors["source"] = [_("A source of 1 to 120 characters is required.")]
    if template.channel_kind != channel.kind:
        errors["channel"] = [_("This template is for another kind of channel.")]
    for i, message in enumerate(messages):
        if not 0 < len(message.idempotency_key) <= 120:
            errors[f"messages[{i}].idempotency_key"] = [_("1 to 120 characters.")]
    _raise(errors)
    wanted = {m.idempotency_key: m for m in messages}
    found: dict[str, tuple[int, bool]] = {
        key: (pk, False)
        for key, pk in Delivery.objects.filter(idempotency_key__in=list(wanted)).values_list(
            "idempotency_key", "pk"
        )
    }
    lane = lanes.lane_for(source, template.purpose)
    rows = [
        Delivery(
            idempotency_key=key,
            source=source,
            customer=m.customer,
            channel=channel,
            template=template,
            locale=m.customer.locale,
            purpose=template.purpose,
            topic=template.topic,
            lane=lane,
            extra_context=m.extra_context,
        )
        for key, m in wanted.items()
        if key not in found
    ]
    if not rows:
        return found
    try:
        with transaction.atomic():
            Delivery.objects.bulk_create(rows, batch_size=500)
    except IntegrityError:  # a key taken meanwhile by another writer: one at a time
        for row in rows:
            m = wanted[row.idempotency_key]
            delivery, created = delivery_enqueue(
                source=source,
                customer=m.customer,
                channel=channel,
                template=template,
                extra_context=m.extra_context,
                idempotency_key=row.idempotency_key,
            )
            found[row.idempotency_key] = (delivery.pk, created)
        return found
    if any(row.pk is None for row in rows):  # a backend that returns no ids from bulk inserts
        ids = dict(
            Delivery.objects.filter(
                idempotency_key__in=[r.idempotency_key for r in rows]
            ).values_list("idempotency_key", "pk")
        )
        for row in rows:
            row.pk = ids[row.idempotency_key]
    at = now()
    DeliveryStatus.objects.bulk_create(
        [DeliveryStatus(delivery_id=row.pk, status=Status.QUEUED, at=at) for row in rows],
        batch_size=500,
    )
    for row in rows:
        found[row.idempotency_key] = (row.pk, True)
    _enqueue_on_commit([row.pk for row in rows], lane)
    return found


def _address_for(delivery: Delivery) -> str:
    if delivery.to_address:
        return delivery.to_address
    customer = delivery.customer
    if delivery.channel.kind == ChannelKind.EMAIL:
        return customer.email
    if delivery.channel.kind == ChannelKind.LINE:
        contact = (
            LineContact.objects.filter(channel=delivery.channel, customer=customer)
            .order_by("-following", "-updated_at")
            .first()
        )
        return contact.line_user_id if contact else ""
    return str(customer.pk)


def is_suppressed(
    *,
    channel_kind: str,
    address: str,
    purpose: str = Purpose.MARKETING,
    opted_in_at: datetime | None = None,
) -> bool:
    """Bounces, complaints and staff entries stop every message; an unsubscribe stops
    marketing, unless the customer opted in again after it (`opted_in_at`)."""
    digest = guardrails.address_hash(address)
    entries = Suppression.objects.filter(channel_kind=channel_kind, address_hash=digest)
    hard = [
        SuppressionReason.HARD_BOUNCE,
        SuppressionReason.SOFT_BOUNCES,
        SuppressionReason.COMPLAINT,
        SuppressionReason.MANUAL,
    ]
    if entries.filter(reason__in=hard).exists():
        return True
    if purpose != Purpose.MARKETING:
        return False
    unsubscribed = entries.filter(reason=SuppressionReason.UNSUBSCRIBE)
    if opted_in_at is not None:
        unsubscribed = unsubscribed.filter(created_at__gt=opted_in_at)
    return unsubscribed.exists()


class _BatchFacts:
    """What the guardrails need for a whole batch, read in a few queries instead of several
    per message: preferences, recent marketing sends, consent ledgers, suppression entries,
    LINE followers.

    Consent and suppression are checked at send time all the same: `refresh`, called inside
    each claim's transaction, reads them again for the batch as soon as either ledger has
    gained an entry since they were read (an opt-out or an unsubscribe while the batch runs).
    """

    def __init__(self, deliveries: list[Delivery], moment: datetime) -> None:
        self.customer_ids = {d.customer_id for d in deliveries}
        self.preferences = {
            p.customer_id: p for p in Preference.objects.filter(customer_id__in=self.customer_ids)
        }
        self.recent: dict[tuple[int, str], list[datetime]] = {}
        for customer_id, kind, sent_at in Delivery.objects.filter(
            customer_id__in=self.customer_ids,
            purpose=Purpose.MARKETING,
            sent_at__gte=moment - timedelta(days=30),
        ).values_list("customer_id", "channel__kind", "sent_at"):
            if sent_at is not None:
                self.recent.setdefault((customer_id, kind), []).append(sent_at)
        self.hashes: set[str] = set()
        self.suppressions: dict[tuple[str, str], list[Suppression]] = {}
        self.line_following: set[tuple[int, str]] = set()
        self.watermark = self._ledger_tops()
        self.consents = customer_selectors.consent_ledgers(
            customer_ids=self.customer_ids, purpose="marketing"
        )

    @staticmethod
    def _ledger_tops() -> tuple[int, int]:
        """The newest ids of the consent ledger and the suppression list (both append-only)."""
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT MAX(id) FROM {quote(ConsentEntry._meta.db_table)}), "  # noqa: S608
                f"(SELECT MAX(id) FROM {quote(Suppression._meta.db_table)})"
            )
            consent, suppression = cursor.fetchone()
        return int(consent or 0), int(suppression or 0)

    def load_addresses(self, pairs: list[tuple[str, str]]) -> None:
        self.hashes = {guardrails.address_hash(address) for _kind, address in pairs if address}
        self._load_suppressions()
        line_ids = [address for kind, address in pairs if kind == ChannelKind.LINE and address]
        if line_ids:
            self.line_following = set(
                LineContact.objects.filter(line_user_id__in=line_ids, following=True).values_list(
                    "channel_id", "line_user_id"
                )
            )

    def _load_suppressions(self) -> None:
        self.suppressions = {}
        for entry in Suppression.objects.filter(address_hash__in=self.hashes):
            self.suppressions.setdefault((entry.channel_kind, entry.address_hash), []).append(entry)

    def refresh(self) -> bool:
        """Re-read consent and suppression if either ledger grew since they were read."""
        tops = self._ledger_tops()
        if tops == self.watermark:
            return False
        self.watermark = tops
        self.consents = customer_selectors.consent_ledgers(
            customer_ids=self.customer_ids, purpose="marketing"
        )
        self._load_suppressions()
        return True

    def sent(self, delivery: Delivery, at: datetime) -> None:
        if delivery.purpose == Purpose.MARKETING:
            key = (delivery.customer_id, delivery.channel.kind)
            self.recent.setdefault(key, []).append(at)

    def suppressed(self, kind: str, address: str, purpose: str, customer: Customer) -> bool:
        entries = self.suppressions.get((kind, guardrails.address_hash(address)), [])
        if any(e.reason != SuppressionReason.UNSUBSCRIBE for e in entries):
            return True
        unsubscribes = [e for e in entries if e.reason == SuppressionReason.UNSUBSCRIBE]
        if purpose != Purpose.MARKETING or not unsubscribes:
            return False
        consent_channel = kind if kind in (ChannelKind.EMAIL, ChannelKind.LINE) else "any"
        latest = self.consents.latest(customer.pk, consent_channel)
        opted_in_at = latest[1] if latest and latest[0] == ConsentStatus.GRANTED else None
        return any(opted_in_at is None or e.created_at > opted_in_at for e in unsubscribes)

    def facts(self, delivery: Delivery, address: str, moment: datetime) -> guardrails.Facts:
        customer, channel = delivery.customer, delivery.channel
        kind = channel.kind
        marketing = delivery.purpose == Purpose.MARKETING
        preference = self.preferences.get(customer.pk) if marketing else None
        frequency = preference.frequency if preference else Frequency.NORMAL
        window, cap = guardrails.cap_window(frequency)
        sent_recently = (
            sum(1 for at in self.recent.get((customer.pk, kind), []) if at >= moment - window)
            if marketing
            else 0
        )
        s = channel.settings
        consent_channel = kind if kind in (ChannelKind.EMAIL, ChannelKind.LINE) else "any"
        if kind == ChannelKind.LINE:
            # LINE's own follow is the consent; an explicit withdrawal in the ledger counts.
            latest = self.consents.latest(customer.pk, "line")
            consent = latest is None or latest[0] == ConsentStatus.GRANTED
        else:
            consent = self.consents.granted(customer.pk, consent_channel) if marketing else True
        return guardrails.Facts(
            channel_kind=kind,
            channel_active=channel.active,
            purpose=delivery.purpose,
            address=address,
            consent=consent,
            suppressed=bool(address) and self.suppressed(kind, address, delivery.purpose, customer),
            line_following=kind != ChannelKind.LINE or (channel.pk, address) in self.line_following,
            sent_recently=sent_recently,
            cap=cap if cap is not None else settings.KIZUNA_MESSAGE_DAILY_CAP,
            timezone=customer.timezone,
            sender_complete=all(
                s.get(k) for k in ("from_name", "from_address", "physical_address")
            ),
            topic=delivery.topic,
            topics_opted_out=bool(
                preference
                and delivery.topic
                and preference.topics
                and delivery.topic not in preference.topics
            ),
        )


@dataclass
class BatchResult:
    sent: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retry: list[tuple[int, float]] = field(default_factory=list)  # (delivery id, delay s)
    skipped: list[int] = field(default_factory=list)
    # Still `queued`, to be sent by the next task at once: claims released after an
    # unexpected error stopped the batch, and the batch's deliveries not claimed yet.
    requeue: list[int] = field(default_factory=list)


class _GroupAborted(Exception):
    """An unexpected error stopped a group: its outcomes are recorded (in `pending`), the
    claims it had not handed to the provider are released (`released`)."""

    def __init__(self, released: list[int]) -> None:
        super().__init__(released)
        self.released = released


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Record:
    """What happened to one claimed delivery: its new status and history row and, for sent,
    refused and failed, its event on the customer's timeline."""

    delivery: Delivery
    status: str
    at: datetime
    reason: str = ""
    provider_id: str = ""
    rendered: dict[str, Any] | None = None
    not_before: datetime | None = None
    to_address: str = ""
    event: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    attempts: int | None = None  # set when an attempt is given back (claimed, not tried)


def _adapt(value: Any) -> Any:
    """A value for a plain-SQL parameter, adapted as the ORM adapts it."""
    if isinstance(value, datetime):
        return datetime_adapter(connection)(value)
    if isinstance(value, dict):
        return json_adapter(connection, None)(value)
    return None if value is None else str(value)


def _update(delivery_id: int, fields: dict[str, Any], *, claim: bool = False) -> bool:
    """UPDATE one delivery row in plain SQL (values adapted as the ORM adapts them), without
    building an ORM query. With `claim`, only a delivery still waiting and due is updated,
    and its attempts are counted."""
    quote = connection.ops.quote_name
    sets = [f"{quote(name)} = %s" for name in fields]
    params = [_adapt(value) for value in fields.values()]
    sql = f"UPDATE {quote(Delivery._meta.db_table)} SET {', '.join(sets)}"  # noqa: S608 (names from code)
    if claim:
        sql += (
            ", attempts = attempts + 1 WHERE id = %s AND status IN (%s, %s) "
            "AND (not_before IS NULL OR not_before <= %s)"
        )
        params += [delivery_id, Status.QUEUED.value, Status.DEFERRED.value]
        params.append(_adapt(fields["claimed_at"]))
    else:
        sql += " WHERE id = %s"
        params.append(delivery_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


def _claim_many(deliveries: list[Delivery], worker: str, moment: datetime) -> set[int]:
    """Claim a group of deliveries to send in one UPDATE (`sending`, attempts counted): the
    ids of those that were still waiting and due."""
    if not deliveries:
        return set()
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(deliveries))
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET status = %s, claimed_by = %s, "  # noqa: S608 (names from code)
        f"claimed_at = %s, attempts = attempts + 1 WHERE id IN ({marks}) "
        "AND status IN (%s, %s) AND (not_before IS NULL OR not_before <= %s) RETURNING id"
    )
    at = _adapt(moment)
    params = [Status.SENDING.value, worker, at, *[d.pk for d in deliveries]]
    params += [Status.QUEUED.value, Status.DEFERRED.value, at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {int(row[0]) for row in cursor.fetchall()}


def _outcome_fields(record: _Record) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": record.status,
        "reason": record.reason[:300],
        "not_before": record.not_before,
        "updated_at": record.at,
    }
    if record.provider_id:
        fields["provider_id"] = record.provider_id
    if record.rendered is not None:
        fields["rendered"] = record.rendered
    if record.to_address:
        fields["to_address"] = record.to_address
    if record.status == Status.SENT:
        fields["sent_at"] = record.at
    if record.attempts is not None:
        fields["attempts"] = record.attempts
    return fields


def _write(record: _Record) -> None:
    """Record the outcome of a send (inside the caller's transaction)."""
    _write_many([record])


def _write_many(records: list[_Record]) -> None:
    """Record the outcomes of a group of sends (inside the caller's transaction): one UPDATE
    statement per shape of row executed for all of them (`executemany`: on PostgreSQL one
    pipelined round trip), one history insert, one timeline insert."""
    if not records:
        return
    quote = connection.ops.quote_name
    shapes: dict[tuple[str, ...], list[list[Any]]] = {}
    for record in records:
        fields = _outcome_fields(record)
        shapes.setdefault(tuple(fields), []).append(
            [*(_adapt(value) for value in fields.values()), record.delivery.pk]
        )
    with connection.cursor() as cursor:
        for names, rows in shapes.items():
            sets = ", ".join(f"{quote(name)} = %s" for name in names)
            sql = f"UPDATE {quote(Delivery._meta.db_table)} SET {sets} WHERE id = %s"  # noqa: S608 (names from code)
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
    _write_history(records)


def _write_history(records: list[_Record]) -> None:
    """The history rows of records in one insert, their timeline events in another."""
    table_insert(
        DeliveryStatus,
        ("delivery", "status", "reason", "detail", "at"),
        [(r.delivery.pk, str(r.status), r.reason[:300], r.detail, r.at) for r in records],
    )
    events = [
        customer_services.NewEvent(
            type=r.event,
            customer_id=r.delivery.customer_id,
            source="messaging",
            occurred_at=r.at,
            properties={
                "delivery_id": r.delivery.pk,
                "channel": r.delivery.channel.kind,
                "template": r.delivery.template.slug if r.delivery.template else "",
                "source": r.delivery.source,
                **({"reason": r.reason[:200]} if r.reason else {}),
            },
            message_id=f"msg-{r.delivery.pk}-{r.event}",
        )
        for r in records
        if r.event
    ]
    if events:
        customer_services.event_record_many(events=events)


def _claim(
    delivery: Delivery,
    worker: str,
    moment: datetime,
    decision: guardrails.Refusal | guardrails.Deferral | None,
) -> bool:
    """Claim a delivery that is still waiting: as `sending` (committed before the provider
    is called), or, when the guardrails said no, straight into its refusal or deferral,
    recorded with the reason."""
    fields: dict[str, Any] = {"status": Status.SENDING, "claimed_by": worker, "claimed_at": moment}
    record = None
    if isinstance(decision, guardrails.Refusal):
        prefix = EVENT_PREFIX[ChannelKind(delivery.channel.kind)]
        record = _Record(
            delivery, Status.REFUSED, moment, decision.reason, event=f"{prefix}.refused"
        )
    elif isinstance(decision, guardrails.Deferral):
        record = _Record(
            delivery, Status.DEFERRED, moment, decision.reason, not_before=decision.until
        )
    if record is not None:
        fields.update(
            status=record.status,
            reason=record.reason[:300],
            not_before=record.not_before,
            updated_at=moment,
        )
    claimed = _update(delivery.pk, fields, claim=True)
    if claimed and record is not None:
        _write_history([record])
    return claimed


def lanes_of(delivery_ids: list[int]) -> dict[int, str]:
    return dict(Delivery.objects.filter(pk__in=delivery_ids).values_list("pk", "lane"))


def group_by_lane(delivery_ids: list[int]) -> dict[str, list[int]]:
    lane_of = lanes_of(delivery_ids)
    grouped: dict[str, list[int]] = {}
    for pk in delivery_ids:
        if pk in lane_of:
            grouped.setdefault(lane_of[pk], []).append(pk)
    return grouped


def _held(delivery: Delivery, holds: set[str]) -> bool:
    if not holds:
        return False
    if f"lane:{delivery.lane}" in holds:
        return True
    return any(key.startswith("source:") and delivery.source.startswith(key[7:]) for key in holds)


def _defer_untried(
    deliveries: list[Delivery], until: datetime, reason: str, result: BatchResult
) -> None:
    """Defer deliveries that were not tried (their channel's breaker is open): no attempt
    spent, one UPDATE and one history insert for all of them."""
    if not deliveries:
        return
    moment = now()
    ids = [d.pk for d in deliveries]
    with transaction.atomic():
        changed = set(
            Delivery.objects.filter(
                pk__in=ids, status__in=[Status.QUEUED, Status.DEFERRED]
            ).values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=changed).update(
            status=Status.DEFERRED, reason=reason[:300], not_before=until, updated_at=moment
        )
        _write_history(
            [_Record(d, Status.DEFERRED, moment, reason) for d in deliveries if d.pk in changed]
        )
    delay = max(1.0, (until - moment).total_seconds())
    result.retry.extend((pk, delay) for pk in ids if pk in changed)


def _rate_limit(
    deliveries: list[Delivery], addresses: dict[int, str], result: BatchResult
) -> list[Delivery]:
    """Take tokens for the batch from the channel buckets (`rate_per_second`) and the
    recipient-domain buckets (`domain_rates`); what did not get one waits, still queued."""
    allowed = list(deliveries)
    by_channel: dict[int, list[Delivery]] = {}
    for d in allowed:
        by_channel.setdefault(d.channel_id, []).append(d)
    waiting: dict[int, float] = {}
    for channel_id, group in by_channel.items():
        s = group[0].channel.settings
        if s.get("rate_per_second"):
            granted, wait = breaker.take(
                f"channel:{channel_id}", rate=float(s["rate_per_second"]), wanted=len(group)
            )
            for d in group[granted:]:
                waiting[d.pk] = wait
        rates = s.get("domain_rates") or {}
        if rates:
            by_domain: dict[str, list[Delivery]] = {}
            for d in group:
                if d.pk not in waiting:
                    domain = addresses.get(d.pk, "").rpartition("@")[2].lower()
                    by_domain.setdefault(domain, []).append(d)
            for domain, members in by_domain.items():
                rate = rates.get(domain, rates.get("*"))
                if not rate or not domain:
                    continue
                granted, wait = breaker.take(
                    f"domain:{domain}", rate=float(rate), wanted=len(members)
                )
                for d in members[granted:]:
                    waiting[d.pk] = wait
    if waiting:
        result.retry.extend(waiting.items())
        allowed = [d for d in allowed if d.pk not in waiting]
    return allowed


def _resume_channel(channel_id: int) -> None:
    """The breaker closed: what it deferred (and the faults that opened it) is due now."""
    moment = now()
    deferred = Delivery.objects.filter(
        channel_id=channel_id, status=Status.DEFERRED, not_before__gt=moment
    ).filter(Q(reason__startswith=CIRCUIT_REASON) | Q(reason__startswith=CHANNEL_REASON))
    ids = list(deferred.values_list("pk", flat=True))
    if not ids:
        return
    Delivery.objects.filter(pk__in=ids).update(not_before=moment)
    grouped = group_by_lane(ids)
    transaction.on_commit(lambda: enqueue_now(grouped))


def delivery_send_batch(*, delivery_ids: list[int], worker: str | None = None) -> BatchResult:
    """Send queued deliveries (one channel session per channel). Called by the worker task
    only.

    Before anything is claimed: held deliveries (a paused lane or campaign) are left queued;
    deliveries on a channel whose breaker is open are deferred to its retry time without
    spending an attempt; the channel and recipient-domain token buckets are asked for the
    batch at once, and what got no token waits for the refill.

    Deliveries are claimed in groups (`lanes.send_group`: 1 on the transactional and journey
    lanes, `KIZUNA_SEND_GROUP` = 20 on bulk), in a transaction that also records the outcomes
    of the group sent before (one commit per group): the claims are committed before the
    provider is called, and the outcomes of group n are committed before group n+1 is sent,
    so a crash leaves at most one group `sending`: what the journal shows was not handed to
    the provider is queued again; what was becomes `unknown` for email (never sent twice),
    and LINE and webhooks are sent again under their retry keys. The guardrails are checked
    inside the claim's transaction; a refusal or deferral is the claim itself, recorded with
    its reason. A channel fault counts towards the
    channel's breaker; once it opens, the rest of the batch on that channel is deferred.

    An unexpected error (not a provider or render error the channels report) stops the
    batch: the delivery it happened on ends `failed` with the reason (`unknown` when the
    journal shows it was handed to the provider), the claims of its group not handed over
    are released to `queued` (the attempt given back) and, with the batch's deliveries not
    claimed yet, returned in `requeue` for the next task; the error is logged with the ids."""
    worker = worker or worker_name()
    result = BatchResult()
    # Only what is still waiting: a duplicate wake-up (a sweep, a restarted worker) costs one
    # read and no write.
    deliveries = {
        d.pk: d
        for d in Delivery.objects.select_related("customer", "channel", "template").filter(
            pk__in=delivery_ids, status__in=[Status.QUEUED, Status.DEFERRED]
        )
    }
    result.skipped.extend(pk for pk in delivery_ids if pk not in deliveries)
    if not deliveries:
        return result
    holds = send_holds()
    if holds:
        for pk in [pk for pk, d in deliveries.items() if _held(d, holds)]:
            del deliveries[pk]
            result.skipped.append(pk)
    moment = now()
    views = breaker.states({d.channel_id for d in deliveries.values()})
    blocked: dict[int, datetime] = {}
    for channel_id in {d.channel_id for d in deliveries.values()}:
        ok, retry_at = breaker.allow(channel_id, views.get(channel_id), moment)
        if not ok and retry_at is not None:
            blocked[channel_id] = retry_at
    untried: dict[int, list[Delivery]] = {}
    for pk in [pk for pk, d in deliveries.items() if d.channel_id in blocked]:
        untried.setdefault(deliveries[pk].channel_id, []).append(deliveries.pop(pk))
    addresses = {d.pk: _address_for(d) for d in deliveries.values()}
    in_order = [deliveries[pk] for pk in dict.fromkeys(delivery_ids) if pk in deliveries]
    allowed = {d.pk for d in _rate_limit(in_order, addresses, result)}
    deliveries = {pk: d for pk, d in deliveries.items() if pk in allowed}
    templates: dict[int, Template] = {}
    sessions: dict[int, Any] = {}
    batch = _BatchFacts(list(deliveries.values()), moment)
    batch.load_addresses([(d.channel.kind, addresses[d.pk]) for d in deliveries.values()])
    size = min((lanes.send_group(d.lane) for d in deliveries.values()), default=1)
    order = [pk for pk in dict.fromkeys(delivery_ids) if pk in deliveries]
    handoff = journal.Journal()
    pending: list[_Record] = []  # outcomes of the last group, written with the next claims
    try:
        position = 0
        while position < len(order):
            if position and size > 1:  # a pause (lane or campaign hold) stops a bulk
                holds = send_holds()  # task at the next group (one query per group)
            # A group: up to `size` deliveries, no customer twice (a frequency cap sees the
            # sends of the groups before).
            group: list[Delivery] = []
            customers: set[int] = set()
            while position < len(order) and len(group) < size:
                delivery = deliveries[order[position]]
                if delivery.customer_id in customers:
                    break
                position += 1
                if holds and _held(delivery, holds):
                    result.skipped.append(delivery.pk)  # still queued: the release wakes it
                    continue
                if delivery.channel_id in blocked:
                    untried.setdefault(delivery.channel_id, []).append(delivery)
                    continue
                customers.add(delivery.customer_id)
                group.append(delivery)
            if group:
                _send_group(
                    group, pending, worker, addresses, batch, views, blocked, sessions, templates,
                    result, handoff,
                )  # fmt: skip
    except _GroupAborted as aborted:
        # Logged where it happened. What is still queued goes to the next task at once.
        result.requeue.extend(aborted.released)
        for pk in order[position:]:
            delivery = deliveries[pk]
            if delivery.channel_id in blocked:
                untried.setdefault(delivery.channel_id, []).append(delivery)
            else:
                result.requeue.append(pk)
    finally:
        try:
            if pending:
                with transaction.atomic():
                    _write_many(pending)
            handoff.close()
        finally:
            for session in sessions.values():
                with contextlib.suppress(Exception):  # closing a dead connection
                    session.close()
    for channel_id, group in untried.items():
        until = blocked[channel_id]
        _defer_untried(
            group,
            until,
            f"{CIRCUIT_REASON} until {until.isoformat(timespec='seconds')}",
            result,
        )
    return result


def _send_group(
    group: list[Delivery],
    pending: list[_Record],
    worker: str,
    addresses: dict[int, str],
    batch: _BatchFacts,
    views: dict[int, Any],
    blocked: dict[int, datetime],
    sessions: dict[int, Any],
    templates: dict[int, Template],
    result: BatchResult,
    handoff: journal.Journal,
) -> None:
    """Claim a group in one transaction that also records the previous group's outcomes
    (`pending`, emptied once committed), then send it, adding each outcome to `pending` as
    it happens (the caller writes them with the next group's claims, or on their own after
    the last group or an error)."""
    claimable: list[Delivery] = []
    with transaction.atomic():
        _write_many(pending)
        batch.refresh()
        moment = now()
        for delivery in group:
            decision = _decide(delivery, addresses[delivery.pk], moment, batch)
            if decision is None:
                claimable.append(delivery)
            elif not _claim(delivery, worker, moment, decision):
                result.skipped.append(delivery.pk)
            else:
                delivery.attempts += 1
                if isinstance(decision, guardrails.Refusal):
                    result.refused.append(delivery.pk)
                else:
                    result.retry.append((delivery.pk, (decision.until - moment).total_seconds()))
        claimed = _claim_many(claimable, worker, moment)
    pending.clear()
    handoff.committed()  # the outcomes it named are recorded
    todo: list[Delivery] = []
    for delivery in claimable:
        if delivery.pk not in claimed:
            result.skipped.append(delivery.pk)
            continue
        delivery.attempts += 1
        todo.append(delivery)
    for index, delivery in enumerate(todo):
        record: _Record | None = None
        try:
            until = blocked.get(delivery.channel_id)
            if until is not None:  # the breaker opened on a message before it in this group
                record = _Record(
                    delivery,
                    Status.DEFERRED,
                    now(),
                    f"{CIRCUIT_REASON} until {until.isoformat(timespec='seconds')}",
                    not_before=until,
                    attempts=delivery.attempts - 1,  # not tried: the attempt is given back
                )
            else:
                record, fault = _send_one(
                    delivery, addresses[delivery.pk], templates, sessions, handoff
                )
                view = views.get(delivery.channel_id)
                if fault:
                    view = views[delivery.channel_id] = breaker.record_fault(
                        delivery.channel_id, view, record.reason
                    )
                    if view.state == BreakerState.OPEN and view.retry_at:
                        blocked[delivery.channel_id] = view.retry_at
                        record.not_before = max(record.not_before or view.retry_at, view.retry_at)
                elif record.status == Status.SENT and breaker.record_success(
                    delivery.channel_id, view
                ):
                    _resume_channel(delivery.channel_id)
        except Exception as exc:
            rest = todo[index + 1 :]
            _count(_abort_group(delivery, record, rest, exc, handoff, pending), result)
            raise _GroupAborted([d.pk for d in rest]) from exc
        pending.append(record)
        _count(record, result)
        if record.status == Status.SENT:
            batch.sent(delivery, moment)


def _abort_group(
    delivery: Delivery,
    record: _Record | None,
    rest: list[Delivery],
    exc: Exception,
    handoff: journal.Journal,
    pending: list[_Record],
) -> _Record:
    """An unexpected error (not a provider or render error the channels report) while
    sending `delivery`: record it in a final state with the reason: `failed` when it was not
    handed to the provider, `unknown` when it was (never sent again: it may have arrived),
    its own outcome when it had one; release the claims of the rest of the group (never
    handed over: the attempt is given back) to `queued`. Returns the record of `delivery`."""
    at = now()
    error = f"{type(exc).__name__}: {exc}"[:240]
    prefix = EVENT_PREFIX[ChannelKind(delivery.channel.kind)]
    if record is None:
        if delivery.pk in handoff.handed:
            record = _Record(
                delivery,
                Status.UNKNOWN,
                at,
                f"unexpected error after the hand-off to the provider, not sent again "
                f"(it may have been delivered): {error}",
            )
        else:
            record = _Record(
                delivery, Status.FAILED, at, f"unexpected error: {error}", event=f"{prefix}.failed"
            )
    pending.append(record)
    reason = f"released after an unexpected error sending delivery {delivery.pk}: queued again"
    pending.extend(_Record(d, Status.QUEUED, at, reason, attempts=d.attempts - 1) for d in rest)
    logger.exception(
        "messaging: unexpected error sending delivery %s (now %s); claims released to the "
        "queue: %s",
        delivery.pk,
        record.status,
        [d.pk for d in rest],
    )
    return record


def _decide(
    delivery: Delivery, address: str, moment: datetime, batch: _BatchFacts
) -> guardrails.Refusal | guardrails.Deferral | None:
    if delivery.source.startswith("test:"):
        return None  # a test send goes to the member of staff who asked
    return guardrails.check(batch.facts(delivery, address, moment), moment)


def _count(record: _Record, result: BatchResult) -> None:
    if record.status == Status.SENT:
        result.sent.append(record.delivery.pk)
    elif record.status == Status.DEFERRED:
        delay = (record.not_before - record.at).total_seconds() if record.not_before else 0.0
        result.retry.append((record.delivery.pk, delay))
    else:
        result.failed.append(record.delivery.pk)


def _send_one(
    delivery: Delivery,
    address: str,
    templates: dict[int, Template],
    sessions: dict[int, Any],
    handoff: journal.Journal,
) -> tuple[_Record, bool]:
    """Render and send one claimed delivery: what happened, to be recorded, and whether it
    was a fault of the channel (for its breaker). The journal names it just before the
    provider is called."""
    record = _send_one_record(delivery, address, templates, sessions, handoff)
    return record, record.detail.pop("_channel_fault", False) is True


def _send_one_record(
    delivery: Delivery,
    address: str,
    templates: dict[int, Template],
    sessions: dict[int, Any],
    handoff: journal.Journal,
) -> _Record:
    kind = delivery.channel.kind
    prefix = EVENT_PREFIX[ChannelKind(kind)]
    if delivery.template_id is None:
        return _Record(delivery, Status.FAILED, now(), "the template was deleted")
    template = templates.get(delivery.template_id)
    if template is None:
        template = Template.objects.prefetch_related("variants").get(pk=delivery.template_id)
        templates[template.pk] = template
    try:
        rendered = render_for(
            template=template,
            customer=delivery.customer,
            extra=delivery.extra_context,
            locale=delivery.locale,
            delivery_id=delivery.pk,
            channel=delivery.channel,
        )
        charset = str(delivery.channel.settings.get("charset") or "utf-8")
        if kind == ChannelKind.EMAIL:
            bad = rendering.unencodable(rendered.subject + rendered.html + rendered.text, charset)
            if bad:
                raise rendering.RenderError(
                    f"characters not encodable in {charset}: {', '.join(bad)}", part="body"
                )
    except rendering.RenderError as exc:
        return _Record(delivery, Status.FAILED, now(), f"render: {exc}", event=f"{prefix}.failed")
    snapshot = rendered.snapshot()
    try:
        session = sessions.get(delivery.channel_id)
        if session is None:
            session = sessions[delivery.channel_id] = open_session(delivery.channel)
        handoff.handing(delivery.pk)
        outcome = session.send(
            OutboundMessage(
                delivery_id=delivery.pk,
                idempotency_key=delivery.idempotency_key,
                to=address,
                rendered=snapshot,
                marketing=delivery.purpose == Purpose.MARKETING,
                customer_name=delivery.customer.display_name,
            )
        )
    except (ChannelConfigError, crypto.CredentialsError) as exc:
        outcome = Outcome(ok=False, reason=str(exc))
    at = now()
    if outcome.ok:
        return _Record(
            delivery,
            Status.SENT,
            at,
            provider_id=outcome.provider_id,
            rendered=snapshot,
            to_address=address,
            event=f"{prefix}.sent",
            detail=outcome.detail or {},
        )
    if outcome.channel_fault and at - delivery.created_at < CHANNEL_GIVE_UP:
        # The channel failed, not the recipient: no attempt limit, the breaker paces it.
        return _Record(
            delivery,
            Status.DEFERRED,
            at,
            CHANNEL_REASON + outcome.reason,
            rendered=snapshot,
            to_address=address,
            not_before=at + timedelta(seconds=breaker.SCHEDULE[0]),
            detail={"_channel_fault": True},
        )
    if outcome.temporary and not outcome.channel_fault and delivery.attempts < MAX_ATTEMPTS:
        delay = BACKOFF_BASE_SECONDS * 2 ** (delivery.attempts - 1)
        return _Record(
            delivery,
            Status.DEFERRED,
            at,
            outcome.reason,
            rendered=snapshot,
            to_address=address,
            not_before=at + timedelta(seconds=delay),
        )
    return _Record(
        delivery,
        Status.FAILED,
        at,
        outcome.reason,
        rendered=snapshot,
        to_address=address,
        event=f"{prefix}.failed",
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delivery_recover_interrupted(*, stale_after: timedelta = STALE_CLAIM) -> dict[str, list[int]]:
    """Claims left by a worker that died: on this host when its process is gone, anywhere
    when older than `stale_after`. A delivery its journal (`kizuna.messaging.journal`) shows
    was never handed to the provider goes back to the queue; LINE/webhook deliveries go back
    to the queue (their retry key makes a resend safe); other email ones become `unknown`
    and are never sent again."""
    host = socket.gethostname()
    moment = now()
    counts: dict[str, list[int]] = {"requeued": [], "unknown": []}
    journals: dict[int, set[int] | None] = {}
    for delivery in Delivery.objects.select_related("channel").filter(status=Status.SENDING):
        owner_host, _sep, pid = delivery.claimed_by.rpartition(":")
        dead = owner_host == host and pid.isdigit() and not _pid_alive(int(pid))
        stale = delivery.claimed_at is None or delivery.claimed_at < moment - stale_after
        if not (dead or stale):
            continue
        handed: set[int] | None = None
        if dead:
            if int(pid) not in journals:
                journals[int(pid)] = journal.handed(host, int(pid))
            handed = journals[int(pid)]
        if handed is not None and delivery.pk not in handed:
            new, reason = Status.QUEUED, "worker interrupted before sending: queued again"
        elif delivery.channel.kind in IDEMPOTENT_KINDS:
            new, reason = Status.QUEUED, "worker interrupted: sent again with the same retry key"
        else:
            new = Status.UNKNOWN
            reason = "worker interrupted mid-send: not sent again (it may have been delivered)"
        with transaction.atomic():
            changed = Delivery.objects.filter(pk=delivery.pk, status=Status.SENDING).update(
                status=new, reason=reason, updated_at=moment
            )
            if changed:
                _history(delivery, new, reason, worker=delivery.claimed_by)
                counts["requeued" if new == Status.QUEUED else "unknown"].append(delivery.pk)
    for dead_pid in journals:
        journal.discard(host, dead_pid)
    return counts


def deliveries_due(*, limit: int = 5000, older_than: timedelta = timedelta(0)) -> list[int]:
    """Queued or deferred deliveries that may be sent now (lost wake-ups, retries)."""
    moment = now()
    return list(
        Delivery.objects.filter(status__in=[Status.QUEUED, Status.DEFERRED])
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=moment))
        .filter(updated_at__lte=moment - older_than)
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )


def breaker_reset(*, channel_id: int) -> None:
    """Close a channel's breaker by hand; what it deferred is queued again."""
    if not Channel.objects.filter(pk=channel_id).exists():
        raise ValidationError({"channel": [_("Unknown channel.")]})
    with transaction.atomic():
        breaker.reset(channel_id)
        _resume_channel(channel_id)


# --- pause, resume, cancel ----------------------------------------------------------------


def _hold_key_ok(key: str) -> bool:
    if key.startswith("lane:"):
        return key[5:] in lanes.LANES
    return key.startswith("source:") and 7 < len(key) <= 160


@transaction.atomic
def send_hold(*, key: str, actor: AbstractBaseUser | None = None) -> SendHold:
    """Pause a lane (`lane:bulk`) or a source prefix (`source:campaign:12:`): its queued
    deliveries stay queued, untouched, until `send_release`."""
    if not _hold_key_ok(key):
        raise ValidationError({"key": [_("Hold a lane (lane:bulk) or a source prefix.")]})
    hold, _created = SendHold.objects.get_or_create(
        key=key, defaults={"created_by": str(getattr(actor, "username", "") or "")}
    )
    return hold


@transaction.atomic
def send_release(*, key: str, actor: AbstractBaseUser | None = None) -> int:
    """Lift a hold and wake what it kept waiting. Returns how many deliveries were queued."""
    deleted, _kinds = SendHold.objects.filter(key=key).delete()
    if not deleted:
        return 0
    waiting = Delivery.objects.filter(status__in=[Status.QUEUED, Status.DEFERRED])
    if key.startswith("lane:"):
        waiting = waiting.filter(lane=key[5:])
    else:
        waiting = waiting.filter(source__startswith=key[7:])
    moment = now()
    ids = list(
        waiting.filter(Q(not_before__isnull=True) | Q(not_before__lte=moment))
        .order_by("id")
        .values_list("pk", flat=True)
    )
    grouped = group_by_lane(ids)
    transaction.on_commit(lambda: enqueue_now(grouped))
    return len(ids)


def send_holds() -> set[str]:
    return set(SendHold.objects.values_list("key", flat=True))


@transaction.atomic
def deliveries_cancel(*, source_prefix: str, reason: str = "cancelled") -> int:
    """Cancel what is still waiting from a source (a cancelled campaign): final state
    `cancelled` with the reason, in the history and on the timeline. Returns how many."""
    if not source_prefix:
        raise ValidationError({"source_prefix": [_("A source prefix is required.")]})
    moment = now()
    rows = list(
        Delivery.objects.select_related("channel", "template")
        .select_for_update(of=("self",))
        .filter(source__startswith=source_prefix, status__in=[Status.QUEUED, Status.DEFERRED])
    )
    if not rows:
        return 0
    Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(
        status=Status.CANCELLED, reason=reason[:300], updated_at=moment
    )
    _write_history([_Record(d, Status.CANCELLED, moment, reason) for d in rows])
    return len(rows)


# --- suppression and tracking ---------------------------------------------------------------


def suppression_add(
    *,
    channel_kind: str,
    address: str,
    reason: str,
    note: str = "",
    delivery: Delivery | None = None,
    actor: AbstractBaseUser | None = None,
) -> Suppression:
    errors: dict[str, list[str]] = {}
    if channel_kind not in ChannelKind.values:
        errors["channel_kind"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ChannelKind.values)}]
    if reason not in SuppressionReason.values:
        errors["reason"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(SuppressionReason.values)}]
    if not address.strip():
        errors["address"] = [_("An address is required.")]
    _raise(errors)
    digest = guardrails.address_hash(address)
    with acting_as(actor):
        entry, _created = Suppression.objects.get_or_create(
            channel_kind=channel_kind,
            address_hash=digest,
            reason=reason,
            defaults={"note": note[:300], "delivery": delivery},
        )
    return entry


def _mark(delivery: Delivery, status: str, event: str, **properties: Any) -> bool:
    """Record an engagement fact once per delivery and kind (repeat opens are not news)."""
    with transaction.atomic():
        if DeliveryStatus.objects.filter(delivery=delivery, status=status).exists():
            return False
        _history(delivery, status, **properties)
        if Status(delivery.status) in (
            Status.SENT,
            Status.DELIVERED,
            Status.OPENED,
            Status.CLICKED,
        ) and not (status == Status.OPENED and delivery.status == Status.CLICKED):
            Delivery.objects.filter(pk=delivery.pk).update(status=status, updated_at=now())
        customer_services.event_record(
            type=event,
            customer=delivery.customer,
            source="messaging",
            properties={"delivery_id": delivery.pk, "channel": delivery.channel.kind, **properties},
            message_id=f"msg-{delivery.pk}-{event}",
        )
    return True


def _engagement(
    delivery: Delivery, kind: str, verdict: engagement.Verdict, at: datetime, **fields: Any
) -> None:
    ip = fields.pop("ip", "") or None
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            ip = None
    Engagement.objects.create(
        delivery=delivery,
        kind=kind,
        machine=verdict.machine,
        rule=verdict.rule,
        ip=ip,
        at=at,
        user_agent=str(fields.pop("user_agent", ""))[:300],
        **fields,
    )


def _mark_machine(delivery: Delivery, status: str, rule: str) -> None:
    """A machine's open or click: one history row per delivery and kind (for the raw
    rates), no status change and nothing on the customer's timeline (segments, scores,
    best hours and A/B winners read human engagement only)."""
    if not DeliveryStatus.objects.filter(delivery=delivery, status=status).exists():
        _history(delivery, status, rule)


@transaction.atomic
def delivery_track_open(*, delivery_id: int, ip: str = "", user_agent: str = "") -> bool:
    """Record an open (every one, classified); True when it was the first human one."""
    delivery = Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()
    if delivery is None:
        return False
    at = now()
    verdict = engagement.classify_open(
        ip=ip, user_agent=user_agent, sent_at=delivery.sent_at, at=at
    )
    _engagement(delivery, EngagementKind.OPEN, verdict, at, ip=ip, user_agent=user_agent)
    if verdict.machine:
        _mark_machine(delivery, Status.MACHINE_OPENED, verdict.rule)
        return False
    return _mark(delivery, Status.OPENED, "email.opened")


@transaction.atomic
def delivery_track_click(
    *, delivery_id: int, url: str, ip: str = "", user_agent: str = "", method: str = "GET"
) -> bool:
    """Record a click (every one, classified); True when it was the first human one."""
    delivery = Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()
    if delivery is None:
        return False
    at = now()
    earlier = list(
        Engagement.objects.filter(delivery=delivery, kind=EngagementKind.CLICK).values_list(
            "url", "at"
        )
    )
    verdict = engagement.classify_click(
        ip=ip,
        user_agent=user_agent,
        method=method,
        sent_at=delivery.sent_at,
        at=at,
        other_links=earlier,
        url=url[:500],
    )
    _engagement(
        delivery,
        EngagementKind.CLICK,
        verdict,
        at,
        ip=ip,
        user_agent=user_agent,
        url=url[:500],
        method=method[:8],
    )
    if verdict.machine:
        _mark_machine(delivery, Status.MACHINE_CLICKED, verdict.rule)
        return False
    return _mark(delivery, Status.CLICKED, "email.clicked", url=url[:500])


@transaction.atomic
def unsubscribe(*, delivery_id: int, source: str = "one_click") -> Delivery | None:
    """Honour an unsubscribe at once: marketing consent withdrawn in the ledger for the
    delivery's channel, the address on the suppression list, the fact on the timeline."""
    delivery = Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    kind = delivery.channel.kind
    channel = kind if kind in (ChannelKind.EMAIL, ChannelKind.LINE) else "any"
    address = delivery.to_address or _address_for(delivery)
    if address:
        suppression_add(
            channel_kind=kind,
            address=address,
            reason=SuppressionReason.UNSUBSCRIBE,
            note=f"delivery {delivery.pk} ({source})",
            delivery=delivery,
        )
    if customer_selectors.has_consent(
        customer=delivery.customer, purpose="marketing", channel=channel
    ):
        customer_services.consent_record(
            customer=delivery.customer,
            purpose="marketing",
            channel=channel,
            status=ConsentStatus.WITHDRAWN,
            source="unsubscribe",
            evidence={"delivery_id": delivery.pk, "method": source},
        )
    _mark(delivery, Status.UNSUBSCRIBED, "message.unsubscribed", method=source)
    return delivery


# --- bounces (RFC 3464), complaints (ARF), auto-replies ----------------------------------

AUTO_REPLY_SUBJECTS = (
    "out of office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "自動応答",
    "自動返信",
    "不在",
)


def soft_bounce_policy() -> tuple[int, timedelta]:
    """`KIZUNA_SOFT_BOUNCE_LIMIT` "count/days" (default "3/30"): that many soft bounces of one
    address within that many days suppress it."""
    raw = str(getattr(settings, "KIZUNA_SOFT_BOUNCE_LIMIT", "") or "3/30")
    count, _sep, days = raw.partition("/")
    return max(1, int(count)), timedelta(days=max(1, int(days or 30)))


def _bounce_event(
    *,
    key: str,
    kind: str,
    delivery: Delivery | None,
    address: str = "",
    status_code: str = "",
    diagnostic: str = "",
    reason: str = "",
    source: str = "dsn",
) -> BounceEvent | None:
    """Keep the report once (by `key`); None when it was seen before (a replay)."""
    try:
        with transaction.atomic():
            return BounceEvent.objects.create(
                key=key[:120],
                kind=kind,
                delivery=delivery,
                address_hash=guardrails.address_hash(address) if address else "",
                status_code=status_code[:20],
                diagnostic=diagnostic[:300],
                reason=reason[:300],
                source=source,
                received_at=now(),
            )
    except IntegrityError:
        return None


def _report_key(raw: bytes, *parts: object) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:40]
    return "r_" + hashlib.sha256(f"{digest}|{parts}".encode()).hexdigest()[:60]


def _is_auto_reply(raw: bytes) -> tuple[bool, int | None]:
    from email import message_from_bytes
    from email import policy as email_policy

    from kizuna.messaging import dsn

    message = message_from_bytes(raw[:200_000], policy=email_policy.compat32)
    if message.get_content_type() == "multipart/report":
        return False, None
    auto = str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied")
    auto = auto or bool(message.get("X-Autoreply") or message.get("X-Autorespond"))
    subject = str(message.get("Subject", "")).lower()
    auto = auto or subject.startswith(AUTO_REPLY_SUBJECTS)
    return auto, dsn.delivery_from_headers(message) if auto else None


def bounce_process(*, raw: bytes) -> list[Delivery]:
    """Apply a delivery status notification, normalised: hard (5.x.x: the delivery bounced,
    the address suppressed), soft (4.x.x: recorded; `soft_bounce_policy` soft bounces within
    its window suppress the address), complaint (an ARF feedback report), auto-reply (an
    out-of-office answer: kept, nothing else). Every report is kept once (a replay is a
    no-op). A message that is not a report is a ValidationError; one that names no delivery
    of ours is kept with that reason, logged, and a ValidationError too."""
    from kizuna.messaging import dsn

    auto, auto_delivery = _is_auto_reply(raw)
    if auto:
        delivery = Delivery.objects.filter(pk=auto_delivery).first() if auto_delivery else None
        _bounce_event(
            key=_report_key(raw, "auto"),
            kind=BounceKind.AUTO_REPLY,
            delivery=delivery,
            reason="" if delivery else "auto-reply naming no delivery of ours",
        )
        return [delivery] if delivery else []
    try:
        report = dsn.parse(raw)
    except dsn.DSNError as exc:
        logger.warning("messaging: unreadable bounce report: %s", exc)
        raise ValidationError({"body": [str(exc)]}) from exc
    delivery_id = report.delivery_id
    delivery = (
        Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()
        if delivery_id is not None
        else None
    )
    if delivery is None:
        reason = f"report names no delivery of ours (delivery id {delivery_id})"
        for recipient in report.recipients:
            _bounce_event(
                key=_report_key(raw, recipient.address, recipient.status),
                kind=BounceKind.UNKNOWN,
                delivery=None,
                address=recipient.address,
                status_code=recipient.status,
                diagnostic=recipient.diagnostic,
                reason=reason,
            )
        logger.warning("messaging: %s", reason)
        raise ValidationError({"body": [_("The report names no delivery of ours.")]})
    if report.feedback:
        complaint_record(delivery_id=delivery.pk, feedback_id=_report_key(raw, "arf"))
        return [delivery]
    with transaction.atomic():
        return _apply_dsn(raw, report, delivery)


def _apply_dsn(raw: bytes, report: Any, delivery: Delivery) -> list[Delivery]:
    done = []
    limit, window = soft_bounce_policy()
    for recipient in report.recipients:
        address = recipient.address or delivery.to_address
        detail = {"recipient_status": recipient.status, "diagnostic": recipient.diagnostic[:200]}
        kind = BounceKind.HARD if recipient.permanent else BounceKind.SOFT
        event = _bounce_event(
            key=_report_key(raw, recipient.address, recipient.status),
            kind=kind,
            delivery=delivery,
            address=address,
            status_code=recipient.status,
            diagnostic=recipient.diagnostic,
        )
        if event is None:
            continue  # the same report again
        if recipient.permanent:
            if DeliveryStatus.objects.filter(delivery=delivery, status=Status.BOUNCED).exists():
                continue
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Status.BOUNCED, reason=f"{recipient.status} {recipient.diagnostic}"[:300]
            )
            _history(delivery, Status.BOUNCED, recipient.status, **detail)
            suppression_add(
                channel_kind=ChannelKind.EMAIL,
                address=address,
                reason=SuppressionReason.HARD_BOUNCE,
                note=f"{recipient.status} delivery {delivery.pk}",
                delivery=delivery,
            )
            customer_services.event_record(
                type="email.bounced",
                customer=delivery.customer,
                source="messaging",
                properties={"delivery_id": delivery.pk, "status": recipient.status},
                message_id=f"msg-{delivery.pk}-email.bounced",
            )
        else:
            _history(delivery, Status.DEFERRED, f"remote: {recipient.status}", **detail)
            recent = BounceEvent.objects.filter(
                kind=BounceKind.SOFT,
                address_hash=event.address_hash,
                received_at__gte=now() - window,
            ).count()
            if address and recent >= limit:
                suppression_add(
                    channel_kind=ChannelKind.EMAIL,
                    address=address,
                    reason=SuppressionReason.SOFT_BOUNCES,
                    note=f"{recent} soft bounces in {window.days} days (delivery {delivery.pk})",
                    delivery=delivery,
                )
        done.append(delivery)
    return done


@transaction.atomic
def complaint_record(*, delivery_id: int, feedback_id: str = "") -> Delivery | None:
    """A spam complaint (ARF feedback, a provider's complaint webhook): suppress and stop
    marketing on the channel. A replayed complaint (same `feedback_id`, or a second one for
    the same delivery) changes nothing."""
    delivery = Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    address = delivery.to_address or _address_for(delivery)
    first = _bounce_event(
        key=f"complaint:{feedback_id or delivery.pk}",
        kind=BounceKind.COMPLAINT,
        delivery=delivery,
        address=address,
        source="complaint",
    )
    if first is None:
        return delivery
    suppression_add(
        channel_kind=delivery.channel.kind,
        address=address,
        reason=SuppressionReason.COMPLAINT,
        delivery=delivery,
    )
    _mark(delivery, Status.COMPLAINED, "email.complained")
    return delivery


# --- LINE ---------------------------------------------------------------------------------


@transaction.atomic
def line_link_code_issue(*, customer: Customer) -> LineLinkCode:
    """A one-time code the customer sends to the LINE account to link it (30 minutes)."""
    code = "KZ-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
    return LineLinkCode.objects.create(
        code=code, customer=customer, expires_at=now() + LINK_CODE_TTL
    )


def _line_link(channel: Channel, user_id: str, code: str) -> Customer | None:
    entry = (
        LineLinkCode.objects.select_for_update()
        .filter(code=code.strip().upper(), used_at__isnull=True, expires_at__gt=now())
        .select_related("customer")
        .first()
    )
    if entry is None:
        return None
    entry.used_at = now()
    entry.save(update_fields=["used_at"])
    contact, _created = LineContact.objects.get_or_create(channel=channel, line_user_id=user_id)
    contact.customer = entry.customer
    contact.following = True
    contact.save()
    identity = Identity.objects.filter(kind=IdentityKind.LINE, value=user_id).first()
    if identity is None:
        # Not a standard 'U…' id, or linked elsewhere: the contact link still holds.
        with contextlib.suppress(ValidationError):
            customer_services.identity_add(
                customer=entry.customer, kind=IdentityKind.LINE, value=user_id, source="line"
            )
    customer_services.event_record(
        type="line.linked",
        customer=entry.customer,
        source="line",
        properties={"channel_id": channel.pk},
    )
    return entry.customer


def _contact_customer(channel: Channel, user_id: str) -> Customer | None:
    contact = LineContact.objects.filter(channel=channel, line_user_id=user_id).first()
    if contact and contact.customer_id:
        return contact.customer
    return customer_selectors.customer_find_by_identity(kind=IdentityKind.LINE, value=user_id)


@transaction.atomic
def line_event_apply(*, channel: Channel, event: dict[str, Any]) -> str:
    """Apply one verified LINE webhook event (a dict as LINE sends it). Returns what was
    done: 'duplicate' for a replayed webhookEventId."""
    from kizuna.messaging.models import WebhookReceipt

    event_id = str(event.get("webhookEventId") or "")
    kind = str(event.get("type") or "")
    if not event_id:
        return "ignored"
    try:
        with transaction.atomic():
            WebhookReceipt.objects.create(event_id=event_id, channel=channel, type=kind[:40])
    except IntegrityError:
        return "duplicate"
    source = event.get("source") or {}
    user_id = str(source.get("userId") or "")
    if not user_id:
        return "ignored"
    customer = _contact_customer(channel, user_id)
    properties: dict[str, Any] = {"channel_id": channel.pk, "line_event_id": event_id}
    if kind in ("follow", "unfollow"):
        contact, _c = LineContact.objects.get_or_create(
            channel=channel, line_user_id=user_id, defaults={"customer": customer}
        )
        contact.following = kind == "follow"
        if customer and not contact.customer_id:
            contact.customer = customer
        contact.save()
    elif kind == "message":
        message = event.get("message") or {}
        text = str(message.get("text") or "")
        properties["message_type"] = message.get("type", "")
        if text:
            properties["text"] = text[:1000]
        if text.strip().upper().startswith("KZ-"):
            linked = _line_link(channel, user_id, text)
            if linked is not None:
                customer = linked
                properties["linked"] = True
    elif kind == "postback":
        properties["data"] = str((event.get("postback") or {}).get("data", ""))[:300]
    elif kind == "accountLink":
        link = event.get("link") or {}
        if link.get("result") == "ok" and link.get("nonce"):
            linked = _line_link(channel, user_id, str(link["nonce"]))
            customer = linked or customer
    customer_services.event_record(
        type=f"line.{LINE_EVENT_NAMES.get(kind, kind)}",
        customer=customer,
        anonymous_id="" if customer else f"line:{user_id}",
        source="line",
        properties=properties,
        message_id=f"line-{event_id}",
    )
    return kind


# --- preference centre ----------------------------------------------------------------------


@transaction.atomic
def preferences_save(
    *,
    customer: Customer,
    channels: dict[str, bool],
    topics: list[str],
    frequency: str,
    interests: list[str] | None = None,
    source: str = "preference_centre",
) -> Preference:
    """Save the customer's choices: channel opt-ins/outs go to the consent ledger (only
    changes are recorded), topics and frequency to their preference, interests to a trait."""
    errors: dict[str, list[str]] = {}
    if frequency not in Frequency.values:
        errors["frequency"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Frequency.values)}]
    for channel in channels:
        if channel not in ("email", "line"):
            errors[f"channels.{channel}"] = [_("Unknown channel.")]
    if not all(isinstance(t, str) and 0 < len(t) <= 50 for t in topics):
        errors["topics"] = [_("Topics are short texts.")]
    _raise(errors)
    for channel, wanted in channels.items():
        current = customer_selectors.has_consent(
            customer=customer, purpose="marketing", channel=channel
        )
        if wanted != current:
            customer_services.consent_record(
                customer=customer,
                purpose="marketing",
                channel=channel,
                status=ConsentStatus.GRANTED if wanted else ConsentStatus.WITHDRAWN,
                source=source,
                evidence={"page": "preferences"},
            )
    preference, _created = Preference.objects.update_or_create(
        customer=customer, defaults={"topics": sorted(set(topics)), "frequency": frequency}
    )
    if interests is not None:
        # Zero-party data: a declared text trait, written through the profile's own service.
        if not customer_selectors.trait_definitions().filter(key=INTERESTS_TRAIT).exists():
            customer_services.trait_definition_create(
                key=INTERESTS_TRAIT, label="Interests", type="string"
            )
        value = ", ".join(sorted({i.strip() for i in interests if i.strip()})) or None
        customer_services.customer_update(
            customer=customer, data={"traits": {INTERESTS_TRAIT: value}}, source=source
        )
        customer.refresh_from_db(fields=["traits"])
    customer_services.event_record(
        type="preferences.updated",
        customer=customer,
        source=source,
        properties={"frequency": frequency, "topics": sorted(set(topics))},
    )
    return preference
