"""Japanese loyalty conventions: paid and free points apart (spent in the configured order),
per-earn expiry dates, yearly rank reset held by last year's total, the member card."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from kizuna.core.timeutil import JST, local_date, now
from kizuna.loyalty import rules, selectors, services
from kizuna.loyalty.models import (
    Account,
    LedgerEntry,
    Lot,
    LotKind,
    PaidPointsOrder,
    Reward,
    TierPeriod,
)

pytestmark = pytest.mark.django_db


def _replay_ok() -> None:
    for account in Account.objects.all():
        balance, lots = selectors.ledger_replay(account=account)
        assert account.balance == balance
        stored = dict(Lot.objects.filter(account=account).values_list("id", "remaining"))
        assert {k: v for k, v in stored.items() if v} == {k: v for k, v in lots.items() if v}


def _wallet(customer, paid: int = 100, free: int = 100) -> None:
    # The free points expire first (end of next month), the paid ones never.
    services.points_award(
        customer=customer,
        points=free,
        idempotency_key=f"free:{customer.pk}",
        reason="campaign",
        expires_on=local_date(now()) + timedelta(days=40),
    )
    services.points_award(
        customer=customer,
        points=paid,
        idempotency_key=f"paid:{customer.pk}",
        reason="bought",
        kind=LotKind.PAID,
        value_per_point=Decimal("1"),
    )


def _remaining(customer) -> dict[str, int]:
    return {
        kind: sum(
            Lot.objects.filter(account__customer=customer, kind=kind).values_list(
                "remaining", flat=True
            )
        )
        for kind in (LotKind.FREE, LotKind.PAID)
    }


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (PaidPointsOrder.EXPIRY, {"free": 0, "paid": 50}),  # first-expiring: the free ones
        (PaidPointsOrder.FREE_FIRST, {"free": 0, "paid": 50}),
        (PaidPointsOrder.PAID_FIRST, {"free": 50, "paid": 0}),
    ],
)
def test_paid_points_are_spent_in_the_configured_order(
    programme, customer, order: str, expected: dict[str, int]
) -> None:
    programme.paid_points_order = order
    programme.save()
    _wallet(customer)
    reward = Reward.objects.create(code="mug", name="マグ", points_price=150)
    services.reward_redeem(customer=customer, reward=reward, idempotency_key="r1")
    assert _remaining(customer) == expected
    _replay_ok()


def test_free_first_even_when_paid_points_expire_sooner(programme, customer) -> None:
    programme.paid_points_order = PaidPointsOrder.FREE_FIRST
    programme.save()
    today = local_date(now())
    services.points_award(
        customer=customer,
        points=80,
        idempotency_key="p",
        reason="bought",
        kind=LotKind.PAID,
        expires_on=today + timedelta(days=10),
    )
    services.points_award(
        customer=customer,
        points=80,
        idempotency_key="f",
        reason="x",
        expires_on=today + timedelta(days=300),
    )
    services.points_adjust(
        customer=customer, points=-100, idempotency_key="a", reason="fix", actor=None
    )
    assert _remaining(customer) == {"free": 0, "paid": 60}
    _replay_ok()


def test_per_earn_expiry_date(programme, customer) -> None:
    today = local_date(now())
    entry = services.points_award(
        customer=customer,
        points=50,
        idempotency_key="short",
        reason="weekend campaign",
        expires_on=today + timedelta(days=3),
    )
    services.points_award(customer=customer, points=20, idempotency_key="std", reason="x")
    lots = dict(Lot.objects.values_list("points", "expires_on"))
    assert lots[50] == today + timedelta(days=3)
    assert lots[20] == rules.expiry_date(today, programme.expiry_months)
    # Same key, same payload: the stored entry; another expiry: refused.
    again = services.points_award(
        customer=customer,
        points=50,
        idempotency_key="short",
        reason="weekend campaign",
        expires_on=today + timedelta(days=3),
    )
    assert again.pk == entry.pk
    result = services.points_expire(today=today + timedelta(days=4))
    assert result.points == 50
    assert Account.objects.get().balance == 20
    _replay_ok()


def test_expiry_before_the_earn_day_is_refused(programme, customer) -> None:
    with pytest.raises(ValidationError) as exc:
        services.points_award(
            customer=customer,
            points=10,
            idempotency_key="bad",
            reason="x",
            expires_on=local_date(now()) - timedelta(days=1),
        )
    assert list(exc.value.message_dict) == ["expires_on"]
    assert LedgerEntry.objects.count() == 0


def _spend(customer, order_id: int, total: int, at: datetime) -> None:
    services.points_earn_for_order(
        customer_id=customer.pk, order_id=order_id, number=f"N{order_id}", total=total, placed_at=at
    )


def test_rank_years_and_held_ranks() -> None:
    assert rules.rank_year_start(date(2026, 11, 22)) == date(2026, 1, 1)
    assert rules.rank_year_end(date(2026, 11, 22)) == date(2026, 12, 31)
    assert rules.rank_year_start(date(2026, 3, 31), 4) == date(2025, 4, 1)
    assert rules.rank_year_end(date(2026, 4, 1), 4) == date(2027, 3, 31)


def test_yearly_reset_rank_held_by_last_years_spend(programme, customer, other) -> None:
    programme.tier_period = TierPeriod.YEARLY
    programme.save()
    this_year = local_date(now()).year
    last_year_at = datetime(this_year - 1, 6, 1, 12, tzinfo=JST)
    two_years_ago = datetime(this_year - 2, 6, 1, 12, tzinfo=JST)
    _spend(customer, 1, 30000, last_year_at)  # silver for this year
    _spend(other, 2, 60000, two_years_ago)  # gold two years ago: reset
    _spend(other, 3, 1000, now())
    services.tiers_evaluate()
    mine = Account.objects.select_related("tier").get(customer=customer)
    theirs = Account.objects.select_related("tier").get(customer=other)
    assert mine.tier is not None and mine.tier.code == "silver"
    assert mine.tier_kept_until == date(this_year, 12, 31)
    assert theirs.tier is not None and theirs.tier.code == "regular"
    # This year's spend reaching gold upgrades at once (and will hold next year's rank).
    _spend(customer, 4, 55000, now())
    services.tiers_evaluate()
    mine.refresh_from_db()
    assert mine.tier is not None and mine.tier.code == "gold"
    # Next year's evaluation: this year's total holds gold; "other" stays regular.
    services.tiers_evaluate(today=date(this_year + 1, 1, 5))
    mine.refresh_from_db()
    assert mine.tier is not None and mine.tier.code == "gold"
    assert mine.tier_kept_until == date(this_year + 1, 12, 31)
    # And the year after, with nothing spent, the rank resets.
    services.tiers_evaluate(today=date(this_year + 2, 1, 5))
    mine.refresh_from_db()
    assert mine.tier is not None and mine.tier.code == "regular"


def _card_url(customer, make_staff) -> str:
    """The member-card link the customer-360 loyalty panel shows (loyalty may not import
    the portal: it is a face above it)."""
    staff = Client()
    staff.force_login(make_staff("admin"))
    page = staff.get(f"/customers/{customer.pk}/").content.decode()
    match = re.search(r"https?://[^/\"]+(/m/[^\"]+/)", page)
    assert match is not None
    return match.group(1)


def test_member_card_shows_paid_points_held_rank_and_benefits(
    programme, customer, make_staff
) -> None:
    programme.tier_period = TierPeriod.YEARLY
    programme.save()
    programme.tiers.filter(code="silver").update(benefits="送料無料\n誕生月ポイント2倍")
    _spend(customer, 1, 30000, datetime(local_date(now()).year - 1, 6, 1, 12, tzinfo=JST))
    services.tiers_evaluate()
    _wallet(customer, paid=300, free=100)
    url = _card_url(customer, make_staff)
    page = Client().get(url + "?lang=ja").content.decode()
    assert "田中 様" in page
    assert "送料無料<br>誕生月ポイント2倍" in page
    assert f"{local_date(now()).year}年12月31日" in page
    english = Client().get(url + "?lang=en").content.decode()
    assert "Paid points 300 pt · free points 400 pt" in english
    card = selectors.member_card(customer=customer)
    assert (card.paid_balance, card.free_balance) == (300, 100 + 300)
