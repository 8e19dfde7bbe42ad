"""Writes of campaigns: authoring, the approval step, scheduling, the start (audience
materialised into recipient rows, split, send times), the dispatch to messaging, the A/B
winner, pause, resume, cancel and test sends.

Campaigns sit above messaging (see pyproject's layer contract): they hand each due chunk of
recipients to `messaging.services.delivery_enqueue_many`, and messaging's guardrails decide at
send time (consent, suppression, frequency caps, quiet hours) and record every refusal.

State changes that can race (two workers, a double click) are conditional updates on the
campaign's status, so exactly one of them wins; handing recipients to messaging marks them
enqueued in the same transaction that creates the deliveries, and the deliveries'
idempotency keys (source + customer + channel + template) make a repeat create nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.campaigns import assignment, scheduling, selectors
from kizuna.campaigns.choices import (
    ACTIVE,
    AttributionModel,
    CampaignStatus,
    ChannelMode,
    Metric,
    RecipientGroup,
    RecipientStatus,
    ScheduleKind,
)
from kizuna.campaigns.models import Campaign, Recipient, Variant
from kizuna.campaigns.stats import VariantCount, choose_winner
from kizuna.core import events
from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.messaging import rendering
from kizuna.messaging import services as messaging
from kizuna.messaging.choices import ChannelKind
from kizuna.messaging.models import Channel, Delivery, Template
from kizuna.segments.models import Segment

logger = logging.getLogger(__name__)

SEND_PERMISSION = "campaigns.send_campaign"
MAX_VARIANTS = 5
VARIANT_KEYS = "ABCDE"
DISPATCH_CHUNK = 5000
CREATE_BATCH = 2000

Errors = dict[str, list[str]]


def _raise(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)


def _publish(type_: str, campaign: Campaign, **properties: Any) -> None:
    events.publish(
        events.DomainEvent(
            type=type_,
            occurred_at=now(),
            properties={"campaign_id": campaign.pk, "name": campaign.name, **properties},
            source="campaigns",
        )
    )


def source_for(campaign: Campaign | int, key: str) -> str:
    """The `source` of a campaign's deliveries: one per variant, so results group by it."""
    campaign_id = campaign if isinstance(campaign, int) else campaign.pk
    return f"campaign:{campaign_id}:{key}"


# --- authoring ------------------------------------------------------------------------------


def _int(data: dict[str, Any], key: str, default: int | None, errors: Errors) -> int | None:
    value: Any = data.get(key, default)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        errors[key] = [_("Enter a whole number.")]
        return None


def _in_range(
    errors: Errors, key: str, value: int | None, low: int, high: int, *, required: bool = True
) -> None:
    if value is None:
        if required and key not in errors:
            errors[key] = [_("This field is required.")]
        return
    if not low <= value <= high:
        errors[key] = [_("Enter a number from %(low)s to %(high)s.") % {"low": low, "high": high}]


def _segments(ids: Any, key: str, errors: Errors) -> list[Segment]:
    if ids in (None, ""):
        return []
    if not isinstance(ids, list | tuple):
        errors[key] = [_("A list of segment ids is expected.")]
        return []
    values = [s.pk if isinstance(s, Segment) else s for s in ids]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        errors[key] = [_("A list of segment ids is expected.")]
        return []
    found = {s.pk: s for s in Segment.objects.filter(pk__in=values)}
    missing = [str(v) for v in values if v not in found]
    if missing:
        errors[key] = [_("Unknown segment: %(ids)s.") % {"ids": ", ".join(missing)}]
    return [found[v] for v in dict.fromkeys(values) if v in found]


def _channel(value: Any, kind: str, key: str, errors: Errors) -> Channel | None:
    if value in (None, ""):
        return None
    channel_id = value.pk if isinstance(value, Channel) else value
    channel = Channel.objects.filter(pk=channel_id).first() if isinstance(channel_id, int) else None
    if channel is None:
        errors[key] = [_("Unknown channel.")]
    elif channel.kind != kind:
        errors[key] = [_("Choose a %(kind)s channel.") % {"kind": ChannelKind(kind).label}]
    elif not channel.active:
        errors[key] = [_("This channel is switched off.")]
    return channel


