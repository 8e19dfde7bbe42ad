"""Retention: old raw events are counted per type and month and deleted, old delivery bodies
are blanked (rows and statistics stay), processed inbox batches go; dry run changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
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


def test_finished_inquiries_and_old_survey_text_are_scrubbed_counts_kept(
    world: World, settings: object
) -> None:
    from kizuna.support.models import Attachment, Inquiry, Message
    from kizuna.surveys.models import Answer, Question, Response, Survey

    t = now()
    long_ago = t - timedelta(days=1200)

    def inquiry(token: str, status: str, closed: datetime | None) -> Inquiry:
        item = Inquiry.objects.create(
            customer=world.subject,
            contact_name="山田 花子",
            contact_email="hanako.yamada@example.jp",
            origin="portal",
            subject="配送について 山田",
            status=status,
            reply_token=token,
            first_response_due=long_ago,
            resolution_due=long_ago,
            resolved_at=closed,
            closed_at=closed if status == "closed" else None,
            created_at=long_ago,
        )
        message = Message.objects.create(
            inquiry=item, direction="inbound", body="山田です。届きません", created_at=long_ago
        )
        Attachment.objects.create(
            message=message, filename="a.txt", content_type="text/plain", size=1, data=b"x"
        )
        return item

    old_closed = inquiry("T1", "closed", long_ago)
    old_open = inquiry("T2", "open", None)  # still open: kept whatever its age
    recent = inquiry("T3", "resolved", t - timedelta(days=10))

    survey = Survey.objects.create(slug="s", title="S")
    question = Question.objects.create(
        survey=survey, version=1, position=1, key="why", kind="text", text="Why?"
    )
    old_response = Response.objects.create(
        survey=survey, version=1, customer=world.subject, nps=9, submitted_at=long_ago
    )
    new_response = Response.objects.create(
        survey=survey, version=1, customer=world.other, nps=3, submitted_at=t
    )
    for response in (old_response, new_response):
        Answer.objects.create(
            response=response, question=question, score=None, text="山田の意見", terms=["意見"]
        )

    dry = retention.run(dry_run=True)
    assert dry.report["inquiries"] == {
        "cutoff": dry.report["inquiries"]["cutoff"],
        "seconds": dry.report["inquiries"]["seconds"],
        "rows": 1,
        "messages": 1,
        "attachments": 1,
    }
    assert dry.report["survey_text"]["rows"] == 1
    assert Message.objects.filter(inquiry=old_closed).get().body == "山田です。届きません"

    done = retention.run()
    assert done.report["inquiries"]["rows"] == 1 and done.report["survey_text"]["rows"] == 1
    old_closed.refresh_from_db()
    assert (old_closed.contact_name, old_closed.contact_email) == ("", "")
    assert "山田" not in old_closed.subject and old_closed.status == "closed"
    assert Message.objects.get(inquiry=old_closed).body == ""
    assert not Attachment.objects.filter(message__inquiry=old_closed).exists()
    for kept in (old_open, recent):
        kept.refresh_from_db()
        assert kept.contact_name == "山田 花子"
        assert Message.objects.get(inquiry=kept).body == "山田です。届きません"
    assert Inquiry.objects.count() == 3  # rows stay for the support statistics
    assert Answer.objects.get(response=old_response).text == ""
    assert Answer.objects.get(response=old_response).terms == []
    assert Answer.objects.get(response=new_response).text == "山田の意見"
    assert sorted(n or 0 for n in Response.objects.values_list("nps", flat=True)) == [3, 9]

    again = retention.run()
    assert again.report["inquiries"]["rows"] == 0 and again.report["survey_text"]["rows"] == 0

    settings.PRIVACY_RETAIN_INQUIRIES_DAYS = 0  # type: ignore[attr-defined]
    settings.PRIVACY_RETAIN_SURVEY_TEXT_MONTHS = 0  # type: ignore[attr-defined]
    off = retention.run()
    assert "inquiries" not in off.report and "survey_text" not in off.report
