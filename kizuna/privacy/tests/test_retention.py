"""Retention: old raw events are counted per type and month and deleted, old delivery bodies
are blanked (rows and statistics stay), processed inbox batches go; dry run changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

from django.core.management import call_command

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.services import event_record
from kizuna.messaging.models import Delivery
from kizuna.privacy import retention
from kizuna.privacy.models import EventAggregate, RetentionRun
from kizuna.privacy.tests.conftest import World
from kizuna.tracking.models import InboxBatch, Source


def test_retention_aggregates_then_deletes_and_dry_run_only_counts(
    world: World, settings: object
) -> None:
    t = now()
    old = t - timedelta(days=800)
    for _ in range(3):
        event_record(type="Page Viewed", customer=world.subject, occurred_at=old)
    event_record(type="Page Viewed", customer=world.other, occurred_at=old)
    Delivery.objects.filter(customer=world.subject).update(created_at=t - timedelta(days=400))
    source = Source.objects.create(name="web", write_key_prefix="wk_x", write_key_digest="d")
    InboxBatch.objects.create(
        source=source, received_at=old, message_count=1, payload="[]", processed_at=old
    )
    InboxBatch.objects.create(source=source, received_at=t, message_count=1, payload="[]")
    events_before = Event.objects.count()
    deliveries_before = Delivery.objects.count()

    out = StringIO()
    call_command("privacy", "retention", "--dry-run", stdout=out)
    report = json.loads(out.getvalue())
    assert report["dry_run"] is True
    assert report["events"]["rows"] == 4
    assert report["delivery_bodies"]["rows"] == 1
    assert report["inbox"]["rows"] == 1
    assert Event.objects.count() == events_before and not EventAggregate.objects.exists()

    result = retention.run()
    assert result.report["events"]["rows"] == 4
    assert Event.objects.count() == events_before - 4
    aggregate = EventAggregate.objects.get(type="Page Viewed")
    assert (aggregate.count, aggregate.customers) == (4, 2)
    assert aggregate.month.day == 1
    assert Delivery.objects.count() == deliveries_before
    assert Delivery.objects.get(customer=world.subject).rendered == {}
    assert Delivery.objects.get(customer=world.other).rendered != {}
    assert InboxBatch.objects.count() == 1
    assert RetentionRun.objects.count() == 2

    # A second run finds nothing more.
    again = retention.run()
    assert again.report["events"]["rows"] == 0 and again.report["inbox"]["rows"] == 0
    assert EventAggregate.objects.get(type="Page Viewed").count == 4


def test_a_policy_set_to_zero_is_off(world: World, settings: object) -> None:
    settings.PRIVACY_RETAIN_EVENTS_MONTHS = 0  # type: ignore[attr-defined]
    event_record(type="Old", customer=world.subject, occurred_at=now() - timedelta(days=5000))
    result = retention.run()
    assert "events" not in result.report
    assert Event.objects.filter(type="Old").exists()
