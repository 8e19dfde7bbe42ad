"""Retention policies per data kind (docs/privacy.md, "Retention"): raw events older than
PRIVACY_RETAIN_EVENTS_MONTHS are counted per type and month into EventAggregate and then
deleted; delivery bodies (rendered content, extra context) older than
PRIVACY_RETAIN_DELIVERY_BODIES_DAYS are blanked (the delivery rows and their statuses stay
for the statistics); processed tracking batches older than PRIVACY_RETAIN_INBOX_DAYS are
deleted; support inquiries closed or resolved more than PRIVACY_RETAIN_INQUIRIES_DAYS ago
lose their contact details, subject, message bodies and attachments (the rows, statuses and
SLA times stay for the support statistics); survey answers submitted more than
PRIVACY_RETAIN_SURVEY_TEXT_MONTHS ago lose their free text and its terms (scores and
choices stay, so NPS/CSAT do not change). 0 turns a policy off. Each run is recorded as a
RetentionRun with its report (rows per policy, seconds each), its duration and the error of
any policy that failed (it is rolled back; the other policies still run)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import TruncMonth

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.messaging.models import Delivery
from kizuna.privacy.models import EventAggregate, RetentionRun
from kizuna.support.models import Attachment, Inquiry
from kizuna.support.models import Message as InquiryMessage
from kizuna.surveys.models import Answer
from kizuna.tracking.models import InboxBatch

CHUNK = 20_000
logger = logging.getLogger(__name__)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _months_ago(moment: datetime, months: int) -> datetime:
    year, month = moment.year, moment.month - months
    while month <= 0:
        year, month = year - 1, month + 12
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def _events(cutoff: datetime, dry_run: bool) -> dict[str, Any]:
    old = Event.objects.filter(occurred_at__lt=cutoff)
    if dry_run:
        return {"cutoff": cutoff.isoformat(), "rows": old.count()}
    deleted = aggregates = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:CHUNK])
        if not ids:
            break
        with transaction.atomic():
            batch = Event.objects.filter(pk__in=ids)
            groups = (
                batch.annotate(m=TruncMonth("occurred_at"))
                .values("type", "m")
                .annotate(n=Count("pk"), c=Count("customer_id", distinct=True))
            )
            for group in groups:
                month = group["m"].date() if isinstance(group["m"], datetime) else group["m"]
                assert isinstance(month, date)
                row, _created = EventAggregate.objects.select_for_update().get_or_create(
                    type=group["type"], month=month
                )
                # Customers per chunk are summed: an upper bound when a month spans chunks.
                EventAggregate.objects.filter(pk=row.pk).update(
                    count=F("count") + group["n"], customers=F("customers") + group["c"]
                )
                aggregates += 1
            deleted += batch.delete()[0]
    # rows: events counted into aggregates and deleted; aggregates: (type, month) updates.
    return {"cutoff": cutoff.isoformat(), "rows": deleted, "aggregates": aggregates}


def _delivery_bodies(cutoff: datetime, dry_run: bool) -> dict[str, Any]:
    old = Delivery.objects.filter(created_at__lt=cutoff).exclude(rendered={}, extra_context={})
    rows = old.count() if dry_run else old.update(rendered={}, extra_context={})
    return {"cutoff": cutoff.isoformat(), "rows": rows}


def _inbox(cutoff: datetime, dry_run: bool) -> dict[str, Any]:
    old = InboxBatch.objects.filter(processed_at__isnull=False, processed_at__lt=cutoff)
    rows = old.count() if dry_run else old.delete()[0]
    return {"cutoff": cutoff.isoformat(), "rows": rows}


RETENTION_SUBJECT = "-"  # what an expired inquiry's subject becomes (no personal data)


def _inquiries(cutoff: datetime, dry_run: bool) -> dict[str, Any]:
    """Inquiries finished (closed, or resolved and never closed) before the cutoff."""
    done = Inquiry.objects.filter(
        Q(closed_at__lt=cutoff) | Q(closed_at__isnull=True, resolved_at__lt=cutoff),
        status__in=["resolved", "closed"],
    )
    personal = done.filter(
        ~Q(contact_name="")
        | ~Q(contact_email="")
        | ~Q(contact_line_user_id="")
        | ~Q(subject=RETENTION_SUBJECT)
    )
    messages = InquiryMessage.objects.filter(inquiry__in=done).filter(
        ~Q(body="") | ~Q(email_message_id="")
    )
    attachments = Attachment.objects.filter(message__inquiry__in=done)
    if dry_run:
        return {
            "cutoff": cutoff.isoformat(),
            "rows": personal.count(),
            "messages": messages.count(),
            "attachments": attachments.count(),
        }
    with transaction.atomic():
        n_attachments = attachments.delete()[0]
        n_messages = messages.update(body="", email_message_id="")
        rows = personal.update(
            contact_name="", contact_email="", contact_line_user_id="", subject=RETENTION_SUBJECT
        )
    return {
        "cutoff": cutoff.isoformat(),
        "rows": rows,
        "messages": n_messages,
        "attachments": n_attachments,
    }


def _survey_text(cutoff: datetime, dry_run: bool) -> dict[str, Any]:
    old = Answer.objects.filter(response__submitted_at__lt=cutoff).filter(
        ~Q(text="") | ~Q(terms=[])
    )
    rows = old.count() if dry_run else old.update(text="", terms=[])
    return {"cutoff": cutoff.isoformat(), "rows": rows}


# Policy key, its setting, default, unit and function (the order they run in).
POLICIES: list[tuple[str, str, int, str, Callable[[datetime, bool], dict[str, Any]]]] = [
    ("events", "PRIVACY_RETAIN_EVENTS_MONTHS", 25, "months", _events),
    ("delivery_bodies", "PRIVACY_RETAIN_DELIVERY_BODIES_DAYS", 180, "days", _delivery_bodies),
    ("inbox", "PRIVACY_RETAIN_INBOX_DAYS", 30, "days", _inbox),
    ("inquiries", "PRIVACY_RETAIN_INQUIRIES_DAYS", 1095, "days", _inquiries),
    ("survey_text", "PRIVACY_RETAIN_SURVEY_TEXT_MONTHS", 24, "months", _survey_text),
]


def policies() -> list[dict[str, Any]]:
    """The configured policies: key, setting, period and unit (0: off)."""
    return [
        {"key": key, "setting": name, "period": _setting(name, default), "unit": unit}
        for key, name, default, unit, _fn in POLICIES
    ]


def _cutoff(moment: datetime, period: int, unit: str) -> datetime:
    return _months_ago(moment, period) if unit == "months" else moment - timedelta(days=period)


def run(*, dry_run: bool = False, at: datetime | None = None, trigger: str = "") -> RetentionRun:
    """Apply (or, dry run, only count) every policy; record and return the run. A policy
    that fails is rolled back and its error recorded; the others still run."""
    moment = at or now()
    started = time.monotonic()
    record = RetentionRun.objects.create(dry_run=dry_run, trigger=trigger[:20])
    report: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, name, default, unit, fn in POLICIES:
        period = _setting(name, default)
        if period <= 0:
            continue
        began = time.monotonic()
        try:
            with transaction.atomic():
                report[key] = fn(_cutoff(moment, period, unit), dry_run)
        except Exception as exc:
            logger.exception("retention policy %s failed", key)
            errors[key] = f"{type(exc).__name__}: {exc}"[:500]
            report[key] = {"cutoff": _cutoff(moment, period, unit).isoformat(), "rows": 0}
        report[key]["seconds"] = round(time.monotonic() - began, 3)
    record.report, record.errors = report, errors
    record.finished_at = now()
    record.duration_seconds = round(time.monotonic() - started, 3)
    record.save(update_fields=["report", "errors", "finished_at", "duration_seconds"])
    return record
