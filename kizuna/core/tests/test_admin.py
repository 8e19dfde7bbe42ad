from __future__ import annotations

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_admin_is_for_superusers_only(client, make_staff) -> None:
    staff_admin = make_staff("admin", username="boss")
    client.force_login(staff_admin)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    User.objects.filter(pk=staff_admin.pk).update(is_superuser=True)
    response = client.get("/admin/customers/event/")
    assert response.status_code == 200
