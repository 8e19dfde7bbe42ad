"""Reads of campaigns: the audience (through the segments contract), reach before sending,
send-time facts, and results (from messaging's deliveries and their status history, and
commerce's orders for conversions and revenue)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from kizuna.campaigns import attribution, stats
from kizuna.campaigns.choices import (
    ChannelMode,
    Metric,
    RecipientGroup,
)
from kizuna.campaigns.models import Campaign, Recipient
from kizuna.commerce.models import Order, OrderStatus
from kizuna.core.errors import NotFound
from kizuna.core.timeutil import now
from kizuna.customers.models import ConsentEntry, Customer, Event
from kizuna.messaging.choices import Purpose, Status
from kizuna.messaging.models import Delivery, DeliveryStatus, LineContact
from kizuna.segments import selectors as segment_selectors
from kizuna.segments.models import Segment

OPENS_LOOKBACK = timedelta(days=180)


def campaign_list(*, status: str | None = None) -> QuerySet[Campaign]:
    qs = Campaign.objects.select_related("winner", "created_by").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    return qs


def campaign_get(*, campaign_id: int) -> Campaign:
    campaign = (
        Campaign.objects.select_related("email_channel", "line_channel", "winner")
        .prefetch_related("variants", "include_segments", "exclude_segments")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


# --- audience -----------------------------------------------------------------------------


def included_segments(*, campaign: Campaign) -> list[Segment]:
    through = Campaign.include_segments.through
    order = list(
        through.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("segment_id", flat=True)
    )
    found = {s.pk: s for s in Segment.objects.filter(pk__in=order)}
    return [found[pk] for pk in order if pk in found]


def audience(*, campaign: Campaign) -> QuerySet[Customer]:
    return segment_selectors.audience_customers(
        include=included_segments(campaign=campaign),
        exclude=list(campaign.exclude_segments.all()),
    )


def audience_ids(*, campaign: Campaign, limit: int | None = None) -> list[int]:
    qs = audience(campaign=campaign).order_by("pk").values_list("pk", flat=True)
    return list(qs[:limit] if limit else qs)


def audience_timezones(*, campaign: Campaign) -> dict[int, str]:
    """{customer id: time zone} of the audience, in id order."""
    return dict(audience(campaign=campaign).order_by("pk").values_list("pk", "timezone"))


def segment_member_ids(*, segment: Segment) -> list[int]:
    return list(segment_selectors.segment_customers(segment=segment).values_list("pk", flat=True))


def _email_consented(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    latest = (
        ConsentEntry.objects.filter(
            customer=OuterRef("pk"), purpose="marketing", channel__in=["email", "any"]
        )
        .order_by("-recorded_at", "-id")
        .values("status")[:1]
    )
    return qs.exclude(email="").annotate(_consent=Subquery(latest)).filter(_consent="granted")


def audience_reach(*, campaign: Campaign) -> tuple[int, int]:
    """(audience size, how many could be messaged: a marketing opt-in and an address for
    email, following the LINE account for LINE). A pre-check only: messaging decides each
    message at send time (suppression, caps, quiet hours)."""
    qs = audience(campaign=campaign)
    size = qs.count()
    if size == 0:
        return 0, 0
    ids = qs.values("pk")
    reachable_q = Q(pk__in=[])
    if campaign.channel_mode in (ChannelMode.EMAIL, ChannelMode.LINE_THEN_EMAIL):
        reachable_q |= Q(pk__in=_email_consented(Customer.objects.filter(pk__in=ids)).values("pk"))
    if campaign.channel_mode in (ChannelMode.LINE, ChannelMode.LINE_THEN_EMAIL):
        reachable_q |= Q(
            pk__in=LineContact.objects.filter(
                channel=campaign.line_channel, following=True, customer__in=ids
            ).values("customer_id")
        )
    return size, Customer.objects.filter(pk__in=ids).filter(reachable_q).count()


def line_followers(*, campaign: Campaign, customer_ids: list[int]) -> set[int]:
    if campaign.line_channel_id is None:
        return set()
    followers = set(
        LineContact.objects.filter(
            channel_id=campaign.line_channel_id, following=True, customer_id__isnull=False
        ).values_list("customer_id", flat=True)
    )
    return followers & set(customer_ids)


def open_times(*, customer_ids: list[int]) -> dict[int, list[datetime]]:
    """Each customer's email opens of the last 180 days (from the timeline)."""
    out: dict[int, list[datetime]] = defaultdict(list)
    wanted = set(customer_ids)
    rows = Event.objects.filter(
        type="email.opened", occurred_at__gte=now() - OPENS_LOOKBACK, customer_id__isnull=False
    ).values_list("customer_id", "occurred_at")
    for customer_id, at in rows.iterator(chunk_size=5000):
        if customer_id in wanted:
            out[customer_id].append(at)
    return out


