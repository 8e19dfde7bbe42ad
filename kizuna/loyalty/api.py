"""REST API of the loyalty programme: balance, ledger, rewards, coupons, adjustments.
Writes carry an idempotency key (the `Idempotency-Key` header or the body field)."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import date, datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Header, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StrictInt

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.models import Customer
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles, prime_known_names
from kizuna.loyalty import selectors, services
from kizuna.loyalty.models import CouponDefinition, CouponUse, LedgerEntry

router = Router(tags=["loyalty"])


class ExpiringOut(Schema):
    expires_on: date
    points: int


class BalanceOut(Schema):
    customer_id: int
    member_number: str | None
    balance: int
    tier: str | None
    tier_value: int
    next_tier: str | None
    to_next_tier: int
    expiring: list[ExpiringOut]


class EntryOut(Schema, MaskedForRoles):
    # Staff reasons may quote contact details.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"reason"})

    id: int
    kind: str
    points: int
    balance_after: int
    reason: str
    source: str
    source_ref: str
    idempotency_key: str
    occurred_at: datetime


class RedemptionOut(Schema):
    id: int
    reward: str
    points: int
    entry: EntryOut
    balance: int


class CouponOut(Schema):
    code: str
    customer_id: int | None
    definition_id: int
    valid_until: datetime | None


class CouponUseOut(Schema):
    id: int
    code: str
    discount_minor: int
    order_total_minor: int
    order_ref: str


class KeyedIn(InputSchema):
    idempotency_key: str | None = Field(None, min_length=1, max_length=120)


class RedeemIn(KeyedIn):
    reward: str = Field(..., min_length=1, max_length=50, description="Reward code")


class CouponUseIn(KeyedIn):
    code: str = Field(..., min_length=1, max_length=40)
    order_total_minor: StrictInt = Field(..., ge=0)
    order_ref: str = Field("", max_length=64)


class CouponIssueIn(KeyedIn):
    definition_id: int
    customer_ids: list[int] = Field(default_factory=list, max_length=10_000)
    count: StrictInt = Field(0, ge=0, le=100_000, description="Bearer codes when no customers")


class AdjustIn(KeyedIn):
    points: StrictInt = Field(..., description="Positive to add, negative to remove")
    reason: str = Field(..., min_length=1, max_length=200)


def _customer(customer_id: int) -> Customer:
    return customer_get(customer_id=customer_id)


def _key(header: str | None, body: str | None) -> str:
    if header and body and header != body:
        raise ValidationError(
            {
                "idempotency_key": _(
                    "The Idempotency-Key header and the idempotency_key field differ."
                )
            }
        )
    key = header or body
    if not key:
        raise ValidationError({"idempotency_key": _("An Idempotency-Key header is required.")})
    return key


def _entry(entry: Any) -> dict[str, Any]:
    return EntryOut.model_validate(entry, from_attributes=True).model_dump()


IDEMPOTENCY = Header(None, alias="Idempotency-Key", min_length=1, max_length=120)


@router.get(
    "/customers/{customer_id}/loyalty",
    response=responses({200: BalanceOut}, lookup=True),
    auth=require_perm("loyalty.view_account"),
)
def balance(request: HttpRequest, customer_id: int) -> dict[str, Any]:
    card = selectors.member_card(customer=_customer(customer_id))
    return {
        "customer_id": customer_id,
        "member_number": card.account.member_number if card.account else None,
        "balance": card.balance,
        "tier": card.tier.code if card.tier else None,
        "tier_value": card.tier_value,
        "next_tier": card.next_tier.code if card.next_tier else None,
        "to_next_tier": card.to_next,
        "expiring": [{"expires_on": d, "points": p} for d, p in card.expiring],
    }


@router.get(
    "/customers/{customer_id}/loyalty/ledger",
    response=responses({200: list[EntryOut]}, lookup=True, query=True),
    auth=require_perm("loyalty.view_ledgerentry"),
)
@paginate(PagePagination)
def ledger(request: HttpRequest, customer_id: int) -> Any:
    customer = _customer(customer_id)
    prime_known_names(request, customer)  # masked roles: the customer's names in reasons
    account = selectors.account_get(customer=customer)
    if account is None:
        return []
    return selectors.ledger_list(account=account)


@router.post(
    "/customers/{customer_id}/loyalty/redemptions",
    response=responses({200: RedemptionOut, 201: RedemptionOut}, lookup=True, body=True),
    auth=require_perm("loyalty.add_redemption"),
)
def redeem(
    request: HttpRequest,
    customer_id: int,
    payload: RedeemIn,
    idempotency_key: str | None = IDEMPOTENCY,
) -> Any:
    """Exchange points for a reward. A retry with the same key answers 200 with the
    original redemption; a key reused for another request is a 422."""
    customer = _customer(customer_id)
    key = _key(idempotency_key, payload.idempotency_key)
    result = services.reward_redeem_result(
        customer=customer, reward=payload.reward, idempotency_key=key, actor=request_actor(request)
    )
    redemption = result.redemption
    body = {
        "id": redemption.pk,
        "reward": payload.reward,
        "points": redemption.points,
        "entry": _entry(redemption.entry),
        "balance": result.balance,
    }
    return Status(201 if result.created else 200, body)


@router.post(
    "/customers/{customer_id}/loyalty/adjustments",
    response=responses({200: EntryOut, 201: EntryOut}, lookup=True, body=True),
    auth=require_perm("loyalty.add_ledgerentry"),
)
def adjust(
    request: HttpRequest,
    customer_id: int,
    payload: AdjustIn,
    idempotency_key: str | None = IDEMPOTENCY,
) -> Any:
    """A staff correction (administrators): positive or negative, with a reason."""
    customer = _customer(customer_id)
    key = _key(idempotency_key, payload.idempotency_key)
    replay = LedgerEntry.objects.filter(idempotency_key=key).exists()
    entry = services.points_adjust(
        customer=customer,
        points=payload.points,
        idempotency_key=key,
        reason=payload.reason,
        actor=request_actor(request),
    )
    return Status(200 if replay else 201, entry)


@router.post(
    "/loyalty/coupons/issue",
    response=responses({201: list[CouponOut]}, body=True),
    auth=require_perm("loyalty.add_coupon"),
)
def coupon_issue(
    request: HttpRequest, payload: CouponIssueIn, idempotency_key: str | None = IDEMPOTENCY
) -> Any:
    key = _key(idempotency_key, payload.idempotency_key)
    definition = CouponDefinition.objects.filter(pk=payload.definition_id).first()
    if definition is None:
        raise ValidationError({"definition_id": _("No such coupon.")})
    customers = list(Customer.objects.filter(pk__in=payload.customer_ids))
    missing = set(payload.customer_ids) - {c.pk for c in customers}
    if missing:
        raise ValidationError(
            {"customer_ids": _("No customer with id %(id)s.") % {"id": min(missing)}}
        )
    coupons = services.coupons_issue(
        definition=definition, idempotency_key=key, customers=customers, count=payload.count
    )
    return Status(201, coupons)


@router.post(
    "/customers/{customer_id}/loyalty/coupon-uses",
    response=responses({200: CouponUseOut, 201: CouponUseOut}, lookup=True, body=True),
    auth=require_perm("loyalty.add_couponuse"),
)
def coupon_use(
    request: HttpRequest,
    customer_id: int,
    payload: CouponUseIn,
    idempotency_key: str | None = IDEMPOTENCY,
) -> Any:
    customer = _customer(customer_id)
    key = _key(idempotency_key, payload.idempotency_key)
    replay = CouponUse.objects.filter(idempotency_key=key).exists()
    use = services.coupon_redeem(
        customer=customer,
        code=payload.code,
        order_total_minor=payload.order_total_minor,
        idempotency_key=key,
        order_ref=payload.order_ref,
    )
    body = {
        "id": use.pk,
        "code": payload.code.strip().upper(),
        "discount_minor": use.discount_minor,
        "order_total_minor": use.order_total_minor,
        "order_ref": use.order_ref,
    }
    return Status(200 if replay else 201, body)