def _template(value: Any, kind: str, key: str, errors: Errors) -> Template | None:
    if value in (None, ""):
        return None
    template_id = value.pk if isinstance(value, Template) else value
    template = (
        Template.objects.filter(pk=template_id).first() if isinstance(template_id, int) else None
    )
    if template is None:
        errors[key] = [_("Unknown template.")]
    elif template.channel_kind != kind:
        errors[key] = [_("Choose a template for %(kind)s.") % {"kind": ChannelKind(kind).label}]
    return template


def _clean_variants(raw: Any, mode: str, errors: Errors) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        errors["variants"] = [_("At least one variant is required.")]
        return []
    if len(raw) > MAX_VARIANTS:
        errors["variants"] = [_("At most %(n)s variants.") % {"n": MAX_VARIANTS}]
        return []
    cleaned = []
    for index, item in enumerate(raw):
        prefix = f"variants[{index}]"
        if not isinstance(item, dict):
            errors[prefix] = [_("Must be an object.")]
            continue
        unknown = set(item) - {
            "name",
            "email_template",
            "line_template",
            "subject",
            "send_hour",
            "weight",
        }
        for key in sorted(unknown):
            errors[f"{prefix}.{key}"] = [_("Unknown field.")]
        email = _template(item.get("email_template"), "email", f"{prefix}.email_template", errors)
        line = _template(item.get("line_template"), "line", f"{prefix}.line_template", errors)
        if mode in (ChannelMode.EMAIL, ChannelMode.LINE_THEN_EMAIL) and email is None:
            errors.setdefault(f"{prefix}.email_template", [_("An email template is required.")])
        if mode in (ChannelMode.LINE, ChannelMode.LINE_THEN_EMAIL) and line is None:
            errors.setdefault(f"{prefix}.line_template", [_("A LINE template is required.")])
        subject = str(item.get("subject") or "").strip()
        if len(subject) > 300:
            errors[f"{prefix}.subject"] = [_("At most 300 characters.")]
        elif subject:
            try:
                rendering.compile_template(subject, "subject", False)
            except rendering.RenderError as exc:
                errors[f"{prefix}.subject"] = [str(exc)]
        send_hour = _int(item, "send_hour", None, errors)
        if "send_hour" in errors:
            errors[f"{prefix}.send_hour"] = errors.pop("send_hour")
        else:
            _in_range(errors, f"{prefix}.send_hour", send_hour, 0, 23, required=False)
        weight = _int(item, "weight", 1, errors)
        if "weight" in errors:
            errors[f"{prefix}.weight"] = errors.pop("weight")
        else:
            _in_range(errors, f"{prefix}.weight", weight, 1, 100)
        cleaned.append(
            {
                "key": VARIANT_KEYS[index],
                "name": str(item.get("name") or "")[:100],
                "email_template": email if mode != ChannelMode.LINE else None,
                "line_template": line if mode != ChannelMode.EMAIL else None,
                "subject": subject,
                "send_hour": send_hour,
                "weight": weight or 1,
            }
        )
    return cleaned


def _sync_subject_copy(campaign: Campaign, variant: Variant) -> None:
    """A variant with its own subject sends a copy of the email template carrying that
    subject (in every language); without one it sends the template itself."""
    base = variant.email_template
    if base is None:
        variant.sent_email_template = None
        return
    if not variant.subject:
        variant.sent_email_template = base
        return
    copy_slug = f"campaign-{campaign.pk}-{variant.key.lower()}"
    existing = Template.objects.filter(slug=copy_slug).first()
    copy = messaging.template_save(
        slug=copy_slug,
        name=f"{campaign.name[:100]} — {variant.key}",
        channel_kind=base.channel_kind,
        body_format=base.body_format,
        purpose=base.purpose,
        topic=base.topic,
        variants={
            v.locale: {"subject": variant.subject, "body": v.body} for v in base.variants.all()
        },
        template=existing,
    )
    variant.sent_email_template = copy


