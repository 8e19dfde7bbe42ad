"""Campaigns end to end against a real SMTP server on loopback (and a LINE-shaped server):
audience from segments, refusals before sending, approval, split and holdout, A/B winner,
throttling, pause / resume / cancel, best-hour scheduling, results and attribution."""

from __future__ import annotations

from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from kizuna.campaigns import selectors, services, tasks
from kizuna.campaigns.models import Campaign, Recipient
from kizuna.campaigns.tests.conftest import campaign_data, make_campaign, make_customer
from kizuna.catalog.models import Product
from kizuna.commerce import services as commerce
from kizuna.core.timeutil import JST, now
from kizuna.customers import services as customer_services
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Delivery, Template
from kizuna.messaging.tests.conftest import follow

pytestmark = pytest.mark.django_db


HUMAN = {
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1",
}


def _age_deliveries() -> None:
    """As if sent ten minutes ago (a click seconds after delivery is a scanner's)."""
    from django.db.models import F

    Delivery.objects.filter(sent_at__isnull=False).update(
        sent_at=F("sent_at") - timedelta(minutes=10)
    )


def _subject(received: Any) -> str:
    return str(make_header(decode_header(received.message["Subject"])))


def _launch(commit: Any, campaign: Campaign, actor: Any = None) -> Campaign:
    commit(services.campaign_schedule, campaign=campaign, actor=actor)
    campaign.refresh_from_db()
    return campaign


def _order(customer: Any, number: str, at: Any, price: int = 5000) -> None:
    Product.objects.get_or_create(sku="TEA-1", defaults={"name": "抹茶", "price_minor": price})
    commerce.order_place(
        customer=customer, number=number, placed_at=at, lines=[{"sku": "TEA-1", "quantity": 1}]
    )


def test_email_campaign_end_to_end_exactly_once(
    commit, smtp_server, email_channel, newsletter, tokyo, osaka
) -> None:
    hanako = make_customer("hanako@example.jp")
    taro = make_customer("taro@example.jp", prefecture="JP-27")
    make_customer("kyoto@example.jp", prefecture="JP-26")  # in neither segment
    nobody = make_customer("no-consent@example.jp", opt_in=False)
    campaign = make_campaign([tokyo, osaka], email_channel, newsletter)
    campaign = _launch(commit, campaign)
    assert campaign.status == "completed" and campaign.audience_size == 3
    received = sorted(r.recipients[0] for r in smtp_server[1].messages)
    assert received == ["hanako@example.jp", "taro@example.jp"]  # no consent: refused, not sent
    deliveries = {
        d.customer_id: d for d in Delivery.objects.filter(source=f"campaign:{campaign.pk}:A")
    }
    assert set(deliveries) == {hanako.pk, taro.pk, nobody.pk}
    assert deliveries[nobody.pk].status == "refused"
    assert deliveries[nobody.pk].reason.startswith("no_consent")
    assert _subject(smtp_server[1].messages[0]).endswith("秋のセールのお知らせ")
    # Segments per recipient: the first included segment they are in.
    segments = dict(
        Recipient.objects.filter(campaign=campaign).values_list("customer_id", "segment_id")
    )
    assert segments == {hanako.pk: tokyo.pk, nobody.pk: tokyo.pk, taro.pk: osaka.pk}
    # Starting or dispatching again hands nothing over twice.
    assert services.campaign_start(campaign_id=campaign.pk) == 0
    assert services.campaign_dispatch(campaign_id=campaign.pk) == 0
    assert Delivery.objects.filter(source__startswith=f"campaign:{campaign.pk}:").count() == 3
    assert len(smtp_server[1].messages) == 2
    results = selectors.campaign_results(campaign=campaign)
    (row,) = results["variants"]
    assert (row["recipients"], row["sent"], row["delivered"], row["refused"]) == (3, 2, 2, 1)
    by_segment = {s["segment_id"]: s for s in results["segments"]}
    assert by_segment[tokyo.pk]["sent"] == 1 and by_segment[tokyo.pk]["refused"] == 1
    assert by_segment[osaka.pk]["sent"] == 1
    # Engagement through messaging's own tracking shows in the results: people's opens and
    # clicks as the rates, machines' (a scanner clicking at once) only in the raw ones.
    _age_deliveries()
    messaging.delivery_track_open(delivery_id=deliveries[hanako.pk].pk, **HUMAN)
    messaging.delivery_track_click(
        delivery_id=deliveries[hanako.pk].pk, url="https://x.example/", **HUMAN
    )
    messaging.delivery_track_click(
        delivery_id=deliveries[taro.pk].pk, url="https://x.example/", method="HEAD", **HUMAN
    )
    messaging.unsubscribe(delivery_id=deliveries[taro.pk].pk)
    row = selectors.campaign_results(campaign=campaign)["variants"][0]
    assert (row["opened"], row["clicked"], row["unsubscribed"]) == (1, 1, 1)
    assert row["open_rate"] == 0.5 and row["click_rate"] == 0.5
    assert (row["opened_raw"], row["clicked_raw"]) == (2, 2)  # a click implies an open
    assert row["click_rate_raw"] == 1.0


