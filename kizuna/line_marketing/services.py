"""Writes of LINE marketing: upload a segment as a LINE audience (and refresh LINE's status
of it), narrowcast to it (and read LINE's progress of the send), create rich menus (with their
image), link them to a segment's or a loyalty tier's LINE users, make one the default.

Everything goes through line-bot-sdk v3 (`client.line_clients`). Only LINE users who follow
the channel and are linked to a customer (messaging's `LineContact`) are uploaded or linked.
Requests LINE may receive twice carry an `X-Line-Retry-Key` derived from the idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from linebot.v3.audience import (
    AddAudienceToAudienceGroupRequest,
    Audience,
    CreateAudienceGroupRequest,
)
from linebot.v3.audience import (
    ApiException as AudienceApiException,
)
from linebot.v3.messaging import (
    ApiException,
    AudienceRecipient,
    Message,
    NarrowcastRequest,
    RichMenuBulkLinkRequest,
    RichMenuRequest,
)

from kizuna.customers.models import ConsentEntry, ConsentStatus
from kizuna.line_marketing.client import LineConfigError, line_clients
from kizuna.line_marketing.models import LineAudience, Narrowcast, RichMenu
from kizuna.loyalty.models import Account, Tier
from kizuna.messaging.models import Channel, LineContact
from kizuna.segments.models import Segment
from kizuna.segments.selectors import segment_customers

UPLOAD_CHUNK = 10_000  # user ids per audience upload request (LINE's limit)
LINK_CHUNK = 500  # user ids per rich-menu bulk link request
MAX_MESSAGES = 5
RETRY_NAMESPACE = uuid.UUID("0b7c2f43-8a55-4f0e-9c1d-3e0b6a9d5f21")
IMAGE_TYPES = {"image/png", "image/jpeg"}
MAX_IMAGE_BYTES = 1_000_000


def _staff(actor: AbstractBaseUser | None) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _retry_key(key: str) -> str:
    return str(uuid.uuid5(RETRY_NAMESPACE, key))


def _line_error(exc: ApiException | AudienceApiException, field: str) -> ValidationError:
    return ValidationError(
        {
            field: [
                _("LINE refused the request (%(status)s): %(body)s")
                % {
                    "status": exc.status,
                    "body": str(exc.body or exc.reason or "")[:200],
                }
            ]
        }
    )


def _marketing_followers(channel: Channel) -> QuerySet[LineContact]:
    """The channel's followers who may receive LINE marketing: following the account is the
    LINE-side opt-in, and a customer whose newest marketing consent entry for LINE (or any
    channel) is a withdrawal — an unsubscribe, the preference centre, an objection — is left
    out (no processing for a purpose without a basis; docs/privacy.md)."""
    newest = (
        ConsentEntry.objects.filter(
            customer_id=OuterRef("customer_id"), purpose="marketing", channel__in=["line", "any"]
        )
        .order_by("-recorded_at", "-id")
        .values("status")[:1]
    )
    return (
        LineContact.objects.filter(channel=channel, following=True)
        .annotate(marketing=Subquery(newest))
        # no entry (NULL: a plain `exclude` would drop it) or granted
        .filter(Q(marketing__isnull=True) | Q(marketing=ConsentStatus.GRANTED))
    )


def segment_line_user_ids(*, channel: Channel, segment: Segment) -> list[str]:
    """The LINE user ids of the segment's members who follow the channel and have not
    withdrawn LINE marketing (in id order)."""
    members = segment_customers(segment=segment).values("pk")
    return list(
        _marketing_followers(channel)
        .filter(customer_id__in=members)
        .order_by("line_user_id")
        .values_list("line_user_id", flat=True)
        .distinct()
    )


def tier_line_user_ids(*, channel: Channel, tier: Tier) -> list[str]:
    """The LINE user ids of the members currently in this loyalty tier who follow the channel."""
    members = Account.objects.filter(tier=tier).values("customer_id")
    return list(
        LineContact.objects.filter(channel=channel, following=True, customer_id__in=members)
        .order_by("line_user_id")
        .values_list("line_user_id", flat=True)
        .distinct()
    )


def _check_channel(channel: Channel, errors: dict[str, list[str]]) -> None:
    if channel.kind != "line" or not channel.active:
        errors["channel"] = [_("Choose an active LINE channel.")]


def audience_upload(
    *,
    channel: Channel,
    segment: Segment,
    description: str = "",
    actor: AbstractBaseUser | None = None,
) -> LineAudience:
    """Create a LINE audience group from the segment's following LINE users: the first
    10,000 ids in the create request, the rest added 10,000 at a time."""
    errors: dict[str, list[str]] = {}
    _check_channel(channel, errors)
    description = (description or segment.name).strip()
    if not description or len(description) > 120:
        errors["description"] = [_("Describe the audience in 1 to 120 characters.")]
    user_ids = segment_line_user_ids(channel=channel, segment=segment) if not errors else []
    if not errors and not user_ids:
        errors["segment"] = [_("No member of this segment follows the LINE account.")]
    if errors:
        raise ValidationError(errors)
    try:
        with line_clients(channel) as clients:
            first, rest = user_ids[:UPLOAD_CHUNK], user_ids[UPLOAD_CHUNK:]
            created = clients.audience.create_audience_group(
                CreateAudienceGroupRequest(
                    description=description,
                    isIfaAudience=False,
                    uploadDescription=f"segment:{segment.slug}",
                    audiences=[Audience(id=u) for u in first],
                )
            )
            group_id = int(created.audience_group_id or 0)
            for start in range(0, len(rest), UPLOAD_CHUNK):
                clients.audience.add_audience_to_audience_group(
                    AddAudienceToAudienceGroupRequest(
                        audienceGroupId=group_id,
                        uploadDescription=f"segment:{segment.slug}:{start}",
                        audiences=[Audience(id=u) for u in rest[start : start + UPLOAD_CHUNK]],
                    )
                )
    except (ApiException, AudienceApiException) as exc:
        raise _line_error(exc, "segment") from exc
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    return LineAudience.objects.create(
        channel=channel,
        segment=segment,
        description=description,
        audience_group_id=group_id,
        size=len(user_ids),
        created_by=_staff(actor),
    )


def _sdk_messages(messages: Any, field: str = "messages") -> list[Message]:
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValidationError({field: [_("Give 1 to 5 LINE messages.")]})
    out = []
    for i, message in enumerate(messages):
        try:
            parsed = Message.from_dict(message) if isinstance(message, dict) else None
        except (ValueError, TypeError):
            parsed = None
        if parsed is None:
            raise ValidationError(
                {f"{field}.{i}": [_("Not a LINE message object (type text, flex, ...).")]}
            )
        out.append(parsed)
    return out


def audience_refresh(*, audience: LineAudience) -> LineAudience:
    """Ask LINE for the audience group's status (IN_PROGRESS until LINE has matched the
    uploaded ids, then READY; FAILED or EXPIRED otherwise) and the count it matched."""
    try:
        with line_clients(audience.channel) as clients:
            data = clients.audience.get_audience_data(audience.audience_group_id)
    except AudienceApiException as exc:
        raise _line_error(exc, "audience") from exc
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    group = data.audience_group
    audience.status = str(getattr(group.status, "value", group.status) or "") if group else ""
    count = group.audience_count if group else None
    audience.line_count = int(count) if count is not None else None
    audience.checked_at = timezone.now()
    LineAudience.objects.filter(pk=audience.pk).update(
        status=audience.status, line_count=audience.line_count, checked_at=audience.checked_at
    )
    return audience


def narrowcast_send(
    *,
    audience: LineAudience,
    messages: list[dict[str, Any]],
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
) -> Narrowcast:
    """Narrowcast `messages` to the audience. The same key returns the stored send; LINE
    accepts a retried request once (retry key)."""
    if not idempotency_key or len(idempotency_key) > 120:
        raise ValidationError({"idempotency_key": [_("Give an idempotency key (1-120).")]})
    existing = Narrowcast.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.audience_id != audience.pk or existing.messages != messages:
            raise ValidationError(
                {"idempotency_key": [_("This key was used for another narrowcast.")]}
            )
        return existing
    sdk = _sdk_messages(messages)
    key = _retry_key(idempotency_key)
    try:
        with line_clients(audience.channel) as clients:
            response = clients.messaging.narrowcast_with_http_info(
                NarrowcastRequest(
                    messages=sdk,
                    recipient=AudienceRecipient(audienceGroupId=audience.audience_group_id),
                    notificationDisabled=False,
                ),
                x_line_retry_key=key,
            )
            request_id = str((response.headers or {}).get("x-line-request-id", ""))
    except ApiException as exc:
        if exc.status != 409:  # 409: LINE had accepted this retry key already
            raise _line_error(exc, "messages") from exc
        request_id = str((exc.headers or {}).get("x-line-accepted-request-id", ""))
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    return Narrowcast.objects.create(
        audience=audience,
        messages=messages,
        idempotency_key=idempotency_key,
        request_id=request_id,
        created_by=_staff(actor),
    )


def narrowcast_to_segment(
    *,
    channel: Channel,
    segment: Segment,
    messages: list[dict[str, Any]],
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
) -> Narrowcast:
    """Narrowcast to a segment: upload its following members as a fresh audience, then send.
    A retried key returns the first send without uploading again."""
    existing = Narrowcast.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return narrowcast_send(
            audience=existing.audience, messages=messages, idempotency_key=idempotency_key
        )
    _sdk_messages(messages)  # refuse bad messages before anything goes to LINE
    audience = audience_upload(channel=channel, segment=segment, actor=actor)
    return narrowcast_send(
        audience=audience, messages=messages, idempotency_key=idempotency_key, actor=actor
    )


NARROWCAST_PHASES = ("waiting", "sending", "succeeded", "failed")


def narrowcast_refresh(*, narrowcast: Narrowcast) -> Narrowcast:
    """Ask LINE's progress API how far the send is (phase, targets, delivered, failed)."""
    if not narrowcast.request_id:
        raise ValidationError({"request_id": [_("LINE gave no request ID for this send.")]})
    try:
        with line_clients(narrowcast.audience.channel) as clients:
            progress = clients.messaging.get_narrowcast_progress(narrowcast.request_id)
    except ApiException as exc:
        raise _line_error(exc, "request_id") from exc
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    phase = str(progress.phase or "")
    narrowcast.status = phase if phase in NARROWCAST_PHASES else "sent"
    narrowcast.target_count = progress.target_count
    narrowcast.success_count = progress.success_count
    narrowcast.failure_count = progress.failure_count
    narrowcast.error = str(progress.failed_description or "")[:300]
    narrowcast.checked_at = timezone.now()
    fields = ["status", "target_count", "success_count", "failure_count", "error", "checked_at"]
    Narrowcast.objects.filter(pk=narrowcast.pk).update(
        **{f: getattr(narrowcast, f) for f in fields}
    )
    return narrowcast