@transaction.atomic
def campaign_save(
    *, data: dict[str, Any], actor: AbstractBaseUser | None = None, campaign: Campaign | None = None
) -> Campaign:
    """Create or update a draft campaign and its variants. Every problem is a ValidationError
    keyed by field (`variants[1].email_template`); nothing is written then."""
    if campaign is not None:
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            raise ValidationError({"status": [_("Only a draft can be edited.")]})
    allowed = {
        "name",
        "include_segments",
        "exclude_segments",
        "channel_mode",
        "email_channel",
        "line_channel",
        "schedule",
        "send_at",
        "default_hour",
        "throttle_per_minute",
        "holdout_percent",
        "test_percent",
        "test_hours",
        "metric",
        "attribution_days",
        "attribution_model",
        "variants",
    }
    errors: Errors = {key: [_("Unknown field.")] for key in sorted(set(data) - allowed)}
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 150:
        errors["name"] = [_("A name of 1 to 150 characters is required.")]
    include = _segments(data.get("include_segments"), "include_segments", errors)
    exclude = _segments(data.get("exclude_segments"), "exclude_segments", errors)
    if not include and "include_segments" not in errors:
        errors["include_segments"] = [_("Choose at least one segment.")]
    both = {s.pk for s in include} & {s.pk for s in exclude}
    if both:
        errors["exclude_segments"] = [_("A segment cannot be both included and excluded.")]
    mode = str(data.get("channel_mode") or ChannelMode.EMAIL)
    if mode not in ChannelMode.values:
        errors["channel_mode"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ChannelMode.values)}]
    email_channel = _channel(data.get("email_channel"), "email", "email_channel", errors)
    line_channel = _channel(data.get("line_channel"), "line", "line_channel", errors)
    if mode in (ChannelMode.EMAIL, ChannelMode.LINE_THEN_EMAIL) and email_channel is None:
        errors.setdefault("email_channel", [_("Choose the email channel.")])
    if mode in (ChannelMode.LINE, ChannelMode.LINE_THEN_EMAIL) and line_channel is None:
        errors.setdefault("line_channel", [_("Choose the LINE channel.")])
    schedule = str(data.get("schedule") or ScheduleKind.NOW)
    send_at = data.get("send_at")
    if schedule not in ScheduleKind.values:
        errors["schedule"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ScheduleKind.values)}]
    if schedule == ScheduleKind.AT:
        if not isinstance(send_at, datetime) or send_at.tzinfo is None:
            errors["send_at"] = [_("Give the date and time to send at.")]
    else:
        send_at = None
    numbers = {
        "default_hour": (10, 0, 23, True),
        "throttle_per_minute": (None, 1, 1_000_000, False),
        "holdout_percent": (0, 0, 50, True),
        "test_percent": (100, 1, 100, True),
        "test_hours": (4, 1, 168, True),
        "attribution_days": (7, 1, 90, True),
    }
    values: dict[str, int | None] = {}
    for key, (default, low, high, required) in numbers.items():
        values[key] = _int(data, key, default, errors)
        if key not in errors:
            _in_range(errors, key, values[key], low, high, required=required)
    metric = str(data.get("metric") or Metric.OPEN)
    if metric not in Metric.values:
        errors["metric"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Metric.values)}]
    model = str(data.get("attribution_model") or AttributionModel.LAST_TOUCH)
    if model not in AttributionModel.values:
        errors["attribution_model"] = [
            _("Choose one of: %(c)s.") % {"c": ", ".join(AttributionModel.values)}
        ]
    variants = _clean_variants(data.get("variants"), mode, errors)
    if (values.get("test_percent") or 100) < 100 and len(variants) < 2 and "variants" not in errors:
        errors["test_percent"] = [_("A test with a rest that gets the winner needs two variants.")]
    if metric == Metric.OPEN and mode == ChannelMode.LINE and len(variants) > 1:
        errors["metric"] = [_("LINE reports no opens: choose clicks or conversions.")]
    _raise(errors)
    with acting_as(actor):
        if campaign is None:
            campaign = Campaign(created_by=cast(Any, actor))
        campaign.name = name
        campaign.channel_mode = mode
        campaign.email_channel = email_channel if mode != ChannelMode.LINE else None
        campaign.line_channel = line_channel if mode != ChannelMode.EMAIL else None
        campaign.schedule, campaign.send_at = schedule, send_at
        campaign.metric, campaign.attribution_model = metric, model
        for key, value in values.items():
            setattr(campaign, key, value)
        campaign.note = ""
        campaign.save()
        campaign.include_segments.set(include)
        campaign.exclude_segments.set(exclude)
        keep = {v["key"] for v in variants}
        campaign.variants.exclude(key__in=keep).delete()
        for item in variants:
            variant, _created = Variant.objects.get_or_create(campaign=campaign, key=item["key"])
            for key in ("name", "email_template", "line_template", "subject", "send_hour"):
                setattr(variant, key, item[key])
            variant.weight = item["weight"]
            _sync_subject_copy(campaign, variant)
            variant.save()
    return campaign


