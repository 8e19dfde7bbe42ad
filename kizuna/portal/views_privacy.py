"""The page behind a double opt-in link (kizuna.privacy.double_opt_in): GET asks, POST
confirms (a GET never does: mail scanners follow links). Signed, expiring, rate limited."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from kizuna.privacy import double_opt_in

RATE = "30/m"


@ratelimit(key="ip", rate=RATE, block=True)
@never_cache
@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    error = ""
    done = False
    language = "ja"
    try:
        confirmation = double_opt_in.confirmation_from(token)
        locale = confirmation.customer.locale
        language = locale if locale in ("ja", "en") else "ja"
        done = confirmation.status == "confirmed"
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.GET.get("lang") in ("ja", "en"):
        language = request.GET["lang"]
    with translation.override(language):
        if request.method == "POST" and not error and not done:
            try:
                double_opt_in.email_opt_in_confirm(
                    token=token,
                    evidence={"user_agent": request.headers.get("User-Agent", "")[:200]},
                )
                done = True
            except ValidationError as exc:
                error = " ".join(exc.messages)
        response = render(
            request,
            "portal/privacy/confirm.html",
            {"done": done, "error": error, "lang": translation.get_language()},
            status=400 if error else 200,
        )
        response.headers.setdefault("Content-Language", translation.get_language())
    response.headers["Referrer-Policy"] = "same-origin"  # not no-referrer: see views.py
    response.headers["X-Robots-Tag"] = "noindex"
    return response