# --- results ------------------------------------------------------------------------------

_ENGAGEMENT = [
    Status.DELIVERED,
    Status.OPENED,
    Status.CLICKED,
    Status.MACHINE_OPENED,
    Status.MACHINE_CLICKED,
    Status.UNSUBSCRIBED,
    Status.BOUNCED,
    Status.COMPLAINED,
]


_ANY_OPEN = {Status.OPENED, Status.CLICKED, Status.MACHINE_OPENED, Status.MACHINE_CLICKED}


@dataclass
class Tally:
    """Counts for one row of the results (a variant, the holdout, a segment). `opened` and
    `clicked` are people's (machines' opens and clicks classified out, see
    kizuna.messaging.engagement); the `_raw` counts include the machines'."""

    recipients: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    opened_raw: int = 0
    clicked_raw: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    complained: int = 0
    refused: int = 0
    failed: int = 0
    queued: int = 0
    conversions: int = 0  # customers with an attributed order
    orders: int = 0
    revenue: int = 0
    customers: set[int] = field(default_factory=set, repr=False)

    def rate(self, what: str) -> float:
        return getattr(self, what) / self.sent if self.sent else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "customers"}
        out.update(
            delivery_rate=self.rate("delivered"),
            open_rate=self.rate("opened"),
            click_rate=self.rate("clicked"),
            open_rate_raw=self.rate("opened_raw"),
            click_rate_raw=self.rate("clicked_raw"),
            conversion_rate=self.rate("conversions"),
            unsubscribe_rate=self.rate("unsubscribed"),
        )
        return out


@dataclass
class _DeliveryFact:
    customer_id: int
    key: str
    sent: bool
    status: str
    flags: set[str]


def _delivery_facts(campaign: Campaign) -> list[_DeliveryFact]:
    prefix = f"campaign:{campaign.pk}:"
    deliveries = Delivery.objects.filter(source__startswith=prefix)
    flags: dict[int, set[str]] = defaultdict(set)
    for delivery_id, status in DeliveryStatus.objects.filter(
        delivery__in=deliveries.values("pk"), status__in=_ENGAGEMENT
    ).values_list("delivery_id", "status"):
        flags[delivery_id].add(status)
    facts = []
    for pk, customer_id, source, status, sent_at in deliveries.values_list(
        "pk", "customer_id", "source", "status", "sent_at"
    ).iterator(chunk_size=5000):
        facts.append(
            _DeliveryFact(
                customer_id,
                source[len(prefix) :],
                sent_at is not None,
                status,
                flags.get(pk, set()),
            )
        )
    return facts


def _count(tally: Tally, fact: _DeliveryFact) -> None:
    f = fact.flags
    if fact.sent:
        tally.sent += 1
        if Status.BOUNCED not in f:
            tally.delivered += 1
    elif fact.status == Status.REFUSED:
        tally.refused += 1
    elif fact.status in (Status.FAILED, Status.UNKNOWN):
        tally.failed += 1
    else:
        tally.queued += 1
    tally.opened += bool(f & {Status.OPENED, Status.CLICKED})
    tally.clicked += Status.CLICKED in f
    tally.opened_raw += bool(f & _ANY_OPEN)
    tally.clicked_raw += bool(f & {Status.CLICKED, Status.MACHINE_CLICKED})
    tally.unsubscribed += Status.UNSUBSCRIBED in f
    tally.bounced += Status.BOUNCED in f
    tally.complained += Status.COMPLAINED in f


