from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create, customer_update

pytestmark = pytest.mark.django_db


def test_staff_writes_are_audited_with_actor_and_changes(admin_user) -> None:
    customer = customer_create(data={"family_name": "山本"}, actor=admin_user)
    customer_update(customer=customer, data={"family_name": "山下"}, actor=admin_user)
    entries = LogEntry.objects.get_for_object(Customer.objects.get(pk=customer.pk)).order_by("pk")
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert all(e.actor_id == admin_user.pk for e in entries)
    assert entries.last().changes_dict["family_name"] == ["山本", "山下"]
