"""REST API of data-subject requests (/privacy/requests: open, list, export as a zip, erase,
reject), erasure records, purpose-of-use notices, email opt-ins (double opt-in) and the
retention runs' reports. See docs/privacy.md."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.privacy import double_opt_in, retention, selectors, services
from kizuna.privacy.models import DataSubjectRequest, EmailConfirmation, PurposeNotice

router = Router(tags=["privacy"])
RowId = Annotated[int, Field(ge=1, le=2**62)]


class LogOut(Schema):
    at: datetime
    action: str
    message: str
    actor_id: int | None


class RequestOut(Schema):
    id: int
    kind: str
    customer_id: int
    status: str
    due_on: date
    note: str
    requested_by_id: int | None
    completed_by_id: int | None
    created_at: datetime
    completed_at: datetime | None


class RequestDetailOut(RequestOut):
    log: list[LogOut]


class RequestIn(InputSchema):
    kind: str = Field(..., description='"export" or "erase"')
    customer_id: RowId
    note: str = Field("", max_length=500, description="How it arrived (no personal data)")


class RejectIn(InputSchema):
    reason: str = Field(..., min_length=1, max_length=500)


class ErasureOut(Schema):
    id: int
    customer_ref: int
    request_id: int | None
    pseudonym: str
    kinds: dict[str, int]
    customer_ids: list[int]
    erased_at: datetime
    erased_by_id: int | None


class NoticeOut(Schema):
    id: int
    purpose: str
    version: int
    title: str
    text: str
    text_en: str
    effective_from: datetime
    created_at: datetime


class NoticeIn(InputSchema):
    purpose: str
    title: str = Field(..., min_length=1, max_length=200)
    text: str = Field(..., min_length=1, max_length=20000)
    text_en: str = Field("", max_length=20000)
    effective_from: datetime | None = None


def _detail(request: DataSubjectRequest) -> dict[str, Any]:
    data = RequestOut.from_orm(request).model_dump()
    data["log"] = [LogOut.from_orm(e).model_dump() for e in request.log_entries.all()]
    return data


@router.get(
    "/privacy/requests",
    response=responses({200: list[RequestOut]}, query=True),
    auth=require_perm("privacy.view_datasubjectrequest"),
)
@paginate(PagePagination)
def request_list(request: HttpRequest, status: str | None = None) -> Any:
    return selectors.request_list(status=status)


@router.post(
    "/privacy/requests",
    response=responses({201: RequestDetailOut}, body=True),
    auth=require_perm("privacy.add_datasubjectrequest"),
)
def request_create(request: HttpRequest, payload: RequestIn) -> Status[dict[str, Any]]:
    """Open a request, due in PRIVACY_REQUEST_DUE_DAYS (30) days."""
    created = services.request_create(
        kind=payload.kind,
        customer=customer_get(customer_id=payload.customer_id),
        note=payload.note,
        actor=request_actor(request),
    )
    return Status(201, _detail(created))


@router.get(
    "/privacy/requests/{request_id}",
    response=responses({200: RequestDetailOut}, lookup=True),
    auth=require_perm("privacy.view_datasubjectrequest"),
)
def request_get(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _detail(selectors.request_get(request_id=request_id))


@router.post(
    "/privacy/requests/{request_id}/export",
    response=responses({200: None}, lookup=True, body=True),
    auth=require_perm("privacy.export_customer"),
)
def request_export(request: HttpRequest, request_id: int) -> HttpResponse:
    """Build the export (a zip: JSON and CSV per kind, manifest.json) and complete the
    request. The file is not kept: save the response."""
    found = selectors.request_get(request_id=request_id)
    data = services.request_export(request=found, actor=request_actor(request))
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="kizuna-export-{found.pk}.zip"'
    return response


@router.post(
    "/privacy/requests/{request_id}/erase",
    response=responses({200: ErasureOut}, lookup=True, body=True),
    auth=require_perm("privacy.erase_customer"),
)
def request_erase(request: HttpRequest, request_id: int) -> Any:
    """Erase the customer (and the profiles merged into it) and complete the request."""
    found = selectors.request_get(request_id=request_id)
    return services.request_erase(request=found, actor=request_actor(request))


@router.post(
    "/privacy/requests/{request_id}/reject",
    response=responses({200: RequestDetailOut}, lookup=True, body=True),
    auth=require_perm("privacy.change_datasubjectrequest"),
)
def request_reject(request: HttpRequest, request_id: int, payload: RejectIn) -> dict[str, Any]:
    found = selectors.request_get(request_id=request_id)
    rejected = services.request_reject(
        request=found, reason=payload.reason, actor=request_actor(request)
    )
    return _detail(rejected)


@router.get(
    "/privacy/erasures",
    response=responses({200: list[ErasureOut]}, query=True),
    auth=require_perm("privacy.view_erasurerecord"),
)
@paginate(PagePagination)
def erasure_list(request: HttpRequest) -> Any:
    return selectors.erasure_list()


@router.get(
    "/privacy/notices",
    response=responses({200: list[NoticeOut]}, query=True),
    auth=require_perm("privacy.view_purposenotice"),
)
@paginate(PagePagination)
def notice_list(request: HttpRequest, purpose: str | None = None) -> Any:
    return selectors.notice_list(purpose=purpose)


@router.post(
    "/privacy/notices",
    response=responses({201: NoticeOut}, body=True),
    auth=require_perm("privacy.add_purposenotice"),
)
def notice_publish(request: HttpRequest, payload: NoticeIn) -> Status[PurposeNotice]:
    """Publish the next version of a purpose's notice (versions are never edited)."""
    notice = services.notice_publish(**payload.model_dump(), actor=request_actor(request))
    return Status(201, notice)


