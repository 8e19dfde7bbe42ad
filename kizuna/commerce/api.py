"""REST API of commerce: orders (with lines) and refunds."""
# No `from __future__ import annotations`: ninja reads these annotations at import time,
# through the pagination wrapper, whose module cannot resolve names of this one.

from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import AwareDatetime, StrictInt

from kizuna.commerce import selectors, services
from kizuna.commerce.models import Order, OrderStatus, Refund, SalesChannel
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.core.errors import NotFound
from kizuna.core.money import DEFAULT_CURRENCY
from kizuna.customers.models import Customer
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles

router = Router(tags=["commerce"])

API_SOURCE = "api"


class OrderLineOut(Schema):
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    total_minor: int


class RefundOut(Schema, MaskedForRoles):
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"reason"})

    id: int
    order_id: int
    amount_minor: int
    currency: str
    reason: str
    idempotency_key: str
    created_at: datetime

    @staticmethod
    def resolve_currency(obj: Refund) -> str:
        return obj.order.currency


class OrderSummaryOut(Schema):
    id: int
    number: str
    customer_id: int
    placed_at: datetime
    status: str
    currency: str
    subtotal_minor: int
    discount_minor: int
    total_minor: int
    refunded_minor: int
    channel: str
    store: str
    source: str


class OrderOut(OrderSummaryOut, MaskedForRoles):
    customer_field: ClassVar[str | None] = "customer_id"  # names in refund reasons

    lines: list[OrderLineOut]
    refunds: list[RefundOut]


class OrderLineIn(InputSchema):
    sku: str = Field(..., min_length=1, max_length=64)
    quantity: StrictInt = Field(1, ge=1, le=10_000)
    unit_price_minor: StrictInt | None = Field(
        None, ge=0, description="Defaults to the product's price; integer minor units"
    )
    name: str | None = Field(None, max_length=200, description="Defaults to the product's name")


class OrderIn(InputSchema):
    """Placing an order number that exists for the same customer returns that order
    unchanged, so an import can be retried safely."""

    number: str = Field(..., min_length=1, max_length=64)
    customer_id: int
    lines: list[OrderLineIn] = Field(..., min_length=1, max_length=services.MAX_LINES)
    placed_at: AwareDatetime | None = Field(None, description="ISO 8601 with offset")
    currency: str = Field(DEFAULT_CURRENCY, description="ISO 4217 code")
    discount_minor: StrictInt = Field(0, ge=0)
    channel: SalesChannel = SalesChannel.STORE
    store: str = Field("", max_length=100)


class RefundIn(InputSchema):
    amount_minor: StrictInt = Field(
        ..., gt=0, description="Integer minor units, at most what is left to refund"
    )
    reason: str = Field("", max_length=200)
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Or send the Idempotency-Key header; retrying with the same key returns "
        "the same refund",
    )


class OrderFilters(Schema):
    customer_id: int | None = None
    status: OrderStatus | None = None
    search: str = Field("", max_length=64, description="Part of the order number")
    since: AwareDatetime | None = Field(None, description="Placed at or after (ISO 8601)")


def _customer(customer_id: int) -> Customer:
    """The customer a request body or filter names; a missing one is an error in that field."""
    try:
        return customer_get(customer_id=customer_id)
    except NotFound as exc:
        raise ValidationError(
            {"customer_id": _("No customer with id %(id)s.") % {"id": customer_id}}
        ) from exc


@router.get(
    "/orders",
    response=responses({200: list[OrderSummaryOut]}, query=True),
    auth=require_perm("commerce.view_order"),
)
@paginate(PagePagination)
def order_list(request: HttpRequest, filters: OrderFilters = Query(...)) -> Any:
    customer = _customer(filters.customer_id) if filters.customer_id is not None else None
    return selectors.order_list(
        customer=customer,
        search=filters.search,
        status=filters.status or "",
        since=filters.since,
    )


@router.get(
    "/orders/{order_id}",
    response=responses({200: OrderOut}, lookup=True),
    auth=require_perm("commerce.view_order"),
)
def order_get(request: HttpRequest, order_id: int) -> Order:
    return selectors.order_get(order_id=order_id)


@router.post(
    "/orders",
    response=responses({201: OrderOut}, body=True),
    auth=require_perm("commerce.add_order"),
)
def order_place(request: HttpRequest, payload: OrderIn) -> Status[Order]:
    order = services.order_place(
        customer=_customer(payload.customer_id),
        number=payload.number,
        lines=[line.model_dump(exclude_none=True) for line in payload.lines],
        placed_at=payload.placed_at,
        currency=payload.currency,
        discount_minor=payload.discount_minor,
        channel=payload.channel,
        store=payload.store,
        source=API_SOURCE,
        actor=request_actor(request),
    )
    return Status(201, order)


@router.post(
    "/orders/{order_id}/refunds",
    response=responses({201: RefundOut}, lookup=True, body=True),
    auth=require_perm("commerce.add_refund"),
)
def refund_create(
    request: HttpRequest,
    order_id: int,
    payload: RefundIn,
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", min_length=1, max_length=100
    ),
) -> Status[Refund]:
    key = idempotency_key or payload.idempotency_key
    if idempotency_key and payload.idempotency_key and idempotency_key != payload.idempotency_key:
        raise ValidationError(
            {
                "idempotency_key": _(
                    "The Idempotency-Key header and the idempotency_key field differ."
                )
            }
        )
    order = selectors.order_get(order_id=order_id)
    refund = services.refund_create(
        order=order,
        amount_minor=payload.amount_minor,
        idempotency_key=key or "",
        reason=payload.reason,
        actor=request_actor(request),
    )
    return Status(201, refund)
