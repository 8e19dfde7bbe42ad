from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.db import connection

from kizuna.core import ids
from kizuna.iam.models import ApiKey
from kizuna.iam.roles import Role
from kizuna.iam.services import API_KEY_PREFIX, api_key_prefix

Principal = AbstractBaseUser | AnonymousUser | ApiKey

# --- API keys ------------------------------------------------------------------------------
#
# A key is `kzk_` + 32 random bytes: high entropy, so one SHA-256 (no slow KDF) is the right
# digest. The row is found by its unique, indexed prefix (its first 12 characters, not
# secret on their own) and the digest of the presented secret is compared with the stored
# one in constant time. The statement is built once per process from the models' metadata
# (the ORM's compilation of this one lookup was most of an API request's authentication
# cost); it reads the key and the user who created it (the actor of writes) in one go.


@dataclass(frozen=True)
class _KeyQuery:
    sql: str
    key_names: list[str]  # attnames of the key's columns, then the user's
    user_names: list[str]
    converters: list[tuple[Any, list[Any]]]  # per column: its expression and converters


def _key_query() -> _KeyQuery:
    user_model = get_user_model()
    key_fields = list(ApiKey._meta.concrete_fields)
    user_fields = list(user_model._meta.concrete_fields)
    qn = connection.ops.quote_name
    k, u = qn(ApiKey._meta.db_table), qn(user_model._meta.db_table)
    columns = [f"{k}.{qn(f.column)}" for f in key_fields]
    columns += [f"{u}.{qn(f.column)}" for f in user_fields]
    created_by = ApiKey._meta.get_field("created_by").column
    prefix = ApiKey._meta.get_field("prefix").column
    user_pk = user_model._meta.pk.column
    # Names from the models' metadata, quoted; the only value is a parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM {k} INNER JOIN {u} "  # noqa: S608
        f"ON {u}.{qn(user_pk)} = {k}.{qn(created_by)} WHERE {k}.{qn(prefix)} = %s"
    )
    cols = [f.get_col(ApiKey._meta.db_table) for f in key_fields]
    cols += [f.get_col(user_model._meta.db_table) for f in user_fields]
    converters = [
        (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        for col in cols
    ]
    return _KeyQuery(
        sql=sql,
        key_names=[f.attname for f in key_fields],
        user_names=[f.attname for f in user_fields],
        converters=converters,
    )


_KEY_QUERIES: dict[str, _KeyQuery] = {}


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key `secret` belongs to (found by its prefix, its digest compared in
    constant time), with `created_by` loaded; None when unknown or revoked. One indexed
    query at every request: a revoked key is refused from the next request on."""
    if not secret.startswith(API_KEY_PREFIX + "_"):
        return None
    query = _KEY_QUERIES.get(connection.vendor)
    if query is None:
        query = _KEY_QUERIES[connection.vendor] = _key_query()
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [api_key_prefix(secret)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (field, converters) in zip(row, query.converters, strict=True):
        for converter in converters:  # as the ORM does (SQLite returns times as text)
            value = converter(value, field, connection)
        values.append(value)
    n = len(query.key_names)
    api_key = ApiKey.from_db(connection.alias, query.key_names, values[:n])
    # The digest is compared whether or not the key is revoked: the time taken says nothing.
    if not ids.digests_match(secret, api_key.digest) or api_key.revoked_at is not None:
        return None
    user = get_user_model().from_db(connection.alias, query.user_names, values[n:])
    ApiKey._meta.get_field("created_by").set_cached_value(api_key, user)
    return api_key


# --- role permissions ----------------------------------------------------------------------
#
# What a role may do changes only when its group's permissions change (roles_sync after a
# migrate, or an administrator in the Django admin). Each process keeps the resolved set per
# role: emptied at once in the process that changes a group (signals in iam.apps) and
# re-read at most ROLE_CACHE_SECONDS later in the other processes.

ROLE_CACHE_SECONDS = 1.0
_role_cache: dict[str, tuple[float, frozenset[str]]] = {}
_role_lock = threading.Lock()


def role_permissions_clear() -> None:
    with _role_lock:
        _role_cache.clear()


def _role_permissions_query(role: str) -> frozenset[str]:
    perms = Permission.objects.filter(group__name=role).values_list(
        "content_type__app_label", "codename"
    )
    return frozenset(f"{app}.{code}" for app, code in perms)


def role_permissions(role: str) -> frozenset[str]:
    at = time.monotonic()
    cached = _role_cache.get(role)
    if cached is not None and at - cached[0] < ROLE_CACHE_SECONDS:
        return cached[1]
    perms = _role_permissions_query(role)
    with _role_lock:
        _role_cache[role] = (at, perms)
    return perms


def principal_has_perm(principal: Principal, perm: str) -> bool:
    """True when a staff user or an API key's role holds `perm` (e.g. 'customers.view_customer')."""
    if isinstance(principal, ApiKey):
        return principal.is_active and perm in role_permissions(principal.role)
    if not principal.is_authenticated or not getattr(principal, "is_active", False):
        return False
    return bool(principal.has_perm(perm))  # type: ignore[attr-defined]


def user_role(user: AbstractBaseUser) -> str | None:
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    for role in Role.values:  # the most privileged first, as declared
        if role in names:
            return role
    return None
