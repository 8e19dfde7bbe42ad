"""Send-time guardrails: every refusal is recorded with its reason and nothing is sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from kizuna.customers import services as customer_services
from kizuna.customers.models import Event
from kizuna.messaging import guardrails, services
from kizuna.messaging.models import Delivery, Suppression
from kizuna.messaging.tests.conftest import follow, make_customer, make_email_channel

pytestmark = pytest.mark.django_db


def _enqueue(commit, customer, channel, template, source="campaign:1") -> Delivery:
    delivery, _ = commit(
        services.delivery_enqueue,
        source=source,
        customer=customer,
        channel=channel,
        template=template,
    )
    delivery.refresh_from_db()
    return delivery


def test_marketing_email_without_opt_in_is_refused(commit, smtp_server, email_channel, newsletter):
    customer = make_customer(opt_in=False)
    delivery = _enqueue(commit, customer, email_channel, newsletter)
    assert delivery.status == "refused" and delivery.reason.startswith("no_consent")
    assert list(delivery.history.values_list("status", flat=True)) == ["queued", "refused"]
    assert smtp_server[1].messages == []
    assert Event.objects.filter(customer=customer, type="email.refused").count() == 1
    # a withdrawal after an opt-in wins (the newest ledger entry)
    customer_services.consent_record(
        customer=customer, purpose="marketing", channel="email", status="granted", source="t"
    )
    customer_services.consent_record(
        customer=customer, purpose="marketing", channel="email", status="withdrawn", source="t"
    )
    again = _enqueue(commit, customer, email_channel, newsletter, source="campaign:2")
    assert again.status == "refused" and smtp_server[1].messages == []


def test_suppressed_address_is_refused_even_for_transactional_bounces(
    commit, smtp_server, email_channel, newsletter
):
    customer = make_customer()
    services.suppression_add(
        channel_kind="email", address="HANAKO@example.jp ", reason="hard_bounce"
    )
    assert Suppression.objects.get().address_hash == guardrails.address_hash("hanako@example.jp")
    assert "hanako" not in Suppression.objects.get().address_hash
    delivery = _enqueue(commit, customer, email_channel, newsletter)
    assert delivery.status == "refused" and delivery.reason.startswith("suppressed")
    assert smtp_server[1].messages == []


def test_unsubscribe_suppression_is_lifted_only_by_a_later_opt_in(
    commit, smtp_server, email_channel, newsletter
):
    customer = make_customer()
    first = _enqueue(commit, customer, email_channel, newsletter)
    assert first.status == "sent"
    commit(services.unsubscribe, delivery_id=first.pk)
    refused = _enqueue(commit, customer, email_channel, newsletter, source="campaign:2")
    assert refused.status == "refused"
    assert refused.reason.split(":")[0] in ("suppressed", "no_consent")
    commit(
        services.preferences_save,
        customer=customer,
        channels={"email": True},
        topics=[],
        frequency="normal",
    )
    again = _enqueue(commit, customer, email_channel, newsletter, source="campaign:3")
    assert again.status == "sent", again.reason
    assert len(smtp_server[1].messages) == 2
    assert Suppression.objects.filter(reason="unsubscribe").count() == 1  # never deleted


@override_settings(KIZUNA_MESSAGE_DAILY_CAP=2)
def test_frequency_cap_per_customer_per_channel(commit, smtp_server, email_channel, newsletter):
    customer = make_customer()
    results = [
        _enqueue(commit, customer, email_channel, newsletter, source=f"c:{i}").status
        for i in range(3)
    ]
    assert results == ["sent", "sent", "refused"]
    assert Delivery.objects.get(source="c:2").reason.startswith("frequency_cap")
    assert len(smtp_server[1].messages) == 2


def test_weekly_frequency_preference_caps_at_one(commit, smtp_server, email_channel, newsletter):
    customer = make_customer()
    commit(
        services.preferences_save,
        customer=customer,
        channels={"email": True},
        topics=[],
        frequency="weekly",
    )
    assert _enqueue(commit, customer, email_channel, newsletter, source="a").status == "sent"
    assert _enqueue(commit, customer, email_channel, newsletter, source="b").status == "refused"


def test_topic_opt_out_refuses_other_topics(commit, smtp_server, email_channel, newsletter):
    customer = make_customer()
    commit(
        services.preferences_save,
        customer=customer,
        channels={"email": True},
        topics=["events"],
        frequency="normal",
    )
    delivery = _enqueue(commit, customer, email_channel, newsletter)  # topic "sale"
    assert delivery.status == "refused" and delivery.reason.startswith("topic_opt_out")


def test_marketing_email_needs_sender_identity_and_address(commit, smtp_server, newsletter):
    channel = make_email_channel(smtp_server[0].port, physical_address="")
    delivery = _enqueue(commit, make_customer(), channel, newsletter)
    assert delivery.status == "refused" and delivery.reason.startswith("sender_identity")
    assert smtp_server[1].messages == []


def test_quiet_hours_in_the_customer_time_zone() -> None:
    hours = guardrails.parse_quiet_hours("21-8")
    # 13:30 UTC = 22:30 in Tokyo (quiet) but 14:30 in London (not quiet)
    moment = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    until = guardrails.quiet_until(moment, "Asia/Tokyo", hours)
    assert until is not None and until.isoformat() == "2026-03-03T08:00:00+09:00"
    assert guardrails.quiet_until(moment, "Europe/London", hours) is None
    early = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 05:00 in Tokyo: quiet until 08:00 today
    early_until = guardrails.quiet_until(early, "Asia/Tokyo", hours)
    assert early_until is not None
    assert early_until.isoformat() == "2026-03-03T08:00:00+09:00"
    assert guardrails.parse_quiet_hours("off") is None


def test_line_push_deferred_at_night_and_not_sent(
    commit, line_api, line_channel, line_template, monkeypatch, settings
):
    from kizuna.messaging import tasks

    settings.KIZUNA_QUIET_HOURS = "21-8"
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, "U" + "a" * 32)
    night = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo
    monkeypatch.setattr(services, "now", lambda: night)
    scheduled = []
    monkeypatch.setattr(
        tasks.services, "enqueue_now", lambda ids, delay=None: scheduled.append(delay)
    )
    delivery = _enqueue(commit, customer, line_channel, line_template)
    assert delivery.status == "deferred" and delivery.reason.startswith("quiet_hours")
    assert delivery.not_before is not None
    assert delivery.not_before.isoformat() == "2026-03-02T23:00:00+00:00"  # 08:00 JST
    assert scheduled == [9.5 * 3600]
    assert line_api.requests == []
    morning = datetime(2026, 3, 2, 23, 0, 1, tzinfo=UTC)
    monkeypatch.setattr(services, "now", lambda: morning)
    services.delivery_send_batch(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "sent", delivery.reason
    assert len(line_api.requests) == 1


def test_line_refused_when_the_customer_blocked_the_account(
    commit, line_api, line_channel, line_template
):
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, "U" + "b" * 32)
    from kizuna.messaging.models import LineContact

    LineContact.objects.update(following=False)
    delivery = _enqueue(commit, customer, line_channel, line_template)
    assert delivery.status == "refused" and delivery.reason.startswith("line_unreachable")
    assert line_api.requests == []


def test_guardrail_order_is_pure() -> None:
    facts = guardrails.Facts(
        channel_kind="email",
        channel_active=True,
        purpose="marketing",
        address="a@b.jp",
        consent=True,
        suppressed=False,
        line_following=True,
        sent_recently=0,
        cap=3,
        timezone="Asia/Tokyo",
        sender_complete=True,
        topic="",
        topics_opted_out=False,
    )
    moment = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert guardrails.check(facts, moment) is None
    from dataclasses import replace

    no_address = guardrails.check(replace(facts, address=""), moment)
    assert isinstance(no_address, guardrails.Refusal) and no_address.code == "no_address"
    inactive = guardrails.check(replace(facts, channel_active=False), moment)
    assert isinstance(inactive, guardrails.Refusal) and inactive.code == "channel_inactive"
    assert guardrails.check(replace(facts, purpose="transactional", consent=False), moment) is None


def test_an_opt_out_or_suppression_while_a_batch_runs_stops_the_next_message(
    smtp_server, email_channel, newsletter, monkeypatch, settings
) -> None:
    """Consent and suppression are read once per batch, and again inside a claim as soon as
    either ledger has grown: a withdrawal made while the batch runs counts at once."""
    settings.KIZUNA_SEND_GROUP = 1  # one message per claim
    first, second, third = (make_customer(f"{n}@example.jp") for n in ("a", "b", "c"))
    deliveries = [
        services.delivery_enqueue(
            source="campaign:mid", customer=c, channel=email_channel, template=newsletter
        )[0]
        for c in (first, second, third)
    ]  # queued: the wake-up waits for a commit this test never makes
    render = services.render_for

    def render_and_opt_out(**kwargs):
        if kwargs["customer"].pk == first.pk:  # the batch has read its facts by now
            customer_services.consent_record(
                customer=second,
                purpose="marketing",
                channel="email",
                status="withdrawn",
                source="t",
            )
            services.suppression_add(channel_kind="email", address="c@example.jp", reason="manual")
        return render(**kwargs)

    monkeypatch.setattr(services, "render_for", render_and_opt_out)
    result = services.delivery_send_batch(delivery_ids=[d.pk for d in deliveries])
    assert result.sent == [deliveries[0].pk]
    assert result.refused == [deliveries[1].pk, deliveries[2].pk]
    reasons = [Delivery.objects.get(pk=d.pk).reason.split(":")[0] for d in deliveries]
    assert reasons == ["", "no_consent", "suppressed"]
    assert [m.recipients for m in smtp_server[1].messages] == [["a@example.jp"]]
    for delivery, event in zip(deliveries, ["sent", "refused", "refused"], strict=True):
        assert Event.objects.filter(
            message_id=f"msg-{delivery.pk}-email.{event}", customer_id=delivery.customer_id
        ).exists()


def test_an_opt_out_while_a_group_is_sent_stops_the_next_group(
    smtp_server, email_channel, newsletter, monkeypatch, settings
) -> None:
    """Bulk claims a group at a time: the ledgers are re-checked with each group's claims, so
    a withdrawal made while group 1 is sent stops the messages of group 2; group 1 was
    checked and claimed before it and is sent."""
    settings.KIZUNA_SEND_GROUP = 2
    people = [make_customer(f"g{n}@example.jp") for n in range(4)]
    deliveries = [
        services.delivery_enqueue(
            source="campaign:group", customer=c, channel=email_channel, template=newsletter
        )[0]
        for c in people
    ]
    render = services.render_for

    def render_and_opt_out(**kwargs):
        if kwargs["customer"].pk == people[0].pk:
            for c in (people[1], people[2]):
                customer_services.consent_record(
                    customer=c, purpose="marketing", channel="email", status="withdrawn",
                    source="t",
                )  # fmt: skip
            services.suppression_add(channel_kind="email", address="g3@example.jp", reason="manual")
        return render(**kwargs)

    monkeypatch.setattr(services, "render_for", render_and_opt_out)
    result = services.delivery_send_batch(delivery_ids=[d.pk for d in deliveries])
    assert result.sent == [deliveries[0].pk, deliveries[1].pk]
    assert result.refused == [deliveries[2].pk, deliveries[3].pk]
    reasons = [Delivery.objects.get(pk=d.pk).reason.split(":")[0] for d in deliveries]
    assert reasons == ["", "", "no_consent", "suppressed"]
    assert [m.recipients for m in smtp_server[1].messages] == [["g0@example.jp"], ["g1@example.jp"]]


def test_a_customer_twice_in_a_batch_is_capped_across_groups(
    smtp_server, email_channel, newsletter, settings
) -> None:
    """A group never holds one customer twice, so the frequency cap counts the first send
    before the second is checked (daily cap 1: the second is refused)."""
    settings.KIZUNA_SEND_GROUP = 20
    settings.KIZUNA_MESSAGE_DAILY_CAP = 1
    c = make_customer("twice@example.jp")
    other = make_customer("other@example.jp")
    a = services.delivery_enqueue(
        source="campaign:a", customer=c, channel=email_channel, template=newsletter
    )[0]
    b = services.delivery_enqueue(
        source="campaign:o", customer=other, channel=email_channel, template=newsletter
    )[0]
    again = services.delivery_enqueue(
        source="campaign:b", customer=c, channel=email_channel, template=newsletter
    )[0]
    result = services.delivery_send_batch(delivery_ids=[a.pk, b.pk, again.pk])
    assert result.sent == [a.pk, b.pk] and result.refused == [again.pk]
    assert [m.recipients for m in smtp_server[1].messages] == [
        ["twice@example.jp"],
        ["other@example.jp"],
    ]


def test_each_message_of_a_batch_costs_the_same_few_statements(
    smtp_server, email_channel, newsletter, settings
) -> None:
    """One transaction per message (group of 1): record the previous outcome (delivery row,
    history row, timeline event, customer last seen), re-check the ledgers, claim the next
    one."""
    settings.KIZUNA_SEND_GROUP = 1
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(n: int, tag: str) -> int:
        ids = [
            services.delivery_enqueue(
                source="campaign:q",
                customer=make_customer(f"q{tag}{i}@example.jp"),
                channel=email_channel,
                template=newsletter,
            )[0].pk
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as queries:
            result = services.delivery_send_batch(delivery_ids=ids)
        assert result.sent == ids
        skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
        return sum(1 for q in queries.captured_queries if not q["sql"].startswith(skip))

    assert statements(8, "b") - statements(4, "a") == 4 * 6
    assert Event.objects.filter(type="email.sent").count() == 12


def test_a_group_of_messages_costs_the_statements_of_one(
    smtp_server, email_channel, newsletter, settings
) -> None:
    """Bulk groups (KIZUNA_SEND_GROUP): claims in one UPDATE, outcomes in one executemany, one
    history insert and one timeline insert per group; so 4 more messages in the same group
    cost no statement more, and one more group costs the statements of one message and the
    re-read of the holds (a pause stops a bulk task at the next group)."""
    settings.KIZUNA_SEND_GROUP = 8
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(n: int, tag: str) -> int:
        ids = [
            services.delivery_enqueue(
                source="campaign:g",
                customer=make_customer(f"s{tag}{i}@example.jp"),
                channel=email_channel,
                template=newsletter,
            )[0].pk
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as queries:
            result = services.delivery_send_batch(delivery_ids=ids)
        assert result.sent == ids
        skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
        return sum(1 for q in queries.captured_queries if not q["sql"].startswith(skip))

    four, eight, sixteen = statements(4, "a"), statements(8, "b"), statements(16, "c")
    assert eight == four
    assert sixteen - eight == 6 + 1
    assert Event.objects.filter(type="email.sent").count() == 28


def test_a_duplicate_wake_up_reads_once_and_writes_nothing(
    smtp_server, email_channel, newsletter
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = [
        services.delivery_enqueue(
            source="campaign:dup",
            customer=make_customer(f"d{i}@example.jp"),
            channel=email_channel,
            template=newsletter,
        )[0].pk
        for i in range(3)
    ]
    assert services.delivery_send_batch(delivery_ids=ids).sent == ids
    with CaptureQueriesContext(connection) as queries:
        again = services.delivery_send_batch(delivery_ids=ids)
    assert again.skipped == ids and again.sent == []
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("SELECT")
    assert len(smtp_server[1].messages) == 3