def _orders(customer_ids: Any, since: datetime, until: datetime) -> list[attribution.Order]:
    return [
        attribution.Order(pk, cid, at, total - refunded)
        for pk, cid, at, total, refunded in Order.objects.filter(
            customer_id__in=customer_ids, placed_at__gte=since, placed_at__lte=until
        )
        .exclude(status__in=[OrderStatus.CANCELLED, OrderStatus.REFUNDED])
        .values_list("pk", "customer_id", "placed_at", "total_minor", "refunded_minor")
        .iterator(chunk_size=5000)
    ]


def _touches(customer_ids: Any, since: datetime) -> list[attribution.Touch]:
    return [
        attribution.Touch(cid, at, source)
        for cid, at, source in Delivery.objects.filter(
            customer_id__in=customer_ids, purpose=Purpose.MARKETING, sent_at__gte=since
        )
        .values_list("customer_id", "sent_at", "source")
        .iterator(chunk_size=5000)
        if at is not None
    ]


def _recipients(campaign: Campaign) -> dict[int, tuple[str, str | None, int | None]]:
    """{customer id: (group, variant key, segment id)}."""
    return {
        cid: (group, key, segment_id)
        for cid, group, key, segment_id in Recipient.objects.filter(campaign=campaign)
        .values_list("customer_id", "group", "variant__key", "segment_id")
        .iterator(chunk_size=5000)
    }


def _attributed(campaign: Campaign) -> dict[int, list[attribution.Order]]:
    """Orders credited to this campaign, per customer (attribution model and window)."""
    if campaign.launched_at is None:
        return {}
    customer_ids = Recipient.objects.filter(campaign=campaign).values("customer_id")
    orders = _orders(customer_ids, campaign.launched_at, now())
    if not orders:
        return {}
    touches = _touches(customer_ids, campaign.launched_at)
    prefix = f"campaign:{campaign.pk}:"
    credited: dict[int, list[attribution.Order]] = defaultdict(list)
    for order, _touch in attribution.match(
        touches=touches,
        orders=orders,
        sources={t.source for t in touches if t.source.startswith(prefix)},
        window=timedelta(days=campaign.attribution_days),
        model=campaign.attribution_model,
    ):
        credited[order.customer_id].append(order)
    return credited


def variant_metric_counts(
    *, campaign: Campaign, group: str | None = None
) -> dict[str, tuple[int, int]]:
    """{variant key: (successes, trials)} on the campaign's metric, over sent messages."""
    recipients = _recipients(campaign)
    conversions = _attributed(campaign) if campaign.metric == Metric.CONVERSION else {}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for fact in _delivery_facts(campaign):
        info = recipients.get(fact.customer_id)
        if info is None or (group is not None and info[0] != group) or not fact.sent:
            continue
        entry = out[fact.key]
        entry[1] += 1
        if campaign.metric == Metric.OPEN:
            entry[0] += bool(fact.flags & {Status.OPENED, Status.CLICKED})
        elif campaign.metric == Metric.CLICK:
            entry[0] += Status.CLICKED in fact.flags
        else:
            entry[0] += fact.customer_id in conversions
    return {k: (v[0], v[1]) for k, v in out.items()}


