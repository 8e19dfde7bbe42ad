"""REST API of messaging: send a message (transactional or marketing, through the same
guardrails), list deliveries with their status history, preview a template for a customer."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Header, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import (
    MaskedForRoles,
    known_names,
    mask_free_text,
    prime_known_names,
    request_masks,
)
from kizuna.messaging import rendering, selectors, services
from kizuna.messaging.models import Delivery

router = Router(tags=["messaging"])
IDEMPOTENCY = Header(None, alias="Idempotency-Key", min_length=1, max_length=120)


class SendIn(InputSchema):
    template: str = Field(..., description="The template's key (slug).", max_length=80)
    customer_id: int
    channel_id: int
    context: dict[str, Any] = Field(
        default_factory=dict, description="Extra template variables (order number, ...)."
    )
    idempotency_key: str | None = Field(None, min_length=1, max_length=120)


class HistoryOut(Schema):
    status: str
    reason: str
    at: datetime


class DeliveryOut(Schema):
    id: int
    idempotency_key: str
    source: str
    customer_id: int
    channel_id: int
    template: str | None
    purpose: str
    status: str
    reason: str
    provider_id: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None


class DeliveryDetailOut(DeliveryOut, MaskedForRoles):
    # The message as sent: contact details and the customer's names masked for masked roles.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"rendered"})
    customer_field: ClassVar[str | None] = "customer_id"

    history: list[HistoryOut]
    rendered: dict[str, Any]


class PreviewIn(InputSchema):
    customer_id: int
    locale: str | None = Field(None, pattern="^(ja|en)$")
    context: dict[str, Any] = Field(default_factory=dict)


class PreviewOut(Schema):
    subject: str
    html: str
    text: str
    line_messages: list[dict[str, Any]]
    payload: dict[str, Any]


def _out(delivery: Delivery) -> dict[str, Any]:
    return {
        **{f: getattr(delivery, f) for f in DeliveryOut.model_fields if f != "template"},
        "template": delivery.template.slug if delivery.template else None,
    }


@router.post(
    "/messages",
    response=responses({200: DeliveryOut, 202: DeliveryOut}, lookup=True, body=True),
    auth=require_perm("messaging.add_delivery"),
)
def send(request: HttpRequest, payload: SendIn, idempotency_key: str | None = IDEMPOTENCY) -> Any:
    """Queue one message to one customer. It is checked against consent, suppression,
    frequency cap and quiet hours when the worker sends it; a refusal is recorded on the
    delivery. 202 when queued, 200 when the idempotency key was seen before."""
    template = selectors.template_get(slug=payload.template)
    channel = selectors.channel_get(channel_id=payload.channel_id)
    customer = customer_get(customer_id=payload.customer_id)
    key = idempotency_key or payload.idempotency_key
    delivery, created = services.delivery_enqueue(
        source=f"api:{template.slug}",
        customer=customer,
        channel=channel,
        template=template,
        extra_context=payload.context,
        idempotency_key=key,
        actor=request_actor(request),
    )
    return Status(202 if created else 200, _out(delivery))


@router.get(
    "/deliveries",
    response=responses({200: list[DeliveryOut]}, query=True),
    auth=require_perm("messaging.view_delivery"),
)
@paginate(PagePagination)
def delivery_list(
    request: HttpRequest,
    status: str | None = None,
    customer_id: int | None = None,
    channel_id: int | None = None,
    source: str | None = None,
) -> Any:
    qs = selectors.delivery_list(
        status=status, customer_id=customer_id, channel_id=channel_id, source=source
    )
    return _Lazy(qs)


class _Lazy:
    """A queryset shaped for the pagination (slices become output dicts)."""

    def __init__(self, qs: Any) -> None:
        self.qs = qs

    def __getitem__(self, item: slice) -> list[dict[str, Any]]:
        return [_out(d) for d in self.qs[item]]

    def count(self) -> int:
        return int(self.qs.count())

    def __len__(self) -> int:
        return self.count()


@router.get(
    "/deliveries/{delivery_id}",
    response=responses({200: DeliveryDetailOut}, lookup=True),
    auth=require_perm("messaging.view_delivery"),
)
def delivery_detail(request: HttpRequest, delivery_id: int) -> dict[str, Any]:
    delivery = selectors.delivery_get(delivery_id=delivery_id)
    prime_known_names(request, delivery.customer)
    return {
        **_out(delivery),
        "rendered": delivery.rendered,
        "history": [
            {"status": h.status, "reason": h.reason, "at": h.at}
            for h in selectors.delivery_history(delivery=delivery)
        ],
    }


@router.post(
    "/templates/{slug}/preview",
    response=responses({200: PreviewOut}, lookup=True, body=True),
    auth=require_perm("messaging.view_template"),
)
def preview(request: HttpRequest, slug: str, payload: PreviewIn) -> dict[str, Any]:
    """Render the template for a customer without sending. A template error is a 422 whose
    message names the part and line."""
    template = selectors.template_get(slug=slug)
    customer = customer_get(customer_id=payload.customer_id)
    try:
        result = services.render_for(
            template=template, customer=customer, extra=payload.context, locale=payload.locale
        )
    except rendering.RenderError as exc:
        raise ValidationError({exc.part: [str(exc)]}) from exc
    out = {
        "subject": result.subject,
        "html": result.html,
        "text": result.text,
        "line_messages": result.line_messages,
        "payload": result.payload,
    }
    return mask_free_text(out, known_names(customer)) if request_masks(request) else out
