"""Reads of the messaging layer."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from kizuna.core.errors import NotFound
from kizuna.customers import selectors as customer_selectors
from kizuna.customers.models import Customer
from kizuna.messaging.choices import Frequency
from kizuna.messaging.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    LineContact,
    Preference,
    Suppression,
    Template,
)


def channel_list() -> QuerySet[Channel]:
    return Channel.objects.order_by("kind", "name")


def channel_get(*, channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise NotFound("channel", channel_id)
    return channel


def template_list() -> QuerySet[Template]:
    return Template.objects.prefetch_related("variants").order_by("name")


def template_get(*, template_id: int | None = None, slug: str | None = None) -> Template:
    qs = Template.objects.prefetch_related("variants")
    template = (
        qs.filter(pk=template_id).first()
        if template_id is not None
        else qs.filter(slug=slug).first()
    )
    if template is None:
        raise NotFound("template", template_id if template_id is not None else slug)
    return template


def delivery_list(
    *,
    status: str | None = None,
    customer_id: int | None = None,
    channel_id: int | None = None,
    source: str | None = None,
) -> QuerySet[Delivery]:
    qs = Delivery.objects.select_related("customer", "channel", "template").order_by(
        "-created_at", "-id"
    )
    if status:
        qs = qs.filter(status=status)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if channel_id:
        qs = qs.filter(channel_id=channel_id)
    if source:
        qs = qs.filter(source=source)
    return qs


def delivery_get(*, delivery_id: int) -> Delivery:
    delivery = (
        Delivery.objects.select_related("customer", "channel", "template")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFound("delivery", delivery_id)
    return delivery


def delivery_history(*, delivery: Delivery) -> QuerySet[DeliveryStatus]:
    return delivery.history.order_by("at", "id")


def delivery_status_counts() -> dict[str, int]:
    return {
        row["status"]: row["n"]
        for row in Delivery.objects.values("status").annotate(n=Count("id")).order_by()
    }


def delivery_for_unsubscribe(*, delivery_id: Any) -> Delivery | None:
    if not isinstance(delivery_id, int):
        return None
    return Delivery.objects.select_related("customer", "channel").filter(pk=delivery_id).first()


def suppression_list() -> QuerySet[Suppression]:
    return Suppression.objects.order_by("-created_at", "-id")


def topic_choices() -> list[tuple[str, str]]:
    topics = (
        Template.objects.exclude(topic="").values_list("topic", flat=True).distinct().order_by()
    )
    return [(t, t) for t in sorted(set(topics))]


def preference_state(*, customer: Customer) -> dict[str, Any]:
    preference = Preference.objects.filter(customer=customer).first()
    return {
        "email": customer_selectors.has_consent(
            customer=customer, purpose="marketing", channel="email"
        ),
        "line": customer_selectors.has_consent(
            customer=customer, purpose="marketing", channel="line"
        ),
        "topics": preference.topics if preference else [],
        "frequency": preference.frequency if preference else Frequency.NORMAL,
        "interests": str((customer.traits or {}).get("interests", "")),
    }


def line_linked(*, customer: Customer) -> bool:
    return LineContact.objects.filter(customer=customer, following=True).exists()


def customer_deliveries(*, customer: Customer, limit: int = 10) -> list[Delivery]:
    return list(
        Delivery.objects.filter(customer=customer)
        .select_related("channel", "template")
        .order_by("-created_at", "-id")[:limit]
    )


# --- the live send panel -----------------------------------------------------------------

PANEL_WINDOW = 60  # seconds of sends the throughput is measured over
_WAITING = ("queued", "deferred", "sending")
_FINAL = ("sent", "delivered", "opened", "clicked", "bounced", "failed", "refused", "unknown")


def send_panel(*, lane: str | None = None, source_prefix: str | None = None) -> dict[str, Any]:
    """Throughput (sent per second over the last minute), backlog (queued, deferred,
    sending), ETA, final states and the top error reasons of the last hour, for one lane or
    one source prefix (a campaign), or everything."""
    from datetime import timedelta

    from django.db.models import Count

    from kizuna.core.timeutil import now
    from kizuna.messaging.models import Breaker, Delivery, SendHold

    moment = now()
    qs = Delivery.objects.all()
    if lane:
        qs = qs.filter(lane=lane)
    if source_prefix:
        qs = qs.filter(source__startswith=source_prefix)
    counts = dict(qs.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    recent = qs.filter(sent_at__gte=moment - timedelta(seconds=PANEL_WINDOW)).count()
    throughput = recent / PANEL_WINDOW
    backlog = sum(counts.get(s, 0) for s in ("queued", "deferred"))
    errors = list(
        qs.filter(
            status__in=["failed", "deferred", "bounced"],
            updated_at__gte=moment - timedelta(hours=1),
        )
        .values("status", "reason")
        .annotate(n=Count("id"))
        .order_by("-n")[:8]
    )
    holds = set(SendHold.objects.values_list("key", flat=True))
    breakers = list(
        Breaker.objects.select_related("channel")
        .exclude(state="closed")
        .values("channel_id", "channel__name", "state", "failures", "retry_at", "last_error")
    )
    return {
        "counts": counts,
        "waiting": {s: counts.get(s, 0) for s in _WAITING},
        "final": {s: counts.get(s, 0) for s in (*_FINAL, "cancelled")},
        "backlog": backlog,
        "throughput": throughput,
        "eta_seconds": (backlog / throughput) if throughput else None,
        "errors": [{**e, "reason": (e["reason"] or "")[:120]} for e in errors],
        "held": (f"lane:{lane}" in holds)
        if lane
        else bool(source_prefix and f"source:{source_prefix}" in holds),
        "breakers": breakers,
        "at": moment,
    }


def send_panels() -> list[dict[str, Any]]:
    from kizuna.messaging.lanes import LANES

    return [{"lane": lane, **send_panel(lane=lane)} for lane in LANES]
