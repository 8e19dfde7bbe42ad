"""LINE Login account linking from the member portal (flow in kizuna.line_marketing.login):
`/m/<token>/line-login/` sends the member to LINE, `/m/line/callback/` links the LINE id."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django_ratelimit.decorators import ratelimit

from kizuna.customers.models import Customer
from kizuna.line_marketing import login
from kizuna.messaging.models import Channel
from kizuna.portal.links import member_url
from kizuna.portal.views import RATE, member_view


def _login_channel() -> Channel | None:
    return login.login_channel()


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("portal:line_login_callback"))


@member_view
def line_login_start(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    """To LINE's login page; without LINE Login set up, the one-time-code link page."""
    channel = _login_channel()
    if channel is None:
        return redirect("portal:line_link", token=token)
    try:
        url = login.authorize_url(
            customer=customer, channel=channel, redirect_uri=_callback_uri(request)
        )
    except ValidationError:
        return redirect("portal:line_link", token=token)
    return HttpResponseRedirect(url)


@ratelimit(key="ip", rate=RATE, block=True)
@never_cache
def line_login_callback(request: HttpRequest) -> HttpResponse:
    try:
        if request.GET.get("error"):
            raise ValidationError({"code": [request.GET.get("error_description", "")[:200]]})
        identity = login.link_from_callback(
            code=request.GET.get("code", ""),
            state=request.GET.get("state", ""),
            redirect_uri=_callback_uri(request),
        )
    except ValidationError as exc:
        messages = [m for ms in exc.message_dict.values() for m in ms if m]
        response = render(
            request, "portal/line_login_failed.html", {"messages": messages}, status=400
        )
        response.headers["Referrer-Policy"] = "same-origin"  # not no-referrer: see views.py
        return response
    return HttpResponseRedirect(member_url(identity.customer_id) + "?line=linked")
