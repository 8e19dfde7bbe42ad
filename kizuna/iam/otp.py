"""Optional TOTP two-factor sign-in for staff (django-otp), enforced per role by
KIZUNA_2FA_ROLES (e.g. ["admin"]; empty = off). A signed-in staff user of such a role who has
not verified a token in this session is sent to the two-factor page (console `two_factor`)
for every console page, and refused (403) on the API with a session; API keys are not
affected (they are not sessions). See docs/privacy.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

# Reachable before verification: the two-factor page itself, signing in and out, assets.
EXEMPT_PREFIXES = ("/otp/", "/login/", "/logout/", "/i18n/", "/static/", "/assets/")


def required_roles() -> set[str]:
    return set(getattr(settings, "KIZUNA_2FA_ROLES", []) or [])


def two_factor_required(user: Any) -> bool:
    roles = required_roles()
    if not roles or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser and "admin" in roles:
        return True
    return user.groups.filter(name__in=roles).exists()


def is_verified(user: Any) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check()) if callable(check) else False


class StaffTwoFactorMiddleware:
    """After django_otp's OTPMiddleware (which adds `user.is_verified()`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        path = request.path
        if (
            user is not None
            and required_roles()
            and not path.startswith(EXEMPT_PREFIXES)
            and not (path.startswith("/api/") and "HTTP_AUTHORIZATION" in request.META)
            and two_factor_required(user)
            and not is_verified(user)
        ):
            if path.startswith("/api/"):
                message = _("Two-factor verification is required for your role.")
                return JsonResponse({"detail": [{"field": None, "message": message}]}, status=403)
            return redirect(f"{reverse('console:two_factor')}?{urlencode({'next': path})}")
        return self.get_response(request)
