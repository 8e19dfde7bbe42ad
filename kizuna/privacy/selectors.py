"""Reads of data-subject requests, erasure records, purpose notices and retention runs."""

from __future__ import annotations

from django.db.models import QuerySet

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import local_date, now
from kizuna.customers.models import Customer
from kizuna.privacy.models import (
    DataSubjectRequest,
    ErasureRecord,
    PurposeNotice,
    RequestStatus,
    RetentionRun,
)


def request_list(*, status: str | None = None) -> QuerySet[DataSubjectRequest]:
    rows = DataSubjectRequest.objects.select_related("requested_by", "completed_by")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("status", "due_on", "-id")


def request_get(*, request_id: int) -> DataSubjectRequest:
    try:
        return DataSubjectRequest.objects.select_related("customer").get(pk=request_id)
    except DataSubjectRequest.DoesNotExist as exc:
        raise NotFound("request", request_id) from exc


def requests_overdue() -> QuerySet[DataSubjectRequest]:
    return DataSubjectRequest.objects.filter(
        status=RequestStatus.OPEN, due_on__lt=local_date(now())
    )


def erasure_list() -> QuerySet[ErasureRecord]:
    return ErasureRecord.objects.select_related("erased_by").order_by("-erased_at", "-id")


def notice_list(*, purpose: str | None = None) -> QuerySet[PurposeNotice]:
    rows = PurposeNotice.objects.all()
    if purpose:
        rows = rows.filter(purpose=purpose)
    return rows.order_by("purpose", "-version")


def notice_current(*, purpose: str) -> PurposeNotice | None:
    """The newest version already in effect."""
    return (
        PurposeNotice.objects.filter(purpose=purpose, effective_from__lte=now())
        .order_by("-version")
        .first()
    )


def retention_runs(*, dry_run: bool | None = None) -> QuerySet[RetentionRun]:
    rows = RetentionRun.objects.all()
    if dry_run is not None:
        rows = rows.filter(dry_run=dry_run)
    return rows.order_by("-started_at", "-id")


NAME_FIELDS = ("locale", "family_name", "given_name", "family_name_kana", "given_name_kana")


def customer_names(customer_id: object) -> Customer | None:
    """A customer with only its names (and locale, for `display_name`) loaded, for masking
    them inside free text."""
    if not isinstance(customer_id, int):
        return None
    return Customer.objects.filter(pk=customer_id).only("pk", *NAME_FIELDS).first()
