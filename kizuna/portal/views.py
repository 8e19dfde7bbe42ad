"""The member portal (会員証): a customer opens it from a signed link. Mobile-first, in the
customer's language (ja/en, `?lang=` to switch), rate limited per address."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import wraps
from typing import Any

import segno
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django_ratelimit.decorators import ratelimit

from kizuna.customers.models import Customer
from kizuna.loyalty import selectors
from kizuna.loyalty.models import LedgerEntry
from kizuna.portal.links import customer_id_from

RATE = "60/m"
HISTORY_PAGE = 20


def member_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the signed token to the customer (404 for a bad or expired one), rate limit,
    and render in the customer's language."""

    @ratelimit(key="ip", rate=RATE, block=True)
    @never_cache
    @wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        customer_id = customer_id_from(token)
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
        if customer is None:
            raise Http404
        language = request.GET.get("lang") or customer.locale or "ja"
        if language not in ("ja", "en"):
            language = "ja"
        with translation.override(language):
            response = view(request, token, customer, *args, **kwargs)
            response.headers.setdefault("Content-Language", language)
        # The token is in the URL: never sent to other sites. Not "no-referrer": browsers then
        # post the forms with `Origin: null`, which the CSRF check refuses.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return wrapper


@member_view
def member_card(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    card = selectors.member_card(customer=customer)
    context = {
        "token": token,
        "card": card,
        "history": list(selectors.ledger_list(account=card.account)[:5]) if card.account else [],
        "rewards": list(selectors.rewards_available(account=card.account)[:20]),
        "coupons": list(selectors.coupons_of(customer=customer)[:20]),
        "lang": translation.get_language(),
    }
    return render(request, "portal/card.html", context)


@member_view
def member_history(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    account = selectors.account_get(customer=customer)
    entries = selectors.ledger_list(account=account) if account else LedgerEntry.objects.none()
    page = Paginator(entries, HISTORY_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/history.html",
        {"token": token, "page": page, "lang": translation.get_language()},
    )


@member_view
def member_qr(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    """The member number as a QR code (SVG), scanned at the till."""
    account = selectors.account_get(customer=customer)
    if account is None:
        raise Http404
    out = io.BytesIO()
    segno.make(account.member_number, error="m").save(
        out, kind="svg", scale=6, border=2, xmldecl=False, dark="#1f2937", light="#ffffff"
    )
    response = HttpResponse(out.getvalue(), content_type="image/svg+xml")
    return response
