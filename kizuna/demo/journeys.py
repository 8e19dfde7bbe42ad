"""Journeys of the demo business: three ready-made templates made live (post-purchase
thank-you, birthday coupon, win-back) with recent buyers and at-risk customers enrolled and
their first steps run, so the journey pages show flow charts with counts.

The demo's email channel is switched off (no SMTP server is assumed): the journeys' messages
are queued and then refused with `channel_inactive`, which is visible on each delivery."""

from __future__ import annotations

from kizuna.commerce.models import Order
from kizuna.core.timeutil import now
from kizuna.journeys import services
from kizuna.journeys.services import Entrant
from kizuna.messaging.models import Channel
from kizuna.messaging.services import channel_save

ENROL = 300


def _channel() -> Channel:
    channel = Channel.objects.filter(kind="email").order_by("id").first()
    if channel is not None:
        return channel
    return channel_save(
        kind="email",
        name="デモ配信 / Demo mail",
        settings={
            "host": "127.0.0.1",
            "port": 2525,
            "from_address": "news@kizuna.example",
            "from_name": "絆商店",
            "physical_address": "〒150-0001 東京都渋谷区神宮前1-2-3",
        },
        active=False,
    )


def load() -> None:
    channel = _channel()
    made = {}
    for key in ("post_purchase", "birthday_coupon", "win_back"):
        journey = services.journey_from_template(key=key, email_channel=channel)
        services.journey_publish(journey=journey)
        journey.refresh_from_db()
        made[key] = journey
    buyers = list(
        Order.objects.order_by("-placed_at")
        .values_list("customer_id", flat=True)
        .distinct()[: ENROL * 2]
    )
    recent = list(dict.fromkeys(buyers))[:ENROL]
    services.enrol_many(journey=made["post_purchase"], entrants=[Entrant(c) for c in recent])
    from kizuna.analytics.models import CustomerScore

    at_risk = list(
        CustomerScore.objects.order_by("p_alive").values_list("customer_id", flat=True)[:ENROL]
    )
    services.enrol_many(journey=made["win_back"], entrants=[Entrant(c) for c in at_risk])
    at = now()
    for _batch in range(4):
        if services.journeys_run_due(limit=200, at=at).claimed < 200:
            break