def test_empty_audience_is_refused_before_anything_is_sent(
    commit, smtp_server, email_channel, newsletter, osaka
) -> None:
    make_customer("hanako@example.jp")  # Tokyo, not Osaka
    campaign = make_campaign([osaka], email_channel, newsletter)
    with pytest.raises(ValidationError) as info:
        commit(services.campaign_schedule, campaign=campaign)
    assert info.value.message_dict == {
        "include_segments": ["The audience is empty: no customer is in these segments."]
    }
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert not Recipient.objects.exists() and not Delivery.objects.exists()
    assert smtp_server[1].messages == []


def test_an_audience_without_consent_is_refused(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    make_customer("a@example.jp", opt_in=False)
    withdrawn = make_customer("b@example.jp")
    customer_services.consent_record(
        customer=withdrawn, purpose="marketing", channel="email", status="withdrawn", source="test"
    )
    campaign = make_campaign([tokyo], email_channel, newsletter)
    with pytest.raises(ValidationError) as info:
        commit(services.campaign_schedule, campaign=campaign)
    (message,) = info.value.message_dict["include_segments"]
    assert "None of the 2 customers" in message and "consented" in message
    assert not Delivery.objects.exists() and smtp_server[1].messages == []
    with pytest.raises(ValidationError):
        services.campaign_submit(campaign=campaign)  # nor can it go for approval


def test_approval_flow(commit, make_staff, smtp_server, email_channel, newsletter, tokyo) -> None:
    marketer, admin = make_staff("marketer"), make_staff("admin")
    make_customer("hanako@example.jp")
    campaign = services.campaign_save(
        data=campaign_data([tokyo], email_channel, newsletter), actor=marketer
    )
    assert not marketer.has_perm("campaigns.send_campaign")
    with pytest.raises(PermissionDenied):
        services.campaign_schedule(campaign=campaign, actor=marketer)
    services.campaign_submit(campaign=campaign, actor=marketer)
    assert campaign.status == "pending_approval" and campaign.submitted_by == marketer
    with pytest.raises(ValidationError):  # no edits while waiting
        services.campaign_save(
            data=campaign_data([tokyo], email_channel, newsletter), campaign=campaign
        )
    with pytest.raises(PermissionDenied):
        services.campaign_reject(campaign=campaign, note="no", actor=marketer)
    services.campaign_reject(campaign=campaign, note="件名を直してください", actor=admin)
    assert campaign.status == "draft" and campaign.note == "件名を直してください"
    assert smtp_server[1].messages == []
    services.campaign_submit(campaign=campaign, actor=marketer)
    campaign = _launch(commit, campaign, actor=admin)
    assert campaign.approved_by == admin and campaign.status == "completed"
    assert len(smtp_server[1].messages) == 1


def test_holdout_gets_nothing_and_is_compared(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    customers = [make_customer(f"c{i}@example.jp") for i in range(40)]
    campaign = make_campaign([tokyo], email_channel, newsletter, holdout_percent=30)
    campaign = _launch(commit, campaign)
    held = set(
        Recipient.objects.filter(campaign=campaign, group="holdout").values_list(
            "customer_id", flat=True
        )
    )
    assert 4 <= len(held) <= 20  # 30% of 40, give or take the hash
    assert Recipient.objects.filter(customer_id__in=held).exclude(status="held_out").count() == 0
    sent_to = set(Delivery.objects.values_list("customer_id", flat=True))
    assert sent_to == {c.pk for c in customers} - held
    assert len(smtp_server[1].messages) == 40 - len(held)
    # Orders within the window: two treated buyers, one held-out buyer; one order too late.
    treated = [c for c in customers if c.pk not in held]
    holdout = [c for c in customers if c.pk in held]
    _order(treated[0], "O-1", now() + timedelta(hours=1))
    _order(treated[1], "O-2", now() + timedelta(days=2))
    _order(holdout[0], "O-3", now() + timedelta(days=1))
    results = selectors.campaign_results(campaign=campaign)
    h = results["holdout"]
    assert (h["holdout_size"], h["treated_size"]) == (len(held), 40 - len(held))
    # Orders in the future have not happened yet "now": the window ends at now().
    assert h["treated_converters"] == 0 and h["holdout_converters"] == 0
    Campaign.objects.filter(pk=campaign.pk).update(launched_at=now() - timedelta(days=6))
    Delivery.objects.update(sent_at=now() - timedelta(days=6))
    campaign.refresh_from_db()
    for number, customer, days_ago in [("O-4", treated[0], 5), ("O-5", treated[1], 1)]:
        _order(customer, number, now() - timedelta(days=days_ago))
    _order(holdout[0], "O-6", now() - timedelta(days=2))
    h = selectors.campaign_results(campaign=campaign)["holdout"]
    assert (h["treated_converters"], h["holdout_converters"]) == (2, 1)
    assert h["treated_rate"] == pytest.approx(2 / (40 - len(held)))
    assert h["holdout_rate"] == pytest.approx(1 / len(held))
    assert 0 < h["p_value"] <= 1 and h["ci_low"] < h["lift"] < h["ci_high"]


def test_attribution_window_and_last_touch(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    a, b, c = (make_customer(f"{n}@example.jp") for n in ("a", "b", "c"))
    campaign = make_campaign([tokyo], email_channel, newsletter, attribution_days=3)
    campaign = _launch(commit, campaign)
    ten_days = now() - timedelta(days=10)
    Campaign.objects.filter(pk=campaign.pk).update(launched_at=ten_days)
    Delivery.objects.update(sent_at=ten_days)
    campaign.refresh_from_db()
    _order(a, "A-1", ten_days + timedelta(days=2), price=3000)  # within 3 days: credited
    _order(b, "B-1", ten_days + timedelta(days=4))  # after the window
    # c bought within the window, but after another marketing message (last touch).
    other = Delivery.objects.get(customer=c)
    Delivery.objects.create(
        idempotency_key="other-1",
        source="journey:welcome",
        customer=c,
        channel=email_channel,
        template=newsletter,
        purpose="marketing",
        status="sent",
        sent_at=ten_days + timedelta(days=1),
    )
    _order(c, "C-1", ten_days + timedelta(days=2))
    row = selectors.campaign_results(campaign=campaign)["variants"][0]
    assert (row["conversions"], row["orders"], row["revenue"]) == (1, 1, 3000)
    assert other.source == f"campaign:{campaign.pk}:A"
    Campaign.objects.filter(pk=campaign.pk).update(
        attribution_model="any_touch", attribution_days=5
    )
    campaign.refresh_from_db()
    row = selectors.campaign_results(campaign=campaign)["variants"][0]
    assert (row["conversions"], row["orders"]) == (3, 3)


def test_ab_test_picks_a_significant_winner_for_the_rest(
    commit, smtp_server, email_channel, newsletter, newsletter_b, tokyo
) -> None:
    for i in range(120):
        make_customer(f"c{i}@example.jp")
    campaign = make_campaign(
        [tokyo],
        email_channel,
        newsletter,
        newsletter_b,
        test_percent=50,
        test_hours=2,
        metric="open",
    )
    campaign = _launch(commit, campaign)
    assert campaign.status == "testing" and campaign.test_ends_at is not None
    test = Recipient.objects.filter(campaign=campaign, group="test")
    rest = Recipient.objects.filter(campaign=campaign, group="remainder")
    assert (
        test.count() + rest.count() == 120 and rest.filter(status="waiting").count() == rest.count()
    )
    assert len(smtp_server[1].messages) == test.count()
    # Each message carries its variant's subject.
    by_address = {m.recipients[0]: _subject(m) for m in smtp_server[1].messages}
    for delivery in Delivery.objects.select_related("customer"):
        expected = "【B】" if delivery.source.endswith(":B") else "山田 "
        assert by_address[delivery.customer.email].startswith(expected)
    assert {d.source[-1] for d in Delivery.objects.all()} == {"A", "B"}
    # Everyone who got B opened it; everyone who got A "opened" it too, but only through
    # Apple's Mail Privacy Protection proxy: a machine, so A has no human opens.
    _age_deliveries()
    for delivery in Delivery.objects.filter(source=f"campaign:{campaign.pk}:B"):
        messaging.delivery_track_open(delivery_id=delivery.pk, **HUMAN)
    for delivery in Delivery.objects.filter(source=f"campaign:{campaign.pk}:A"):
        messaging.delivery_track_open(
            delivery_id=delivery.pk, ip="17.58.101.5", user_agent="Mozilla/5.0"
        )
    a_row = next(
        v for v in selectors.campaign_results(campaign=campaign)["variants"] if v["key"] == "A"
    )
    assert a_row["opened"] == 0 and a_row["opened_raw"] == a_row["sent"] > 0
    # Before the window ends, nothing is decided.
    assert services.campaign_pick_winner(campaign_id=campaign.pk) is None
    Campaign.objects.filter(pk=campaign.pk).update(test_ends_at=now() - timedelta(minutes=1))
    with_capture = commit(tasks.campaigns_sweep.call_local)
    assert with_capture["winner"] == [campaign.pk]
    campaign.refresh_from_db()
    decision = campaign.winner_decision
    assert campaign.winner is not None and campaign.winner.key == "B"
    assert decision["significant"] is True
    assert decision["p_value"] < 0.001 and decision["ci_low"] > 0 and decision["metric"] == "open"
    assert campaign.status == "completed"
    rest_ids = set(rest.values_list("customer_id", flat=True))
    rest_sources = set(
        Delivery.objects.filter(customer_id__in=rest_ids).values_list("source", flat=True)
    )
    assert rest_sources == {f"campaign:{campaign.pk}:B"}
    assert len(smtp_server[1].messages) == 120
    assert services.campaign_pick_winner(campaign_id=campaign.pk, force=True) is None


def test_subject_variant_uses_a_copy_of_the_template(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    make_customer("hanako@example.jp")
    data = campaign_data([tokyo], email_channel, newsletter)
    data["variants"] = [
        {"email_template": newsletter.pk},
        {"email_template": newsletter.pk, "subject": "{{ customer.name }}様だけの特典"},
    ]
    campaign = services.campaign_save(data=data)
    b = campaign.variants.get(key="B")
    assert b.sent_email_template is not None and b.sent_email_template != newsletter
    assert (
        b.sent_email_template.variants.get(locale="ja").subject == "{{ customer.name }}様だけの特典"
    )
    delivery = commit(
        services.campaign_test_send,
        campaign=campaign,
        variant_key="B",
        to_address="staff@kizuna.example",
    )
    delivery.refresh_from_db()
    assert delivery.status == "sent", delivery.reason
    (received,) = smtp_server[1].messages
    assert received.recipients == ["staff@kizuna.example"]
    assert _subject(received) == "山田 hanako様だけの特典"
    assert (
        Delivery.objects.filter(customer__email="hanako@example.jp").count() == 1
    )  # the test only
    with pytest.raises(ValidationError):
        services.campaign_test_send(campaign=campaign, variant_key="Z", to_address="x@example.jp")


def test_throttle_pause_resume_and_cancel(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    for i in range(5):
        make_customer(f"c{i}@example.jp")
    campaign = make_campaign([tokyo], email_channel, newsletter, throttle_per_minute=2)
    campaign = _launch(commit, campaign)
    assert campaign.status == "sending"
    times = sorted(
        at
        for at in Recipient.objects.filter(campaign=campaign).values_list("scheduled_at", flat=True)
        if at is not None
    )
    assert len(times) == 5
    assert times[1] == times[0] and times[2] - times[0] == timedelta(minutes=1)
    assert times[4] - times[0] == timedelta(minutes=2)
    assert len(smtp_server[1].messages) == 2
    services.campaign_pause(campaign=campaign)
    Recipient.objects.filter(campaign=campaign, status="pending").update(scheduled_at=now())
    assert services.campaign_dispatch(campaign_id=campaign.pk) == 0  # paused: nothing handed over
    assert len(smtp_server[1].messages) == 2
    commit(services.campaign_resume, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "completed" and len(smtp_server[1].messages) == 5
    with pytest.raises(ValidationError):
        services.campaign_cancel(campaign=campaign)  # finished already


def test_cancel_stops_what_was_not_handed_over(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    for i in range(4):
        make_customer(f"c{i}@example.jp")
    campaign = make_campaign([tokyo], email_channel, newsletter, throttle_per_minute=1)
    campaign = _launch(commit, campaign)
    assert len(smtp_server[1].messages) == 1
    services.campaign_cancel(campaign=campaign)
    assert Recipient.objects.filter(campaign=campaign, status="cancelled").count() == 3
    Recipient.objects.filter(campaign=campaign).update(scheduled_at=now() - timedelta(minutes=5))
    commit(tasks.campaigns_sweep.call_local)
    assert len(smtp_server[1].messages) == 1
    assert Delivery.objects.count() == 1


def test_scheduled_at_a_time_starts_from_the_sweep(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    make_customer("hanako@example.jp")
    send_at = now() + timedelta(hours=3)
    campaign = make_campaign([tokyo], email_channel, newsletter, schedule="at", send_at=send_at)
    campaign = _launch(commit, campaign)
    assert campaign.status == "scheduled" and campaign.start_at == send_at
    commit(tasks.campaigns_sweep.call_local)
    assert smtp_server[1].messages == [] and not Recipient.objects.exists()
    Campaign.objects.filter(pk=campaign.pk).update(start_at=now() - timedelta(seconds=1))
    due = commit(tasks.campaigns_sweep.call_local)
    assert due["start"] == [campaign.pk]
    assert len(smtp_server[1].messages) == 1
    past = make_campaign([tokyo], email_channel, newsletter, schedule="at", send_at=send_at)
    Campaign.objects.filter(pk=past.pk).update(send_at=now() - timedelta(minutes=1))
    past.refresh_from_db()
    with pytest.raises(ValidationError) as info:
        services.campaign_schedule(campaign=past)
    assert "send_at" in info.value.message_dict


def test_best_hour_from_past_opens(commit, smtp_server, email_channel, newsletter, tokyo) -> None:
    night_owl = make_customer("owl@example.jp")
    fresh = make_customer("new@example.jp")
    start = now()
    evening = (start.astimezone(JST).hour + 5) % 24  # some hour that is not now
    for day in (1, 2, 3):
        moment = (start - timedelta(days=day)).astimezone(JST)
        customer_services.event_record(
            type="email.opened",
            customer=night_owl,
            occurred_at=moment.replace(hour=evening, minute=15),
            source="messaging",
        )
    default = (evening + 3) % 24
    campaign = make_campaign(
        [tokyo], email_channel, newsletter, schedule="best_hour", default_hour=default
    )
    campaign = _launch(commit, campaign)
    times = {
        cid: at
        for cid, at in Recipient.objects.filter(campaign=campaign).values_list(
            "customer_id", "scheduled_at"
        )
        if at is not None
    }
    assert times[night_owl.pk].astimezone(JST).hour == evening
    assert times[fresh.pk].astimezone(JST).hour == default
    assert all(start <= t <= start + timedelta(days=1) for t in times.values())
    assert smtp_server[1].messages == []  # neither hour is now
    Recipient.objects.filter(campaign=campaign, customer=night_owl).update(scheduled_at=now())
    commit(tasks.campaigns_sweep.call_local)
    assert [m.recipients for m in smtp_server[1].messages] == [["owl@example.jp"]]


def test_line_if_linked_else_email(
    commit, smtp_server, email_channel, newsletter, line_api, line_channel, line_template, tokyo
) -> None:
    linked = make_customer("linked@example.jp")
    follow(line_channel, linked, "U" + "a" * 32)
    make_customer("mail@example.jp")
    data = campaign_data([tokyo], email_channel, newsletter)
    data.update(channel_mode="line_email", line_channel=line_channel.pk)
    data["variants"] = [{"email_template": newsletter.pk, "line_template": line_template.pk}]
    campaign = _launch(commit, services.campaign_save(data=data))
    kinds = dict(
        Recipient.objects.filter(campaign=campaign).values_list("customer__email", "channel_kind")
    )
    assert kinds == {"linked@example.jp": "line", "mail@example.jp": "email"}
    assert [m.recipients for m in smtp_server[1].messages] == [["mail@example.jp"]]
    (push,) = [r for r in line_api.requests if r.path.endswith("push")]
    assert push.body["to"] == "U" + "a" * 32


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"include_segments": []}, {"include_segments"}),
        ({"include_segments": [987654]}, {"include_segments"}),
        ({"holdout_percent": 60}, {"holdout_percent"}),
        ({"test_percent": 50}, {"test_percent"}),
        ({"schedule": "at"}, {"send_at"}),
        ({"metric": "revenue", "attribution_model": "first"}, {"metric", "attribution_model"}),
        ({"variants": []}, {"variants"}),
        ({"variants": [{"email_template": None}]}, {"variants[0].email_template"}),
        (
            {"variants": [{"email_template": "x", "weight": 0}]},
            {"variants[0].email_template", "variants[0].weight"},
        ),
        ({"variants": [{"email_template": 1, "subject": "{{ oops"}]}, {"variants[0].subject"}),
        ({"channel_mode": "line"}, {"line_channel", "variants[0].line_template"}),
        ({"colour": "red", "name": ""}, {"colour", "name"}),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    email_channel, newsletter, tokyo, change: dict[str, Any], errors: set[str]
) -> None:
    data = campaign_data([tokyo], email_channel, newsletter)
    if (
        "variants" in change
        and change["variants"]
        and change["variants"][0].get("email_template") == 1
    ):
        change["variants"][0]["email_template"] = newsletter.pk
    data.update(change)
    templates = Template.objects.count()
    with pytest.raises(ValidationError) as info:
        services.campaign_save(data=data)
    assert set(info.value.message_dict) == errors
    assert not Campaign.objects.exists() and Template.objects.count() == templates


def test_excluded_and_included_segment_and_template_kind(
    email_channel, newsletter, line_template, tokyo
) -> None:
    data = campaign_data([tokyo], email_channel, newsletter, exclude_segments=[tokyo.pk])
    with pytest.raises(ValidationError) as info:
        services.campaign_save(data=data)
    assert info.value.message_dict == {
        "exclude_segments": ["A segment cannot be both included and excluded."]
    }
    data = campaign_data([tokyo], email_channel, line_template)
    with pytest.raises(ValidationError) as info:
        services.campaign_save(data=data)
    assert info.value.message_dict == {
        "variants[0].email_template": ["Choose a template for Email."]
    }


def test_a_repeated_hand_over_creates_no_second_delivery(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    for i in range(3):
        make_customer(f"c{i}@example.jp")
    campaign = _launch(commit, make_campaign([tokyo], email_channel, newsletter))
    assert len(smtp_server[1].messages) == 3
    # As if the recipient rows had not been marked (a crash cannot split the two: they are
    # one transaction, but the deliveries' idempotency keys hold on their own as well).
    Recipient.objects.filter(campaign=campaign).update(status="pending")
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    assert commit(services.campaign_dispatch, campaign_id=campaign.pk) == 3
    assert Delivery.objects.count() == 3 and len(smtp_server[1].messages) == 3
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_pause_holds_and_cancel_cancels_what_messaging_has_queued(
    commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    from kizuna.messaging.models import SendHold

    for i in range(3):
        make_customer(f"c{i}@example.jp")
    campaign = make_campaign([tokyo], email_channel, newsletter, throttle_per_minute=1)
    # The first minute's message is handed over but held in messaging (as a pause does).
    messaging.send_hold(key=services.hold_key(campaign))
    campaign = _launch(commit, campaign)
    assert smtp_server[1].messages == []
    services.campaign_pause(campaign=campaign)
    assert Delivery.objects.get().status == "queued"
    services.campaign_cancel(campaign=campaign)
    delivery = Delivery.objects.get()
    assert delivery.status == "cancelled" and delivery.reason == "the campaign was cancelled"
    assert delivery.history.filter(status="cancelled").exists()
    assert not SendHold.objects.exists()
    assert smtp_server[1].messages == []
