from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from linebot.v3.messaging import Message

from kizuna.line_marketing import flex, services
from kizuna.line_marketing.models import LineAudience, Narrowcast, RichMenu

from .conftest import line_id

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MENU = {
    "size": {"width": 2500, "height": 843},
    "selected": True,
    "name": "会員メニュー",
    "chatBarText": "メニュー",
    "areas": [
        {
            "bounds": {"x": 0, "y": 0, "width": 1250, "height": 843},
            "action": {"type": "uri", "uri": "https://shop.example.jp/m/"},
        },
        {
            "bounds": {"x": 1250, "y": 0, "width": 1250, "height": 843},
            "action": {"type": "message", "text": "クーポン"},
        },
    ],
}


def test_segment_upload_only_following_members(channel, tokyo, line_server) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    assert audience.size == 3
    assert sorted(line_server.audiences[audience.audience_group_id]) == [
        line_id(0),
        line_id(1),
        line_id(2),
    ]
    _method, _path, headers, body = line_server.requests[0]
    assert headers["Authorization"] == f"Bearer {line_server.token}"
    assert body["description"] == "東京の会員" and body["isIfaAudience"] is False


def test_a_withdrawn_line_marketing_consent_leaves_the_follower_out(
    channel, tokyo, line_server
) -> None:
    from kizuna.customers.services import consent_record
    from kizuna.messaging.models import LineContact

    first = LineContact.objects.get(line_user_id=line_id(0)).customer
    second = LineContact.objects.get(line_user_id=line_id(1)).customer
    assert first is not None and second is not None
    consent_record(
        customer=first, purpose="marketing", channel="line", status="withdrawn", source="t"
    )
    consent_record(
        customer=second, purpose="marketing", channel="line", status="withdrawn", source="t"
    )
    consent_record(
        customer=second, purpose="marketing", channel="line", status="granted", source="t"
    )
    audience = services.audience_upload(channel=channel, segment=tokyo)
    assert sorted(line_server.audiences[audience.audience_group_id]) == [line_id(1), line_id(2)]


def test_large_audiences_go_up_in_chunks(channel, tokyo, line_server, monkeypatch) -> None:
    monkeypatch.setattr(services, "UPLOAD_CHUNK", 2)
    audience = services.audience_upload(channel=channel, segment=tokyo, description="chunks")
    assert [(m, p) for m, p, _h, _b in line_server.requests] == [
        ("POST", "/v2/bot/audienceGroup/upload"),
        ("PUT", "/v2/bot/audienceGroup/upload"),
    ]
    assert len(line_server.audiences[audience.audience_group_id]) == 3


def test_upload_refuses_an_empty_audience_and_bad_input(channel, tokyo, line_server) -> None:
    tokyo.rules = {
        "version": 1,
        "match": "all",
        "conditions": [{"field": "profile.prefecture", "op": "in", "value": ["JP-47"]}],
    }
    tokyo.save()
    with pytest.raises(ValidationError) as exc:
        services.audience_upload(channel=channel, segment=tokyo)
    assert list(exc.value.message_dict) == ["segment"]
    with pytest.raises(ValidationError) as exc:
        services.audience_upload(channel=channel, segment=tokyo, description="x" * 121)
    assert "description" in exc.value.message_dict
    assert LineAudience.objects.count() == 0 and line_server.requests == []


def test_narrowcast_is_sent_once_per_key(channel, tokyo, line_server) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    coupon = flex.coupon_message(
        title="冬のクーポン", code="WINTER", discount="10%OFF", valid_until=date(2026, 12, 31)
    )
    sent = services.narrowcast_send(audience=audience, messages=[coupon], idempotency_key="n1")
    again = services.narrowcast_send(audience=audience, messages=[coupon], idempotency_key="n1")
    assert sent.pk == again.pk and sent.request_id
    assert len(line_server.narrowcasts) == 1
    body = line_server.narrowcasts[0]
    assert body["recipient"] == {"type": "audience", "audienceGroupId": audience.audience_group_id}
    assert "2026年12月31日まで有効" in str(body["messages"][0])
    # A lost response: the row is gone but LINE saw the retry key → 409, recorded once.
    Narrowcast.objects.all().delete()
    replay = services.narrowcast_send(audience=audience, messages=[coupon], idempotency_key="n1")
    assert replay.request_id == sent.request_id and len(line_server.narrowcasts) == 1
    with pytest.raises(ValidationError) as exc:
        services.narrowcast_send(
            audience=audience, messages=[{"type": "text", "text": "x"}], idempotency_key="n1"
        )
    assert list(exc.value.message_dict) == ["idempotency_key"]


