"""Who is calling the REST API and what they may do.

Two ways in: an API key (`Authorization: Bearer kzk_...`) or the session of a staff user
logged in to the console (CSRF-checked for unsafe methods). Each route names the Django
permission it needs with `auth=require_perm("customers.view_customer")`; the check runs
before the request body is read, so a caller without the permission learns nothing from
validation errors.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from kizuna.iam.models import ApiKey
from kizuna.iam.selectors import Principal, api_key_authenticate, principal_has_perm
from kizuna.iam.services import api_key_touch


def _check_perm(principal: Principal, perm: str | None) -> None:
    if perm is not None and not principal_has_perm(principal, perm):
        raise AuthorizationError(
            message=_("Your role does not allow this (it needs %(perm)s).") % {"perm": perm}
        )


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer kzk_...`; a key that is presented but unknown or revoked is a
    401 even when a session cookie is also sent."""

    def __init__(self, perm: str | None = None) -> None:
        super().__init__()
        self.perm = perm

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        api_key = api_key_authenticate(token.strip())
        if api_key is None:
            raise AuthenticationError(message=_("The API key is unknown or revoked."))
        api_key_touch(api_key=api_key)
        _check_perm(api_key, self.perm)
        return api_key


class StaffSessionAuth(APIKeyCookie):
    """The console session of an active staff user. Unsafe methods need the CSRF token
    (`X-CSRFToken` header), checked only once the session is known to be a staff one, so an
    anonymous call gets 401, not a CSRF error."""

    def __init__(self, perm: str | None = None) -> None:
        self.param_name = settings.SESSION_COOKIE_NAME
        super().__init__(csrf=True)
        self.perm = perm

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> AbstractBaseUser | None:
        user = getattr(request, "user", None)
        if key is None or user is None or not user.is_authenticated:
            return None
        if not (user.is_active and getattr(user, "is_staff", False)):
            return None
        csrf_exempt = getattr(request, "_ninja_csrf_exempt", False)
        if self.csrf and not csrf_exempt and check_csrf(request) is not None:
            raise AuthorizationError(
                message=_(
                    "CSRF check failed: send the page's CSRF token in the X-CSRFToken header."
                )
            )
        _check_perm(user, self.perm)
        return user


def require_perm(perm: str | None) -> list[Any]:
    """The `auth=` of a route: an API key or a staff session holding `perm`."""
    return [ApiKeyAuth(perm), StaffSessionAuth(perm)]


def request_actor(request: HttpRequest) -> AbstractBaseUser | None:
    """The staff user a write is attributed to: the session user, or the user who created
    the API key the request was made with."""
    principal = getattr(request, "auth", None)
    if isinstance(principal, ApiKey):
        return principal.created_by
    if isinstance(principal, AbstractBaseUser):
        return principal
    return None
