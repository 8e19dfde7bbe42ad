from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from kizuna.customers.services import customer_create

pytestmark = pytest.mark.django_db


def test_append_only_records_cannot_be_changed_in_admin(client, make_staff) -> None:
    customer = customer_create(data={"family_name": "森"})
    user = make_staff("admin", username="root")
    User.objects.filter(pk=user.pk).update(is_superuser=True)
    client.force_login(user)
    event = customer.events.get()
    page = client.get(f"/admin/customers/event/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    deleted = client.post(f"/admin/customers/event/{event.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert customer.events.count() == 1