# --- approval and scheduling --------------------------------------------------------------


def _can_send(actor: AbstractBaseUser | None) -> bool:
    return actor is None or bool(getattr(actor, "has_perm", lambda _p: False)(SEND_PERMISSION))


def _check_audience(campaign: Campaign) -> int:
    """Refuse, before anything is sent, an audience that is empty or where nobody may be
    messaged on the campaign's channels (messaging still checks each message at send time)."""
    size, reachable = selectors.audience_reach(campaign=campaign)
    if size == 0:
        raise ValidationError(
            {"include_segments": [_("The audience is empty: no customer is in these segments.")]}
        )
    if reachable == 0:
        raise ValidationError(
            {
                "include_segments": [
                    _(
                        "None of the %(n)s customers in the audience has consented to marketing "
                        "on the campaign's channels: nothing would be sent."
                    )
                    % {"n": size}
                ]
            }
        )
    return size


def _transition(campaign: Campaign, from_: tuple[str, ...], to: str, **fields: Any) -> bool:
    changed = Campaign.objects.filter(pk=campaign.pk, status__in=from_).update(
        status=to, updated_at=now(), **fields
    )
    if changed:
        campaign.refresh_from_db()
    return bool(changed)


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor: AbstractBaseUser | None = None) -> Campaign:
    """Ask for approval (staff without the send permission)."""
    _check_audience(campaign)
    with acting_as(actor):
        if not _transition(
            campaign,
            (CampaignStatus.DRAFT,),
            CampaignStatus.PENDING_APPROVAL,
            submitted_by=actor if isinstance(actor, AbstractBaseUser) else None,
        ):
            raise ValidationError({"status": [_("Only a draft can be submitted.")]})
    _publish("campaign.submitted", campaign)
    return campaign


@transaction.atomic
def campaign_reject(
    *, campaign: Campaign, note: str = "", actor: AbstractBaseUser | None = None
) -> Campaign:
    if not _can_send(actor):
        raise PermissionDenied(_("Rejecting a campaign needs the permission to send campaigns."))
    with acting_as(actor):
        if not _transition(
            campaign,
            (CampaignStatus.PENDING_APPROVAL,),
            CampaignStatus.DRAFT,
            note=(note or _("Sent back without a note."))[:500],
        ):
            raise ValidationError({"status": [_("The campaign is not waiting for approval.")]})
    return campaign


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, actor: AbstractBaseUser | None = None) -> Campaign:
    """Schedule a draft (or approve one waiting for approval): it starts now, or at its
    send time. Needs the send permission; refused with a clear message when the audience is
    empty or has nobody who consented."""
    if not _can_send(actor):
        raise PermissionDenied(
            _("Your role cannot send campaigns: submit it for approval instead.")
        )
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL):
        raise ValidationError({"status": [_("Only a draft or a submitted campaign can start.")]})
    moment = now()
    if campaign.schedule == ScheduleKind.AT and (
        campaign.send_at is None or campaign.send_at <= moment
    ):
        raise ValidationError({"send_at": [_("The send time has passed: choose a later one.")]})
    size = _check_audience(campaign)
    for variant in campaign.variants.select_related("email_template"):
        _sync_subject_copy(campaign, variant)  # the subject copy follows its template's body
        variant.save(update_fields=["sent_email_template"])
    start_at = (campaign.send_at if campaign.schedule == ScheduleKind.AT else None) or moment
    approved = campaign.status == CampaignStatus.PENDING_APPROVAL
    with acting_as(actor):
        _transition(
            campaign,
            (CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL),
            CampaignStatus.SCHEDULED,
            start_at=start_at,
            audience_size=size,
            approved_by=actor if isinstance(actor, AbstractBaseUser) else None,
            approved_at=moment,
            note="",
        )
    _publish("campaign.scheduled", campaign, approved=approved, start_at=start_at.isoformat())
    if start_at <= moment:
        from kizuna.campaigns import tasks

        campaign_id = campaign.pk
        transaction.on_commit(lambda: tasks.start_campaign(campaign_id))
    return campaign


