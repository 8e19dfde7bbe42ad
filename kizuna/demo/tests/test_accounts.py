"""The demo's accounts step (kizuna/demo/accounts.py) on a small set of customers."""

from __future__ import annotations

import pytest
from django.test import Client

from kizuna.accounts.models import Account, Activity, CustomerCare, Deal
from kizuna.accounts.tests.conftest import score
from kizuna.customers.models import Customer
from kizuna.demo import accounts as demo_accounts
from kizuna.subscriptions import selectors as subscription_selectors
from kizuna.subscriptions.models import Subscription, SubscriptionEvent

pytestmark = pytest.mark.django_db


def test_demo_accounts_load_and_pages() -> None:
    people = Customer.objects.bulk_create(Customer(family_name=f"顧客{i}") for i in range(60))
    for i, person in enumerate(people):
        score(person, clv=1000 * (i + 1))
    demo_accounts.load(subscribers=40)
    assert Account.objects.count() == 5
    parent = Account.objects.get(name="山田商事株式会社").parent
    assert parent is not None and parent.name == "山田ホールディングス株式会社"
    assert Deal.objects.filter(status="open").count() == 7
    assert Deal.objects.get(status="lost").close_reason
    assert Activity.objects.filter(kind="task").count() == 2
    assert CustomerCare.objects.filter(level="high").count() >= 3  # top 5% of 60 + named contacts
    assert Subscription.objects.count() == 40
    assert SubscriptionEvent.objects.filter(kind="started").count() == 40
    assert subscription_selectors.revenue().mrr_yen > 0
    from django.contrib.auth import get_user_model

    client = Client(HTTP_ACCEPT_LANGUAGE="ja")
    client.force_login(get_user_model().objects.get(username="demo"))
    for path in ("/deals/board/", "/my-customers/", "/subscriptions/", "/accounts/"):
        assert client.get(path).status_code == 200, path