def rich_menu_create(
    *,
    channel: Channel,
    definition: dict[str, Any],
    image: bytes,
    content_type: str = "image/png",
    segment: Segment | None = None,
    tier: Tier | None = None,
) -> RichMenu:
    """Create a rich menu on LINE from its definition (size, areas, chatBarText, name) and
    upload its image; `segment` or `tier` says which customers it is for (linked with
    `rich_menu_link_segment`)."""
    errors: dict[str, list[str]] = {}
    _check_channel(channel, errors)
    if segment is not None and tier is not None:
        errors["tier"] = [_("A rich menu is for a segment or for a tier, not both.")]
    if content_type not in IMAGE_TYPES:
        errors["image"] = [_("The image must be PNG or JPEG.")]
    elif not image or len(image) > MAX_IMAGE_BYTES:
        errors["image"] = [_("The image must be at most 1 MB.")]
    request = None
    if isinstance(definition, dict):
        try:
            request = RichMenuRequest.from_dict(definition)
        except (ValueError, TypeError):
            request = None
    if request is None or not request.areas or not request.size or not request.name:
        errors["definition"] = [_("A rich menu needs a name, a size and at least one area.")]
    if errors:
        raise ValidationError(errors)
    assert request is not None
    try:
        with line_clients(channel) as clients:
            created = clients.messaging.create_rich_menu(request)
            clients.blob.set_rich_menu_image(
                created.rich_menu_id, body=image, _headers={"Content-Type": content_type}
            )
    except ApiException as exc:
        raise _line_error(exc, "definition") from exc
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    return RichMenu.objects.create(
        channel=channel,
        name=str(request.name),
        segment=segment,
        tier=tier,
        rich_menu_id=created.rich_menu_id,
        definition=definition,
        image_uploaded=True,
    )


