"""API-key verification and role permissions at request time: one indexed query per key,
constant-time digest comparison, revocation at once, and a per-process cache of each role's
permissions that a change to the role's group empties at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from kizuna.core import ids
from kizuna.iam import selectors, services
from kizuna.iam.authz import request_actor
from kizuna.iam.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_role_cache() -> Any:
    selectors.role_permissions_clear()
    yield
    selectors.role_permissions_clear()


def _spy_on_digest_compare(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    real = ids.digests_match

    def spy(secret: str, expected: str) -> bool:
        calls.append((secret, expected))
        return real(secret, expected)

    monkeypatch.setattr(ids, "digests_match", spy)
    return calls


def test_a_key_is_found_by_prefix_in_one_query_with_its_creator(
    admin_user: Any, django_assert_num_queries: Any
) -> None:
    issued = services.api_key_create(name="sync", role="marketer", created_by=admin_user)
    with django_assert_num_queries(1):
        key = selectors.api_key_authenticate(issued.secret)
        assert key is not None
        assert key == issued.api_key
        # The actor of writes comes with the key: no second query.
        assert request_actor(type("R", (), {"auth": key})()) == admin_user
    stored = ApiKey.objects.get(pk=key.pk)
    assert (key.name, key.role, key.prefix, key.digest) == (
        stored.name,
        stored.role,
        stored.prefix,
        stored.digest,
    )
    assert key.created_at == stored.created_at and key.created_at.tzinfo is not None
    assert key.last_used_at is None and key.revoked_at is None


def test_a_key_with_the_right_prefix_but_a_wrong_secret_is_refused_by_the_digest(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = services.api_key_create(name="sync", role="marketer", created_by=admin_user)
    calls = _spy_on_digest_compare(monkeypatch)
    forged = issued.secret[:-4] + ("AAAA" if not issued.secret.endswith("AAAA") else "BBBB")
    assert services.api_key_prefix(forged) == issued.api_key.prefix
    assert selectors.api_key_authenticate(forged) is None
    # The stored digest was compared (constant time) with the forged secret's.
    assert calls == [(forged, issued.api_key.digest)]
    assert selectors.api_key_authenticate(issued.secret) == issued.api_key


def test_a_revoked_key_is_refused_at_the_next_call_and_still_compared(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = services.api_key_create(name="sync", role="marketer", created_by=admin_user)
    assert selectors.api_key_authenticate(issued.secret) is not None
    services.api_key_revoke(api_key=issued.api_key, revoked_by=admin_user)
    calls = _spy_on_digest_compare(monkeypatch)
    assert selectors.api_key_authenticate(issued.secret) is None
    assert len(calls) == 1  # the same work as for a live key: timing says nothing


@pytest.mark.parametrize("secret", ["", "kzk", "kzk_", "kzk_short", "xyz_" + "a" * 43])
def test_malformed_or_unknown_secrets_are_none(admin_user: Any, secret: str) -> None:
    services.api_key_create(name="sync", role="marketer", created_by=admin_user)
    assert selectors.api_key_authenticate(secret) is None


def test_role_permissions_are_cached_per_process(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        first = selectors.role_permissions("analyst")
    assert "customers.view_customer" in first
    assert "customers.change_customer" not in first
    with django_assert_num_queries(0):
        assert selectors.role_permissions("analyst") == first


def test_the_cache_is_reread_after_its_time(
    django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    selectors.role_permissions("analyst")
    clock = [selectors.time.monotonic() + selectors.ROLE_CACHE_SECONDS + 0.01]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])
    with django_assert_num_queries(1):
        selectors.role_permissions("analyst")


def test_a_change_to_a_roles_group_takes_effect_at_once(admin_user: Any) -> None:
    key = services.api_key_create(name="k", role="analyst", created_by=admin_user).api_key
    assert selectors.principal_has_perm(key, "customers.view_customer")  # now cached
    group = Group.objects.get(name="analyst")
    view = Permission.objects.get(content_type__app_label="customers", codename="view_customer")
    group.permissions.remove(view)
    assert not selectors.principal_has_perm(key, "customers.view_customer")
    group.permissions.add(view)
    assert selectors.principal_has_perm(key, "customers.view_customer")
    group.permissions.clear()
    assert not selectors.principal_has_perm(key, "customers.view_customer")
    services.roles_sync()  # back to ROLE_PERMISSIONS
    assert selectors.principal_has_perm(key, "customers.view_customer")
    group.delete()
    assert not selectors.principal_has_perm(key, "customers.view_customer")
    services.roles_sync()