# --- the start: recipients -----------------------------------------------------------------


def _first_segment(campaign: Campaign, ids: list[int]) -> dict[int, int]:
    """The first included segment (in the order chosen) each recipient is in."""
    members = set(ids)
    found: dict[int, int] = {}
    for segment in selectors.included_segments(campaign=campaign):
        for customer_id in selectors.segment_member_ids(segment=segment):
            if customer_id in members and customer_id not in found:
                found[customer_id] = segment.pk
    return found


def _send_times(
    campaign: Campaign,
    rows: list[tuple[int, Variant]],
    base: datetime,
    timezones: dict[int, str],
) -> dict[int, datetime]:
    """{customer id: send time} for recipients about to be scheduled, throttled."""
    best: dict[int, int] = {}
    if campaign.schedule == ScheduleKind.BEST_HOUR:
        opens = selectors.open_times(customer_ids=[cid for cid, _v in rows])
        best = {
            cid: scheduling.best_hour(
                opens.get(cid, []), timezones.get(cid, ""), campaign.default_hour
            )
            for cid, _v in rows
        }
    desired: list[tuple[datetime, int]] = []
    for cid, variant in rows:
        hour = variant.send_hour if variant.send_hour is not None else best.get(cid)
        moment = (
            base if hour is None else scheduling.next_at_hour(base, hour, timezones.get(cid, ""))
        )
        desired.append((moment, cid))
    desired.sort()
    times = scheduling.throttle([m for m, _c in desired], campaign.throttle_per_minute)
    return {cid: at for (_m, cid), at in zip(desired, times, strict=True)}