@pytest.mark.parametrize(
    ("messages", "field"),
    [([], "messages"), ([{"type": "bogus"}], "messages.0"), (["text"], "messages.0")],
)
def test_narrowcast_refuses_what_is_not_a_line_message(
    channel, tokyo, line_server, messages, field
) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    with pytest.raises(ValidationError) as exc:
        services.narrowcast_send(audience=audience, messages=messages, idempotency_key="bad")
    assert list(exc.value.message_dict) == [field]
    assert line_server.narrowcasts == [] and Narrowcast.objects.count() == 0


def test_rich_menu_for_a_segment(channel, tokyo, line_server, monkeypatch) -> None:
    menu = services.rich_menu_create(channel=channel, definition=MENU, image=PNG, segment=tokyo)
    assert line_server.menus[menu.rich_menu_id]["chatBarText"] == "メニュー"
    assert line_server.images[menu.rich_menu_id] == ("image/png", PNG)
    monkeypatch.setattr(services, "LINK_CHUNK", 2)
    assert services.rich_menu_link_segment(menu=menu) == 3
    assert line_server.links == {line_id(n): menu.rich_menu_id for n in range(3)}
    bulk = [p for _m, p, _h, _b in line_server.requests if p.endswith("bulk/link")]
    assert len(bulk) == 2
    # One user (e.g. just linked their account): the per-user route.
    assert services.rich_menu_link_users(menu=menu, user_ids=[line_id(9)]) == 1
    assert line_server.requests[-1][1] == f"/v2/bot/user/{line_id(9)}/richmenu/{menu.rich_menu_id}"
    assert RichMenu.objects.get().linked_users == 1


def test_rich_menu_bad_input(channel, line_server) -> None:
    with pytest.raises(ValidationError) as exc:
        services.rich_menu_create(
            channel=channel, definition={"name": "x"}, image=b"GIF89a", content_type="image/gif"
        )
    assert set(exc.value.message_dict) == {"definition", "image"}
    assert line_server.requests == [] and RichMenu.objects.count() == 0


def test_wrong_token_is_a_clear_error(channel, tokyo, line_server) -> None:
    line_server.token = "another"
    with pytest.raises(ValidationError) as exc:
        services.audience_upload(channel=channel, segment=tokyo)
    assert "401" in exc.value.message_dict["segment"][0]


def test_flex_templates_are_valid_line_messages() -> None:
    card = flex.member_card_message(
        name="山田 太郎",
        member_number="K-000123",
        balance=12345,
        tier="ゴールド",
        benefits="送料無料",
        expiring=[(date(2026, 12, 31), 300)],
        card_url="https://shop.example.jp/m/abc/",
    )
    carousel = flex.recommendations_carousel(
        [
            flex.Recommendation(
                "深煎りブレンド",
                1200,
                "https://shop.example.jp/p/1",
                "https://shop.example.jp/i/1.jpg",
            ),
            flex.Recommendation("カフェラテ", 500, "https://shop.example.jp/p/2"),
        ]
    )
    coupon = flex.coupon_message(
        title="Winter", code="W", discount="¥500 off", url="https://x.example/c", language="en"
    )
    for message in (card, carousel, coupon):
        parsed = Message.from_dict(message)
        assert parsed.type == "flex"
    text = str(card)
    assert "山田 太郎 様" in text and "12,345 pt" in text and "2026年12月31日に失効" in text
    assert "¥1,200" in str(carousel) and len(carousel["contents"]["contents"]) == 2
    assert "Valid until" not in str(coupon) and "Use coupon" in str(coupon)
    with pytest.raises(ValueError):
        flex.recommendations_carousel([])


def test_audience_status_from_line(channel, tokyo, line_server) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    assert audience.status == "IN_PROGRESS" and audience.line_count is None
    line_server.audience_status = "READY"
    services.audience_refresh(audience=audience)
    stored = LineAudience.objects.get()
    assert (stored.status, stored.line_count) == ("READY", 3) and stored.checked_at
    assert line_server.requests[-1][1] == f"/v2/bot/audienceGroup/{audience.audience_group_id}"
    line_server.audiences.clear()  # LINE deleted it: a clear error, nothing changed
    with pytest.raises(ValidationError) as exc:
        services.audience_refresh(audience=stored)
    assert "404" in exc.value.message_dict["audience"][0]
    assert LineAudience.objects.get().status == "READY"


