from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission

from kizuna.core import ids
from kizuna.iam.models import ApiKey
from kizuna.iam.services import API_KEY_PREFIX

Principal = AbstractBaseUser | AnonymousUser | ApiKey


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key whose digest matches `secret`, compared in constant time."""
    if not secret.startswith(API_KEY_PREFIX + "_"):
        return None
    candidate = (
        ApiKey.objects.select_related("created_by")
        .filter(digest=ids.digest(secret), revoked_at__isnull=True)
        .first()
    )
    if candidate is None or not ids.digests_match(secret, candidate.digest):
        return None
    return candidate


def role_permissions(role: str) -> set[str]:
    perms = Permission.objects.filter(group__name=role).values_list(
        "content_type__app_label", "codename"
    )
    return {f"{app}.{code}" for app, code in perms}


def principal_has_perm(principal: Principal, perm: str) -> bool:
    """True when a staff user or an API key's role holds `perm` (e.g. 'customers.view_customer')."""
    if isinstance(principal, ApiKey):
        return principal.is_active and perm in role_permissions(principal.role)
    if not principal.is_authenticated or not getattr(principal, "is_active", False):
        return False
    return bool(principal.has_perm(perm))  # type: ignore[attr-defined]


def user_role(user: AbstractBaseUser) -> str | None:
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    for role in ("admin", "marketer", "analyst", "support"):
        if role in names:
            return role
    return None