@transaction.atomic
def campaign_start(*, campaign_id: int) -> int:
    """Materialise the audience of a scheduled campaign whose time has come: one recipient
    row per customer with their group, variant, channel, segment and send time. Returns the
    audience size; 0 when there was nothing to start (already started, paused, not due). An
    audience that became empty (or without consent) marks the campaign not started, with
    the reason, and sends nothing."""
    moment = now()
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if (
        campaign is None
        or campaign.status != CampaignStatus.SCHEDULED
        or (campaign.start_at and campaign.start_at > moment)
    ):
        return 0
    try:
        _check_audience(campaign)
    except ValidationError as exc:
        _transition(
            campaign,
            (CampaignStatus.SCHEDULED,),
            CampaignStatus.FAILED,
            note=" ".join(m for ms in exc.message_dict.values() for m in ms)[:500],
        )
        return 0
    # Claim the start: a second start (another worker) finds the status changed.
    if not _transition(
        campaign, (CampaignStatus.SCHEDULED,), CampaignStatus.SENDING, launched_at=moment
    ):
        return 0
    variants = list(campaign.variants.select_related("sent_email_template", "line_template"))
    weights = [v.weight for v in variants]
    customers = selectors.audience_timezones(campaign=campaign)  # one query, in id order
    ids = list(customers)
    line_ids = selectors.line_followers(campaign=campaign, customer_ids=ids)
    segments = _first_segment(campaign, ids)
    seed = str(campaign.pk)
    placed: list[tuple[int, str, Variant | None]] = []
    for customer_id in ids:
        assigned = assignment.assign(
            seed=seed,
            customer_id=customer_id,
            holdout_percent=campaign.holdout_percent,
            test_percent=campaign.test_percent,
            weights=weights,
        )
        variant = variants[assigned.variant] if assigned.variant is not None else None
        placed.append((customer_id, assigned.group, variant))
    times = _send_times(
        campaign,
        [(cid, v) for cid, _g, v in placed if v is not None],
        max(moment, campaign.start_at or moment),
        customers,
    )

    def kind_for(customer_id: int) -> str:
        if campaign.channel_mode == ChannelMode.LINE:
            return ChannelKind.LINE
        if campaign.channel_mode == ChannelMode.LINE_THEN_EMAIL and customer_id in line_ids:
            return ChannelKind.LINE
        return ChannelKind.EMAIL

    status_for = {
        RecipientGroup.HOLDOUT: RecipientStatus.HELD_OUT,
        RecipientGroup.REMAINDER: RecipientStatus.WAITING,
        RecipientGroup.TEST: RecipientStatus.PENDING,
        RecipientGroup.MAIN: RecipientStatus.PENDING,
    }
    rows = [
        Recipient(
            campaign=campaign,
            customer_id=cid,
            group=group,
            variant=variant,
            segment_id=segments.get(cid),
            channel_kind=kind_for(cid),
            status=status_for[RecipientGroup(group)],
            scheduled_at=times.get(cid),
        )
        for cid, group, variant in placed
    ]
    Recipient.objects.bulk_create(rows, batch_size=CREATE_BATCH)
    test_times = [times[cid] for cid, group, _v in placed if group == RecipientGroup.TEST]
    Campaign.objects.filter(pk=campaign.pk).update(
        audience_size=len(ids),
        test_ends_at=max(test_times) + timedelta(hours=campaign.test_hours) if test_times else None,
    )
    _publish("campaign.started", campaign, audience=len(ids))
    from kizuna.campaigns import tasks

    transaction.on_commit(lambda: tasks.dispatch_campaign(campaign_id))
    return len(ids)


# --- dispatch to messaging -----------------------------------------------------------------


def _dispatch_chunk(campaign_id: int, moment: datetime, limit: int) -> int:
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("email_channel", "line_channel")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None or campaign.status not in ACTIVE:
            return 0
        due = list(
            Recipient.objects.filter(
                campaign=campaign, status=RecipientStatus.PENDING, scheduled_at__lte=moment
            )
            .order_by("scheduled_at", "id")
            .values_list("pk", "customer_id", "variant_id", "channel_kind")[:limit]
        )
        if due:
            variants = {
                v.pk: v
                for v in campaign.variants.select_related("sent_email_template", "line_template")
            }
            groups: dict[tuple[int, str], list[int]] = defaultdict(list)
            for _pk, customer_id, variant_id, kind in due:
                groups[(variant_id, kind)].append(customer_id)
            for (variant_id, kind), customer_ids in groups.items():
                variant = variants[variant_id]
                if kind == ChannelKind.LINE:
                    channel, template = campaign.line_channel, variant.line_template
                else:
                    channel, template = campaign.email_channel, variant.sent_email_template
                if channel is None or template is None:  # a template was deleted since
                    raise ValidationError({"variants": [_("A variant lost its template.")]})
                messaging.delivery_enqueue_many(
                    source=source_for(campaign, variant.key),
                    customer_ids=customer_ids,
                    channel=channel,
                    template=template,
                )
            Recipient.objects.filter(
                pk__in=[row[0] for row in due], status=RecipientStatus.PENDING
            ).update(status=RecipientStatus.ENQUEUED, enqueued_at=moment)
        _advance(campaign)
        return len(due)


def _advance(campaign: Campaign) -> None:
    """After a dispatch: a test fully handed over waits for its winner; a campaign with
    nobody left to hand over is completed."""
    left = Recipient.objects.filter(
        campaign=campaign, status__in=[RecipientStatus.PENDING, RecipientStatus.WAITING]
    )
    if not left.exists():
        if _transition(campaign, ACTIVE, CampaignStatus.COMPLETED, completed_at=now()):
            _publish("campaign.completed", campaign)
        return
    if (
        campaign.status == CampaignStatus.SENDING
        and not left.filter(status=RecipientStatus.PENDING).exists()
        and left.filter(status=RecipientStatus.WAITING).exists()
    ):
        _transition(campaign, (CampaignStatus.SENDING,), CampaignStatus.TESTING)


