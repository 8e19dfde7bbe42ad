from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from auditlog.context import set_actor
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.core import ids
from kizuna.core.timeutil import now
from kizuna.iam.models import ApiKey
from kizuna.iam.roles import ROLE_PERMISSIONS, Role

API_KEY_PREFIX = "kzk"


def api_key_prefix(secret: str) -> str:
    """The stored, indexed start of a key ('kzk_' and 8 characters) by which it is found."""
    return secret[: len(API_KEY_PREFIX) + 9]


def roles_sync() -> None:
    """Create one group per role holding exactly the permissions in ROLE_PERMISSIONS."""
    # All the named permissions in one query (not one per code: this runs after every
    # migrate and flush, and for each staff user created).
    codes = {code for role_codes in ROLE_PERMISSIONS.values() for code in role_codes}
    perms: dict[str, Permission] = {}
    candidates = Permission.objects.filter(
        content_type__app_label__in={code.split(".", 1)[0] for code in codes},
        codename__in={code.split(".", 1)[1] for code in codes},
    ).select_related("content_type")
    for perm in candidates:  # Permission's ordering: the first per code, as .first() was
        perms.setdefault(f"{perm.content_type.app_label}.{perm.codename}", perm)
    for role, role_codes in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        # A permission of an app not migrated yet is left out.
        group.permissions.set([perms[code] for code in role_codes if code in perms])


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {
                "role": _("Unknown role %(role)s; choose one of %(roles)s")
                % {"role": role, "roles": ", ".join(Role.values)}
            }
        )


@transaction.atomic
def staff_user_create(
    *, username: str, password: str, role: str, email: str = "", superuser: bool = False
) -> User:
    _validate_role(role)
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ValidationError({"username": _("A staff user with this username already exists.")})
    user = user_model(username=username, email=email, is_staff=True, is_superuser=superuser)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    roles_sync()
    user.groups.add(Group.objects.get(name=role))
    return user


@transaction.atomic
def staff_user_reset(*, user: User, password: str, role: str) -> User:
    """Set a staff user's password and single role, and make sure the login is active."""
    _validate_role(role)
    user.set_password(password)
    user.is_active = True
    user.is_staff = True
    user.save(update_fields=["password", "is_active", "is_staff"])
    roles_sync()
    user.groups.set([Group.objects.get(name=role)])
    return user


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def api_key_create(*, name: str, role: str, created_by: User) -> IssuedApiKey:
    _validate_role(role)
    if not name.strip():
        raise ValidationError({"name": _("Give the key a name.")})
    secret = ids.token(API_KEY_PREFIX, 32)
    prefix = api_key_prefix(secret)
    with set_actor(created_by):
        api_key = ApiKey.objects.create(
            name=name.strip(),
            role=role,
            prefix=prefix,
            digest=ids.digest(secret),
            created_by=created_by,
        )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey, revoked_by: User) -> ApiKey:
    with set_actor(revoked_by):
        api_key.revoked_at = now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# `last_used_at` is shown by the day: a busy key is written at most once a minute, not on
# every request (each write was a commit of its own on one hot row).
TOUCH_EVERY = timedelta(minutes=1)


def api_key_touch(*, api_key: ApiKey) -> None:
    at = now()
    if api_key.last_used_at is not None and at - api_key.last_used_at < TOUCH_EVERY:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=at)
    api_key.last_used_at = at
