"""Reads of support: the queue, one inquiry with its thread, SLA state and breaches, and the
KPIs (first-response time, resolution time, breaches)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.support.choices import ACTIVE_STATUSES, Direction
from kizuna.support.models import CannedAnswer, FaqArticle, Inquiry, Message


@dataclass(frozen=True)
class SlaState:
    first_response_breached: bool
    resolution_breached: bool
    due_soon: bool  # an active inquiry whose next due time is within the hour

    @property
    def breached(self) -> bool:
        return self.first_response_breached or self.resolution_breached


def sla_state(inquiry: Inquiry, at: datetime | None = None) -> SlaState:
    """Pure over the inquiry's fields: a due time is breached when it passed before the
    response/resolution (or passed with none yet while the inquiry is active)."""
    at = at or now()
    active = inquiry.status in ACTIVE_STATUSES
    if inquiry.first_responded_at is not None:
        first = inquiry.first_responded_at > inquiry.first_response_due
    else:
        first = active and at > inquiry.first_response_due
    if inquiry.resolved_at is not None:
        resolution = inquiry.resolved_at > inquiry.resolution_due
    else:
        resolution = active and at > inquiry.resolution_due
    next_due = (
        inquiry.first_response_due if inquiry.first_responded_at is None else inquiry.resolution_due
    )
    soon = active and not (first or resolution) and next_due - at <= timedelta(hours=1)
    return SlaState(first, resolution, soon)


def breached_q(at: datetime | None = None) -> Q:
    """Active inquiries past a due time (the queue's highlight and filter)."""
    at = at or now()
    return Q(status__in=ACTIVE_STATUSES) & (
        Q(first_responded_at__isnull=True, first_response_due__lt=at) | Q(resolution_due__lt=at)
    )


def inquiry_list(
    *,
    status: str | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    breached: bool = False,
    customer: Customer | None = None,
    q: str = "",
) -> QuerySet[Inquiry]:
    """The queue: active first (by the nearest due time) unless a status is asked for."""
    items = Inquiry.objects.select_related("customer", "assignee")
    if status == "active" or status is None:
        items = items.filter(status__in=ACTIVE_STATUSES)
    elif status != "all":
        items = items.filter(status=status)
    if assignee_id is not None:
        items = items.filter(assignee_id=assignee_id)
    if unassigned:
        items = items.filter(assignee__isnull=True)
    if breached:
        items = items.filter(breached_q())
    if customer is not None:
        items = items.filter(customer=customer)
    if q:
        items = items.filter(
            Q(subject__icontains=q)
            | Q(contact_email__icontains=q)
            | Q(contact_name__icontains=q)
            | Q(reply_token=q.strip().lstrip("#").upper())
        )
    return items.order_by("resolution_due", "id")


def inquiry_get(*, inquiry_id: int) -> Inquiry:
    try:
        return Inquiry.objects.select_related("customer", "assignee").get(pk=inquiry_id)
    except Inquiry.DoesNotExist as exc:
        raise NotFound("inquiry", inquiry_id) from exc


def thread(*, inquiry: Inquiry, include_notes: bool = True) -> list[Message]:
    items = inquiry.messages.select_related("author", "faq_article").prefetch_related("attachments")
    if not include_notes:
        items = items.exclude(direction=Direction.NOTE)
    return list(items.order_by("created_at", "id"))


def last_inquiry_for_line(*, line_user_id: str, channel_id: int | None) -> Inquiry | None:
    """The active LINE conversation with this user, which a new LINE message continues."""
    return (
        Inquiry.objects.filter(
            contact_line_user_id=line_user_id,
            line_channel_id=channel_id,
            status__in=ACTIVE_STATUSES,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def inquiry_by_reference(*, token: str) -> Inquiry | None:
    return Inquiry.objects.filter(reply_token=token.strip().upper()).first()


def inquiry_by_email_ids(*, message_ids: list[str]) -> Inquiry | None:
    """The inquiry whose thread has one of these Message-IDs (of an inbound email, or of a
    reply we sent: ours are <delivery key.delivery id@domain>)."""
    ids = [m.strip().strip("<>") for m in message_ids if m.strip()]
    if not ids:
        return None
    local = [m.split("@", 1)[0] for m in ids]
    found = (
        Message.objects.filter(Q(email_message_id__in=ids) | Q(email_message_id__in=local))
        .exclude(email_message_id="")
        .select_related("inquiry")
        .order_by("-created_at")
        .first()
    )
    return found.inquiry if found else None


def canned_answers(*, active_only: bool = True) -> QuerySet[CannedAnswer]:
    items = CannedAnswer.objects.all()
    return items.filter(active=True) if active_only else items


def faq_articles(
    *, locale: str | None = None, published: bool | None = None
) -> QuerySet[FaqArticle]:
    items = FaqArticle.objects.all()
    if locale:
        items = items.filter(locale=locale)
    if published is not None:
        items = items.filter(published=published)
    return items.order_by("key", "locale")


def faq_article_get(*, article_id: int) -> FaqArticle:
    try:
        return FaqArticle.objects.get(pk=article_id)
    except FaqArticle.DoesNotExist as exc:
        raise NotFound("faq article", article_id) from exc


@dataclass(frozen=True)
class Kpis:
    opened: int
    active: int
    breached_now: int
    first_response_breaches: int
    resolution_breaches: int
    first_response_median_minutes: float | None
    first_response_mean_minutes: float | None
    resolution_median_minutes: float | None
    resolution_mean_minutes: float | None
    auto_answered: int


def _minutes(deltas: list[timedelta]) -> tuple[float | None, float | None]:
    if not deltas:
        return None, None
    values = [d.total_seconds() / 60 for d in deltas]
    return round(statistics.median(values), 1), round(statistics.fmean(values), 1)


def kpis(*, since: datetime | None = None, until: datetime | None = None) -> Kpis:
    """KPIs of the inquiries opened in [since, until) (default: the last 30 days); the
    active and breached-now counts are of the whole queue at this moment."""
    until = until or now()
    since = since or until - timedelta(days=30)
    opened = Inquiry.objects.filter(created_at__gte=since, created_at__lt=until)
    rows = list(
        opened.values_list(
            "created_at",
            "first_responded_at",
            "first_response_due",
            "resolved_at",
            "resolution_due",
            "status",
        )
    )
    firsts = [fr - c for c, fr, _fd, _r, _rd, _s in rows if fr is not None]
    resolutions = [r - c for c, _fr, _fd, r, _rd, _s in rows if r is not None]
    at = now()
    first_breaches = sum(
        1
        for _c, fr, fd, _r, _rd, s in rows
        if (fr is not None and fr > fd) or (fr is None and s in ACTIVE_STATUSES and at > fd)
    )
    resolution_breaches = sum(
        1
        for _c, _fr, _fd, r, rd, s in rows
        if (r is not None and r > rd) or (r is None and s in ACTIVE_STATUSES and at > rd)
    )
    fr_median, fr_mean = _minutes(firsts)
    res_median, res_mean = _minutes(resolutions)
    return Kpis(
        opened=len(rows),
        active=Inquiry.objects.filter(status__in=ACTIVE_STATUSES).count(),
        breached_now=Inquiry.objects.filter(breached_q(at)).count(),
        first_response_breaches=first_breaches,
        resolution_breaches=resolution_breaches,
        first_response_median_minutes=fr_median,
        first_response_mean_minutes=fr_mean,
        resolution_median_minutes=res_median,
        resolution_mean_minutes=res_mean,
        auto_answered=opened.filter(messages__auto=True).distinct().count(),
    )


def open_inquiries_of(*, customer: Customer, limit: int = 5) -> list[Inquiry]:
    return list(
        Inquiry.objects.filter(customer=customer, status__in=ACTIVE_STATUSES)
        .select_related("assignee")
        .order_by("resolution_due")[:limit]
    )
