"""The preference centre (配信設定), unsubscribe confirmation and LINE linking: customer-facing,
mobile-first, ja/en, reached from signed links in messages (no password), rate limited."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from kizuna.customers.models import Customer
from kizuna.messaging import links, selectors, services
from kizuna.messaging.choices import Frequency
from kizuna.privacy import double_opt_in

RATE = "30/m"
SOURCE = "preference_centre"


class PreferencesForm(forms.Form):
    email = forms.BooleanField(label=_("Email newsletters"), required=False)
    line = forms.BooleanField(label=_("LINE messages"), required=False)
    topics = forms.MultipleChoiceField(
        label=_("Topics"), required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )
    frequency = forms.ChoiceField(
        label=_("How often"), choices=Frequency.choices, widget=forms.RadioSelect
    )
    interests = forms.CharField(
        label=_("Your interests (comma-separated)"), required=False, max_length=300
    )

    def __init__(self, *args: Any, topics: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["topics"].choices = topics  # type: ignore[attr-defined]


def _language(request: HttpRequest, customer: Customer) -> str:
    language = request.GET.get("lang") or customer.locale or "ja"
    return language if language in ("ja", "en") else "ja"


def customer_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @ratelimit(key="ip", rate=RATE, block=True)
    @never_cache
    @wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        customer_id = links.customer_from_preferences_token(token)
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
        if customer is None:
            raise Http404
        language = _language(request, customer)
        with translation.override(language):
            response = view(request, token, customer, *args, **kwargs)
            response.headers.setdefault("Content-Language", language)
        response.headers["Referrer-Policy"] = "same-origin"  # not no-referrer: see views.py
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return wrapper


@customer_view
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    state = selectors.preference_state(customer=customer)
    topics = selectors.topic_choices()
    saved = confirmation_sent = False
    if request.method == "POST":
        form = PreferencesForm(request.POST, topics=topics)
        if form.is_valid():
            data = form.cleaned_data
            email = data["email"]
            try:
                if email and not state.get("email") and double_opt_in.required(SOURCE):
                    # Double opt-in: consent only once the emailed link is confirmed.
                    double_opt_in.email_opt_in(
                        customer=customer, source=SOURCE, evidence={"page": "preferences"}
                    )
                    email, confirmation_sent = False, True
                services.preferences_save(
                    customer=customer,
                    channels={"email": email, "line": data["line"]},
                    topics=list(data["topics"]),
                    frequency=data["frequency"],
                    interests=[i for i in data["interests"].split(",") if i.strip()],
                )
                saved = True
                state = selectors.preference_state(customer=customer)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
    else:
        form = PreferencesForm(initial=state, topics=topics)
    return render(
        request,
        "portal/preferences/preferences.html",
        {
            "form": form,
            "saved": saved,
            "confirmation_sent": confirmation_sent,
            "token": token,
            "customer": customer,
            "lang": translation.get_language(),
        },
    )


@ratelimit(key="ip", rate=RATE, block=True)
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The page behind the unsubscribe link in the body: GET asks, POST unsubscribes (a GET
    never does: mail scanners follow links)."""
    delivery_id = links.unsign(links.UNSUB, token)
    delivery = selectors.delivery_for_unsubscribe(delivery_id=delivery_id)
    if delivery is None:
        raise Http404
    language = _language(request, delivery.customer)
    done = False
    with translation.override(language):
        if request.method == "POST":
            services.unsubscribe(delivery_id=delivery.pk, source="confirmation_page")
            done = True
        response = render(
            request,
            "portal/preferences/unsubscribe.html",
            {
                "done": done,
                "token": token,
                "delivery": delivery,
                "preferences_token": links.preferences_token(delivery.customer_id),
                "lang": language,
            },
        )
    response.headers["Referrer-Policy"] = "same-origin"  # not no-referrer: see views.py
    return response


@customer_view
@require_http_methods(["GET", "POST"])
def line_link(request: HttpRequest, token: str, customer: Customer) -> HttpResponse:
    """Show a one-time code to send to the LINE official account; the webhook links it."""
    code = None
    if request.method == "POST":
        code = services.line_link_code_issue(customer=customer)
    return render(
        request,
        "portal/preferences/line_link.html",
        {
            "token": token,
            "code": code,
            "linked": selectors.line_linked(customer=customer),
            "lang": translation.get_language(),
        },
    )
