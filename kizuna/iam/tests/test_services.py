from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from kizuna.iam import selectors, services
from kizuna.iam.models import ApiKey

pytestmark = pytest.mark.django_db


def test_roles_hold_exactly_their_permissions(make_staff) -> None:
    analyst = make_staff("analyst")
    marketer = make_staff("marketer")
    support = make_staff("support")
    assert selectors.principal_has_perm(analyst, "customers.view_customer")
    assert not selectors.principal_has_perm(analyst, "customers.change_customer")
    assert selectors.principal_has_perm(marketer, "customers.add_customer")
    assert not selectors.principal_has_perm(marketer, "commerce.add_refund")
    assert selectors.principal_has_perm(support, "commerce.add_refund")
    assert not selectors.principal_has_perm(support, "catalog.add_product")
    assert selectors.user_role(support) == "support"


def test_every_role_is_reported_by_user_role(make_staff) -> None:
    from kizuna.iam.roles import Role

    for role in Role.values:
        assert selectors.user_role(make_staff(role)) == role


def test_unknown_role_is_rejected_and_nothing_created() -> None:
    with pytest.raises(ValidationError) as info:
        services.staff_user_create(username="x", password="s3cret-Pass!", role="owner")
    assert "role" in info.value.message_dict
    assert not User.objects.filter(username="x").exists()


def test_api_key_is_stored_as_digest_and_shown_once(admin_user) -> None:
    issued = services.api_key_create(name="shop sync", role="marketer", created_by=admin_user)
    key = ApiKey.objects.get()
    assert issued.secret.startswith("kzk_")
    assert issued.secret not in (key.digest, key.prefix)
    assert issued.secret.startswith(key.prefix)
    assert selectors.api_key_authenticate(issued.secret) == key
    assert selectors.api_key_authenticate(issued.secret + "x") is None
    assert selectors.principal_has_perm(key, "customers.add_customer")
    assert not selectors.principal_has_perm(key, "commerce.add_refund")
    services.api_key_revoke(api_key=key, revoked_by=admin_user)
    assert selectors.api_key_authenticate(issued.secret) is None
    assert not selectors.principal_has_perm(key, "customers.view_customer")


def test_staff_user_reset_sets_password_role_and_reactivates(make_staff) -> None:
    user = make_staff("analyst", username="aiko")
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    services.staff_user_reset(user=user, password="n3w-Password!", role="support")
    user.refresh_from_db()
    assert user.is_active and user.check_password("n3w-Password!")
    assert selectors.user_role(user) == "support"
    assert list(user.groups.values_list("name", flat=True)) == ["support"]
    with pytest.raises(ValidationError):
        services.staff_user_reset(user=user, password="x", role="owner")


def test_api_key_use_is_recorded_at_most_once_a_minute(
    admin_user, django_assert_num_queries
) -> None:
    key = services.api_key_create(name="k", role="analyst", created_by=admin_user).api_key
    with django_assert_num_queries(1):
        services.api_key_touch(api_key=key)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    fresh = ApiKey.objects.get(pk=key.pk)
    with django_assert_num_queries(0):
        services.api_key_touch(api_key=fresh)
    stale = ApiKey.objects.get(pk=key.pk)
    stale.last_used_at = first - services.TOUCH_EVERY
    with django_assert_num_queries(1):
        services.api_key_touch(api_key=stale)
    touched = ApiKey.objects.get(pk=key.pk).last_used_at
    assert touched is not None and touched > first