def test_narrowcast_progress_from_line(channel, tokyo, line_server) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    sent = services.narrowcast_send(
        audience=audience, messages=[{"type": "text", "text": "お知らせ"}], idempotency_key="p1"
    )
    assert sent.status == "sent" and sent.success_count is None
    line_server.progress_phase = "sending"
    assert services.narrowcast_refresh(narrowcast=sent).status == "sending"
    assert Narrowcast.objects.get().success_count is None
    line_server.progress_phase = "succeeded"
    services.narrowcast_refresh(narrowcast=sent)
    stored = Narrowcast.objects.get()
    assert (stored.status, stored.target_count, stored.success_count, stored.failure_count) == (
        "succeeded",
        3,
        3,
        0,
    )
    assert line_server.requests[-1][1] == (
        f"/v2/bot/message/progress/narrowcast?requestId={sent.request_id}"
    )
    line_server.progress_phase = "failed"
    failed = services.narrowcast_refresh(narrowcast=stored)
    assert failed.status == "failed" and failed.error == "audience too small"


def test_narrowcast_to_a_segment_uploads_then_sends_once(channel, tokyo, line_server) -> None:
    text = [{"type": "text", "text": "東京の会員さまへ"}]
    sent = services.narrowcast_to_segment(
        channel=channel, segment=tokyo, messages=text, idempotency_key="s1"
    )
    again = services.narrowcast_to_segment(
        channel=channel, segment=tokyo, messages=text, idempotency_key="s1"
    )
    assert sent.pk == again.pk and LineAudience.objects.count() == 1
    assert len(line_server.narrowcasts) == 1 and sent.audience.size == 3
    with pytest.raises(ValidationError) as exc:
        services.narrowcast_to_segment(
            channel=channel, segment=tokyo, messages=[{"type": "nope"}], idempotency_key="s2"
        )
    assert list(exc.value.message_dict) == ["messages.0"]
    assert LineAudience.objects.count() == 1  # nothing uploaded for a refused send


def test_rich_menu_from_a_layout_for_a_tier_and_as_default(channel, tokyo, line_server) -> None:
    from kizuna.customers.models import Customer
    from kizuna.line_marketing import richmenus
    from kizuna.loyalty.models import Account, Tier
    from kizuna.loyalty.services import account_for, programme_get

    gold = Tier.objects.create(programme=programme_get(), code="gold", name="ゴールド", rank=2)
    members = list(Customer.objects.order_by("pk"))
    for customer in (members[1], members[3], members[4]):  # following, blocked, Osaka
        Account.objects.filter(pk=account_for(customer).pk).update(tier=gold)
    definition = richmenus.build(
        "shop", name="ゴールド会員", chat_bar_text="メニュー", url="https://shop.example.jp/"
    )
    assert [a["bounds"]["x"] for a in definition["areas"]] == [0, 833, 1666]
    menu = services.rich_menu_create(channel=channel, definition=definition, image=PNG, tier=gold)
    assert services.rich_menu_link_segment(menu=menu) == 2
    assert line_server.links == {line_id(1): menu.rich_menu_id, line_id(4): menu.rich_menu_id}
    other = services.rich_menu_create(
        channel=channel,
        definition=richmenus.build(
            "full", name="全員", chat_bar_text="メニュー", url="https://shop.example.jp/"
        ),
        image=PNG,
    )
    services.rich_menu_set_default(menu=menu)
    services.rich_menu_set_default(menu=other)
    assert line_server.default_menu == other.rich_menu_id
    assert list(RichMenu.objects.filter(is_default=True)) == [other]
    with pytest.raises(ValidationError) as exc:
        services.rich_menu_link_segment(menu=other)
    assert list(exc.value.message_dict) == ["segment"]
    with pytest.raises(ValidationError) as exc:
        services.rich_menu_create(
            channel=channel, definition=definition, image=PNG, tier=gold, segment=tokyo
        )
    assert list(exc.value.message_dict) == ["tier"] and RichMenu.objects.count() == 2
