"""REST API of support: inquiries (queue, one inquiry with its thread, open, change, reply,
note), KPIs, the inbound-email webhook (raw RFC 822), FAQ articles and FAQ search."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles, prime_known_names
from kizuna.support import faq, intake, selectors, services
from kizuna.support.choices import Direction, Origin, Priority
from kizuna.support.models import Inquiry, Message

router = Router(tags=["support"])
IDEMPOTENCY = Header(None, alias="Idempotency-Key", min_length=1, max_length=100)


class InquiryOut(Schema, MaskedForRoles):
    # Masked roles: contact name and email masked, contact details and names in the subject.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"subject"})
    customer_field: ClassVar[str | None] = "customer_id"

    id: int
    reference: str
    customer_id: int | None
    contact_name: str
    contact_email: str
    origin: str
    subject: str
    locale: str
    status: str
    priority: str
    assignee_id: int | None
    first_response_due: datetime
    resolution_due: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    created_at: datetime
    breached: bool


class MessageOut(Schema, MaskedForRoles):
    # The inquiry's customer's names: primed.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"body"})

    id: int
    direction: str
    body: str
    auto: bool
    author_id: int | None
    delivery_id: int | None
    attachments: list[str]
    created_at: datetime


class InquiryDetailOut(InquiryOut):
    messages: list[MessageOut]


class InquiryIn(InputSchema):
    subject: str = Field(..., min_length=1, max_length=200)
    body: str = Field(..., min_length=1)
    customer_id: int | None = None
    contact_name: str = Field("", max_length=150)
    contact_email: str = Field("", max_length=254)
    priority: str = Priority.NORMAL
    locale: str | None = None
    assignee_id: int | None = None


class InquiryPatch(InputSchema):
    status: str | None = None
    priority: str | None = None
    assignee_id: int | None = None
    subject: str | None = None


class ReplyIn(InputSchema):
    body: str = Field(..., min_length=1)
    kind: str = Field("reply", description="reply (sent to the customer) or note (internal)")
    status: str = Field("pending", description="after a reply: open, pending or resolved")
    idempotency_key: str | None = Field(None, min_length=1, max_length=100)


class QueueFilter(Schema):
    status: str | None = Field(None, description="active (default), all, or one status")
    assignee_id: int | None = None
    breached: bool = False
    q: str = ""


class KpisOut(Schema):
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


class ArticleOut(Schema):
    id: int
    key: str
    locale: str
    title: str
    body: str
    tags: list[str]
    published: bool
    updated_at: datetime


class ArticleIn(InputSchema):
    key: str = Field(..., min_length=1, max_length=80)
    locale: str
    title: str = Field(..., min_length=1, max_length=200)
    body: str = Field(..., min_length=1)
    tags: list[str] = Field(default_factory=list)
    published: bool = True


class HitOut(Schema):
    article_id: int
    key: str
    title: str
    score: float


class SearchOut(Schema):
    locale: str
    confidence: float
    confident: bool
    hits: list[HitOut]


class EmailReceivedOut(Schema):
    inquiry_id: int
    created: bool
    message_id: int | None


def _inquiry(inquiry: Inquiry) -> dict[str, Any]:
    return {
        "id": inquiry.pk,
        "reference": inquiry.reply_token,
        "customer_id": inquiry.customer_id,
        "contact_name": inquiry.contact_name,
        "contact_email": inquiry.contact_email,
        "origin": inquiry.origin,
        "subject": inquiry.subject,
        "locale": inquiry.locale,
        "status": inquiry.status,
        "priority": inquiry.priority,
        "assignee_id": inquiry.assignee_id,
        "first_response_due": inquiry.first_response_due,
        "resolution_due": inquiry.resolution_due,
        "first_responded_at": inquiry.first_responded_at,
        "resolved_at": inquiry.resolved_at,
        "created_at": inquiry.created_at,
        "breached": selectors.sla_state(inquiry).breached,
    }


def _message(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "direction": message.direction,
        "body": message.body,
        "auto": message.auto,
        "author_id": message.author_id,
        "delivery_id": message.delivery_id,
        "attachments": [a.filename for a in message.attachments.all()],
        "created_at": message.created_at,
    }


def _detail(inquiry: Inquiry) -> dict[str, Any]:
    return {
        **_inquiry(inquiry),
        "messages": [_message(m) for m in selectors.thread(inquiry=inquiry)],
    }


@router.get(
    "/inquiries",
    response=responses({200: list[InquiryOut]}, query=True),
    auth=require_perm("support.view_inquiry"),
)
@paginate(PagePagination)
def inquiry_list(request: HttpRequest, filters: Query[QueueFilter]) -> Any:
    items = selectors.inquiry_list(
        status=filters.status,
        assignee_id=filters.assignee_id,
        breached=filters.breached,
        q=filters.q,
    )
    return [_inquiry(i) for i in items]


@router.post(
    "/inquiries",
    response=responses({201: InquiryDetailOut}, body=True),
    auth=require_perm("support.add_inquiry"),
)
def inquiry_create(request: HttpRequest, payload: InquiryIn) -> Any:
    from django.contrib.auth import get_user_model

    customer = customer_get(customer_id=payload.customer_id) if payload.customer_id else None
    assignee = None
    if payload.assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=payload.assignee_id).first()
        if assignee is None:
            raise ValidationError({"assignee_id": _("No such staff user.")})
    inquiry, _created = services.inquiry_open(
        subject=payload.subject,
        body=payload.body,
        origin=Origin.API,
        customer=customer,
        contact_name=payload.contact_name,
        contact_email=payload.contact_email,
        priority=payload.priority,
        locale=payload.locale,
        assignee=assignee,
        actor=request_actor(request),
    )
    return Status(201, _detail(inquiry))


@router.get(
    "/inquiries/kpis",
    response=responses({200: KpisOut}),
    auth=require_perm("support.view_inquiry"),
)
def inquiry_kpis(request: HttpRequest) -> Any:
    return selectors.kpis().__dict__


@router.post(
    "/inquiries/inbound-email",
    response=responses({200: EmailReceivedOut, 201: EmailReceivedOut}, body=True),
    auth=require_perm("support.add_inquiry"),
)
def inbound_email(request: HttpRequest) -> Any:
    """The raw RFC 822 message as the request body (`Content-Type: message/rfc822`), posted
    by the MTA or a mail-fetching script with an API key. A reply to an inquiry continues
    it; a redelivered Message-ID changes nothing."""
    result = intake.email_receive(raw=request.body)
    body = {
        "inquiry_id": result.inquiry.pk,
        "created": result.created,
        "message_id": result.message.pk if result.message else None,
    }
    return Status(201 if result.created else 200, body)


@router.get(
    "/inquiries/{inquiry_id}",
    response=responses({200: InquiryDetailOut}, lookup=True),
    auth=require_perm("support.view_inquiry"),
)
def inquiry_detail(request: HttpRequest, inquiry_id: int) -> Any:
    inquiry = selectors.inquiry_get(inquiry_id=inquiry_id)
    prime_known_names(request, inquiry.customer)
    return _detail(inquiry)


@router.patch(
    "/inquiries/{inquiry_id}",
    response=responses({200: InquiryOut}, lookup=True, body=True),
    auth=require_perm("support.change_inquiry"),
)
def inquiry_change(request: HttpRequest, inquiry_id: int, payload: InquiryPatch) -> Any:
    inquiry = selectors.inquiry_get(inquiry_id=inquiry_id)
    data = payload.model_dump(exclude_unset=True)
    if "assignee_id" in data:
        data["assignee"] = data.pop("assignee_id")
    inquiry = services.inquiry_update(inquiry=inquiry, data=data, actor=request_actor(request))
    return _inquiry(inquiry)


@router.post(
    "/inquiries/{inquiry_id}/messages",
    response=responses({200: MessageOut, 201: MessageOut}, lookup=True, body=True),
    auth=require_perm("support.add_message"),
)
def inquiry_reply(
    request: HttpRequest,
    inquiry_id: int,
    payload: ReplyIn,
    idempotency_key: str | None = IDEMPOTENCY,
) -> Any:
    """A reply (sent through messaging; needs an idempotency key: the `Idempotency-Key`
    header or the body field; a retry answers 200 with the first reply) or a note."""
    inquiry = selectors.inquiry_get(inquiry_id=inquiry_id)
    actor = request_actor(request)
    if payload.kind == Direction.NOTE:
        return Status(
            201, _message(services.note_add(inquiry=inquiry, body=payload.body, actor=actor))
        )
    if payload.kind != "reply":
        raise ValidationError({"kind": _("Choose reply or note.")})
    if idempotency_key and payload.idempotency_key and idempotency_key != payload.idempotency_key:
        raise ValidationError(
            {
                "idempotency_key": _(
                    "The Idempotency-Key header and the idempotency_key field differ."
                )
            }
        )
    key = idempotency_key or payload.idempotency_key
    if not key:
        raise ValidationError({"idempotency_key": _("An Idempotency-Key header is required.")})
    message, created = services.reply_send(
        inquiry=inquiry, body=payload.body, idempotency_key=key, actor=actor, status=payload.status
    )
    return Status(201 if created else 200, _message(message))


@router.get(
    "/faq/articles",
    response=responses({200: list[ArticleOut]}, query=True),
    auth=require_perm("support.view_faqarticle"),
)
@paginate(PagePagination)
def article_list(request: HttpRequest, locale: str | None = None) -> Any:
    return selectors.faq_articles(locale=locale)


@router.post(
    "/faq/articles",
    response=responses({201: ArticleOut}, body=True),
    auth=require_perm("support.add_faqarticle"),
)
def article_create(request: HttpRequest, payload: ArticleIn) -> Any:
    article = services.faq_article_save(**payload.model_dump(), actor=request_actor(request))
    return Status(201, article)


@router.put(
    "/faq/articles/{article_id}",
    response=responses({200: ArticleOut}, lookup=True, body=True),
    auth=require_perm("support.change_faqarticle"),
)
def article_update(request: HttpRequest, article_id: int, payload: ArticleIn) -> Any:
    article = selectors.faq_article_get(article_id=article_id)
    return services.faq_article_save(
        **payload.model_dump(), article=article, actor=request_actor(request)
    )


@router.delete(
    "/faq/articles/{article_id}",
    response=responses({204: None}, lookup=True),
    auth=require_perm("support.delete_faqarticle"),
)
def article_delete(request: HttpRequest, article_id: int) -> Any:
    article = selectors.faq_article_get(article_id=article_id)
    services.faq_article_delete(article=article, actor=request_actor(request))
    return Status(204, None)


@router.get(
    "/faq/search",
    response=responses({200: SearchOut}, query=True),
    auth=require_perm("support.view_faqarticle"),
)
def article_search(request: HttpRequest, q: str, locale: str | None = None) -> Any:
    """BM25 over the published articles, with the assistant's confidence (docs/support.md)."""
    if not q.strip() or len(q) > 2000:
        raise ValidationError({"q": _("A question of 1 to 2000 characters is required.")})
    answer = faq.search(q, locale=locale, limit=5)
    return {
        "locale": answer.locale,
        "confidence": answer.confidence,
        "confident": answer.confident,
        "hits": [
            {"article_id": h.article_id, "key": h.key, "title": h.title, "score": h.score}
            for h in answer.hits
        ],
    }