def rich_menu_link_users(*, menu: RichMenu, user_ids: Sequence[str]) -> int:
    """Link the menu to these LINE users: one request per user for a single one, bulk
    requests of 500 otherwise. Returns how many were linked."""
    if not user_ids:
        return 0
    try:
        with line_clients(menu.channel) as clients:
            if len(user_ids) == 1:
                clients.messaging.link_rich_menu_id_to_user(user_ids[0], menu.rich_menu_id)
            else:
                for start in range(0, len(user_ids), LINK_CHUNK):
                    clients.messaging.link_rich_menu_id_to_users(
                        RichMenuBulkLinkRequest(
                            richMenuId=menu.rich_menu_id,
                            userIds=list(user_ids[start : start + LINK_CHUNK]),
                        )
                    )
    except ApiException as exc:
        raise _line_error(exc, "menu") from exc
    with transaction.atomic():
        RichMenu.objects.filter(pk=menu.pk).update(linked_users=len(user_ids))
    menu.linked_users = len(user_ids)
    return len(user_ids)


def rich_menu_link_segment(*, menu: RichMenu) -> int:
    """Link the menu to every following LINE user of its segment or its loyalty tier (e.g.
    a member menu for linked customers, a gold menu for gold members)."""
    if menu.segment is not None:
        users = segment_line_user_ids(channel=menu.channel, segment=menu.segment)
    elif menu.tier is not None:
        users = tier_line_user_ids(channel=menu.channel, tier=menu.tier)
    else:
        raise ValidationError({"segment": [_("This rich menu is not for a segment or a tier.")]})
    return rich_menu_link_users(menu=menu, user_ids=users)


def rich_menu_set_default(*, menu: RichMenu) -> RichMenu:
    """Make the menu the channel's default (shown to every follower without a linked menu)."""
    try:
        with line_clients(menu.channel) as clients:
            clients.messaging.set_default_rich_menu(menu.rich_menu_id)
    except ApiException as exc:
        raise _line_error(exc, "menu") from exc
    except LineConfigError as exc:
        raise ValidationError({"channel": [str(exc)]}) from exc
    with transaction.atomic():
        RichMenu.objects.filter(channel=menu.channel, is_default=True).exclude(pk=menu.pk).update(
            is_default=False
        )
        RichMenu.objects.filter(pk=menu.pk).update(is_default=True)
    menu.is_default = True
    return menu