def campaign_dispatch(*, campaign_id: int, chunk: int = DISPATCH_CHUNK) -> int:
    """Hand every recipient whose time has come to messaging, chunk by chunk (each chunk
    its own transaction, so a pause or cancel takes effect between chunks). Returns how many
    were handed over."""
    moment = now()
    total = 0
    while True:
        done = _dispatch_chunk(campaign_id, moment, chunk)
        total += done
        if done < chunk:
            return total


# --- the winner -------------------------------------------------------------------------------


@transaction.atomic
def campaign_pick_winner(*, campaign_id: int, force: bool = False) -> dict[str, Any] | None:
    """After the test window: compare the variants on the campaign's metric (z-test, or
    chi-square with more than two), record the decision with its p-value and confidence
    interval, and schedule the winner for the rest of the audience. `force` decides before
    the window ends (staff's "pick now"). None when there is nothing to decide."""
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (CampaignStatus.TESTING, CampaignStatus.SENDING):
        return None
    if campaign.winner_id is not None or not campaign.test_ends_at:
        return None
    if not force and campaign.test_ends_at > now():
        return None
    if Recipient.objects.filter(
        campaign=campaign, group=RecipientGroup.TEST, status=RecipientStatus.PENDING
    ).exists():
        return None  # part of the test is not even handed over yet (paused, throttled)
    counts = selectors.variant_metric_counts(campaign=campaign, group=RecipientGroup.TEST)
    variants = list(campaign.variants.order_by("key"))
    decision = choose_winner(
        [VariantCount(v.key, *counts.get(v.key, (0, 0))) for v in variants]
    ).as_dict()
    decision["metric"] = campaign.metric
    decision["decided_at"] = now().isoformat()
    winner = next(v for v in variants if v.key == decision["winner"])
    rows = Recipient.objects.filter(campaign=campaign, status=RecipientStatus.WAITING)
    waiting, timezones = [], {}
    for pk, cid, zone in rows.values_list("pk", "customer_id", "customer__timezone"):
        waiting.append((pk, cid))
        timezones[cid] = zone
    times = _send_times(campaign, [(cid, winner) for _pk, cid in waiting], now(), timezones)
    by_time: dict[datetime, list[int]] = defaultdict(list)
    for pk, cid in waiting:
        by_time[times[cid]].append(pk)
    for at, pks in by_time.items():
        for start in range(0, len(pks), CREATE_BATCH):
            Recipient.objects.filter(
                pk__in=pks[start : start + CREATE_BATCH], status=RecipientStatus.WAITING
            ).update(variant=winner, status=RecipientStatus.PENDING, scheduled_at=at)
    Campaign.objects.filter(pk=campaign.pk).update(
        winner=winner,
        winner_decision=decision,
        status=CampaignStatus.SENDING
        if campaign.status == CampaignStatus.TESTING
        else campaign.status,
        updated_at=now(),
    )
    _publish("campaign.winner_chosen", campaign, winner=winner.key, p_value=decision["p_value"])
    from kizuna.campaigns import tasks

    transaction.on_commit(lambda: tasks.dispatch_campaign(campaign_id))
    return decision


# --- pause, resume, cancel, test send -----------------------------------------------------


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor: AbstractBaseUser | None = None) -> Campaign:
    """Stop handing recipients to messaging, and hold what messaging has queued for it
    (messages already being sent finish; the rest waits, queued, until resumed)."""
    current = Campaign.objects.select_for_update().get(pk=campaign.pk).status
    pausable = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.TESTING)
    with acting_as(actor):
        if current not in pausable or not _transition(
            campaign, (current,), CampaignStatus.PAUSED, paused_from=current
        ):
            raise ValidationError(
                {"status": [_("Only a scheduled or sending campaign can pause.")]}
            )
    messaging.send_hold(key=hold_key(campaign), actor=actor)
    _publish("campaign.paused", campaign)
    return campaign