class OptInIn(InputSchema):
    customer_id: RowId
    source: str = Field("api", min_length=1, max_length=50)
    notice_version: str = Field("", max_length=50)
    evidence: dict[str, Any] | None = None


class OptInOut(Schema):
    status: str = Field(..., description='"granted" (consent recorded) or "pending" (link sent)')
    consent_entry_id: int | None = None
    confirmation_id: int | None = None
    expires_at: datetime | None = None


@router.post(
    "/privacy/opt-ins",
    response=responses({201: OptInOut, 202: OptInOut}, lookup=True, body=True),
    auth=require_perm("customers.add_consententry"),
)
def email_opt_in(request: HttpRequest, payload: OptInIn) -> Status[dict[str, Any]]:
    """A customer's subscription to marketing email: granted at once (201), or, with double
    opt-in for the source (PRIVACY_DOUBLE_OPT_IN), pending until they confirm the emailed
    link (202). Until then no marketing email is sent."""
    result = double_opt_in.email_opt_in(
        customer=customer_get(customer_id=payload.customer_id),
        source=payload.source,
        notice_version=payload.notice_version,
        evidence=payload.evidence,
        actor=request_actor(request),
    )
    if isinstance(result, EmailConfirmation):
        return Status(
            202,
            {
                "status": result.status,
                "confirmation_id": result.pk,
                "expires_at": result.expires_at,
            },
        )
    return Status(201, {"status": "granted", "consent_entry_id": result.pk})


class PolicyOut(Schema):
    key: str = Field(..., description="events, delivery_bodies, inbox, inquiries, survey_text")
    setting: str
    period: int = Field(..., description="0: the policy is off")
    unit: str = Field(..., description='"days" or "months"')


class RetentionRunOut(Schema):
    id: int
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    dry_run: bool
    trigger: str
    report: dict[str, dict[str, Any]] = Field(
        ..., description="Per policy: cutoff, rows (and aggregates, messages, attachments), seconds"
    )
    errors: dict[str, str] = Field(..., description="Policies that failed (rolled back)")


@router.get(
    "/privacy/retention-policies",
    response=responses({200: list[PolicyOut]}),
    auth=require_perm("privacy.view_retentionrun"),
)
def retention_policies(request: HttpRequest) -> Any:
    """The retention policies as configured (settings PRIVACY_RETAIN_*)."""
    return retention.policies()


@router.get(
    "/privacy/retention-runs",
    response=responses({200: list[RetentionRunOut]}, query=True),
    auth=require_perm("privacy.view_retentionrun"),
)
@paginate(PagePagination)
def retention_run_list(request: HttpRequest, dry_run: bool | None = None) -> Any:
    """The retention runs, newest first: what each policy did, how long, and errors."""
    return selectors.retention_runs(dry_run=dry_run)