def campaign_results(*, campaign: Campaign) -> dict[str, Any]:
    """Everything the results page, the API and the CSV show: per variant, per segment, the
    holdout comparison and the A/B decision (or the interim test)."""
    recipients = _recipients(campaign)
    credited = _attributed(campaign)
    variants = {v.key: v for v in campaign.variants.all()}
    by_variant: dict[str, Tally] = {key: Tally() for key in variants}
    by_segment: dict[int | None, Tally] = defaultdict(Tally)
    test_counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _group, key, segment_id in recipients.values():
        if key is not None:  # not the holdout, nor a rest that never got the winner
            by_variant[key].recipients += 1
            by_segment[segment_id].recipients += 1
    for fact in _delivery_facts(campaign):
        info = recipients.get(fact.customer_id)
        segment_id = info[2] if info else None
        for tally in (by_variant.setdefault(fact.key, Tally()), by_segment[segment_id]):
            _count(tally, fact)
            if (
                fact.sent
                and fact.customer_id in credited
                and fact.customer_id not in tally.customers
            ):
                tally.customers.add(fact.customer_id)
                tally.conversions += 1
                tally.orders += len(credited[fact.customer_id])
                tally.revenue += sum(o.revenue for o in credited[fact.customer_id])
        if info and info[0] == RecipientGroup.TEST and fact.sent:
            entry = test_counts[fact.key]
            entry[1] += 1
            if campaign.metric == Metric.OPEN:
                entry[0] += bool(fact.flags & {Status.OPENED, Status.CLICKED})
            elif campaign.metric == Metric.CLICK:
                entry[0] += Status.CLICKED in fact.flags
            else:
                entry[0] += fact.customer_id in credited
    segment_names = dict(
        Segment.objects.filter(pk__in=[s for s in by_segment if s]).values_list("pk", "name")
    )
    holdout = _holdout(campaign, recipients)
    test = None
    if len(variants) > 1 and test_counts:
        interim = stats.choose_winner(
            [stats.VariantCount(k, *test_counts.get(k, [0, 0])) for k in sorted(variants)]
        )
        test = interim.as_dict()
    return {
        "campaign_id": campaign.pk,
        "status": campaign.status,
        "audience": len(recipients),
        "metric": campaign.metric,
        "attribution_model": campaign.attribution_model,
        "attribution_days": campaign.attribution_days,
        "variants": [
            {"key": k, "name": variants[k].name if k in variants else k, **t.as_dict()}
            for k, t in sorted(by_variant.items())
        ],
        "segments": [
            {"segment_id": s, "name": segment_names.get(s, "") if s else "", **t.as_dict()}
            for s, t in sorted(by_segment.items(), key=lambda item: (item[0] is None, item[0] or 0))
        ],
        "holdout": holdout,
        "test": test,
        "winner": campaign.winner_decision or None,
    }


def _holdout(
    campaign: Campaign, recipients: dict[int, tuple[str, str | None, int | None]]
) -> dict[str, Any] | None:
    """Treated against holdout: customers who ordered within the attribution window after
    the launch, whatever the touch (intention to treat), with a z-test on the difference."""
    held = [cid for cid, info in recipients.items() if info[0] == RecipientGroup.HOLDOUT]
    if not held or campaign.launched_at is None:
        return None
    treated = [
        cid
        for cid, info in recipients.items()
        if info[0] != RecipientGroup.HOLDOUT and info[1] is not None
    ]
    until = min(now(), campaign.launched_at + timedelta(days=campaign.attribution_days))
    orders = _orders(
        Recipient.objects.filter(campaign=campaign).values("customer_id"),
        campaign.launched_at,
        until,
    )
    buyers: dict[int, int] = defaultdict(int)
    for order in orders:
        buyers[order.customer_id] += order.revenue
    held_set, treated_set = set(held), set(treated)
    held_buyers = [c for c in buyers if c in held_set]
    treated_buyers = [c for c in buyers if c in treated_set]
    test = stats.two_proportion_z_test(
        len(held_buyers), len(held), len(treated_buyers), len(treated)
    )
    held_revenue = sum(buyers[c] for c in held_buyers)
    treated_revenue = sum(buyers[c] for c in treated_buyers)
    per_held = held_revenue / len(held) if held else 0.0
    per_treated = treated_revenue / len(treated) if treated else 0.0
    return {
        "holdout_size": len(held),
        "holdout_converters": len(held_buyers),
        "holdout_rate": test.rate_a,
        "holdout_revenue": held_revenue,
        "treated_size": len(treated),
        "treated_converters": len(treated_buyers),
        "treated_rate": test.rate_b,
        "treated_revenue": treated_revenue,
        "lift": test.difference,
        "relative_lift": (test.rate_b / test.rate_a - 1) if test.rate_a else None,
        "incremental_revenue": round((per_treated - per_held) * len(treated)),
        "z": test.z,
        "p_value": test.p_value,
        "ci_low": test.ci_low,
        "ci_high": test.ci_high,
        "window_ends": until.isoformat(),
    }


def recipient_counts(*, campaign: Campaign) -> dict[str, int]:
    from django.db.models import Count

    return {
        row["status"]: row["n"]
        for row in Recipient.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    }