def hold_key(campaign: Campaign) -> str:
    """The messaging hold that pauses this campaign's queued deliveries."""
    return f"source:campaign:{campaign.pk}:"


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor: AbstractBaseUser | None = None) -> Campaign:
    if not _can_send(actor):
        raise PermissionDenied(_("Resuming a campaign needs the permission to send campaigns."))
    current = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if current.status != CampaignStatus.PAUSED:
        raise ValidationError({"status": [_("The campaign is not paused.")]})
    back = current.paused_from or CampaignStatus.SENDING
    with acting_as(actor):
        _transition(campaign, (CampaignStatus.PAUSED,), back, paused_from="")
    messaging.send_release(key=hold_key(campaign), actor=actor)
    from kizuna.campaigns import tasks

    campaign_id = campaign.pk
    if back == CampaignStatus.SCHEDULED:
        transaction.on_commit(lambda: tasks.start_campaign(campaign_id))
    else:
        transaction.on_commit(lambda: tasks.dispatch_campaign(campaign_id))
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: AbstractBaseUser | None = None) -> Campaign:
    """Stop for good: recipients not yet handed to messaging are cancelled, and so are the
    deliveries messaging still has queued for it (final state `cancelled`)."""
    cancellable = (
        CampaignStatus.DRAFT,
        CampaignStatus.PENDING_APPROVAL,
        CampaignStatus.SCHEDULED,
        CampaignStatus.SENDING,
        CampaignStatus.TESTING,
        CampaignStatus.PAUSED,
    )
    with acting_as(actor):
        if not _transition(campaign, cancellable, CampaignStatus.CANCELLED, completed_at=now()):
            raise ValidationError({"status": [_("The campaign has already finished.")]})
        Recipient.objects.filter(
            campaign=campaign, status__in=[RecipientStatus.PENDING, RecipientStatus.WAITING]
        ).update(status=RecipientStatus.CANCELLED)
        messaging.deliveries_cancel(
            source_prefix=f"campaign:{campaign.pk}:", reason="the campaign was cancelled"
        )
        messaging.send_release(key=hold_key(campaign))  # nothing of it is left waiting
    _publish("campaign.cancelled", campaign)
    return campaign


def campaign_test_send(
    *,
    campaign: Campaign,
    variant_key: str,
    to_address: str,
    channel_kind: str = ChannelKind.EMAIL,
    customer: Customer | None = None,
    actor: AbstractBaseUser | None = None,
) -> Delivery:
    """Send one variant, rendered for a customer of the audience (or the one given), to a
    staff address or LINE user id."""
    variant = campaign.variants.filter(key=variant_key).first()
    if variant is None:
        raise ValidationError({"variant": [_("Unknown variant.")]})
    if channel_kind == ChannelKind.LINE:
        channel, template = campaign.line_channel, variant.line_template
    else:
        channel, template = campaign.email_channel, variant.sent_email_template
    if channel is None or template is None:
        raise ValidationError({"channel": [_("The campaign does not send on this channel.")]})
    if customer is None:
        sample = selectors.audience_ids(campaign=campaign, limit=1)
        customer = Customer.objects.filter(pk__in=sample).first()
    if customer is None:
        raise ValidationError({"customer": [_("The audience is empty: no one to render for.")]})
    return messaging.test_send(
        template=template, channel=channel, customer=customer, to_address=to_address, actor=actor
    )


# --- the worker's periodic work -----------------------------------------------------------


def campaigns_due() -> dict[str, list[int]]:
    """Ids of campaigns with work to do now: to start, to dispatch, to pick a winner for."""
    moment = now()
    start = list(
        Campaign.objects.filter(status=CampaignStatus.SCHEDULED, start_at__lte=moment).values_list(
            "pk", flat=True
        )
    )
    dispatch = list(
        Campaign.objects.filter(
            status__in=ACTIVE,
            recipients__status=RecipientStatus.PENDING,
            recipients__scheduled_at__lte=moment,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    winners = list(
        Campaign.objects.filter(
            status=CampaignStatus.TESTING, winner__isnull=True, test_ends_at__lte=moment
        ).values_list("pk", flat=True)
    )
    return {"start": start, "dispatch": dispatch, "winner": winners}
