"""Template helpers of the staff console: money, prefectures, ages, roles, event labels."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from kizuna.core.money import format_money
from kizuna.core.timeutil import age_on, local_date, now
from kizuna.customers.choices import PREFECTURE_CHOICES, PREFECTURE_NAMES_EN
from kizuna.iam.masking import user_role_cached
from kizuna.iam.roles import Role

register = template.Library()

_PREFECTURE_NAMES_JA = dict(PREFECTURE_CHOICES)

EVENT_LABELS = {
    "customer.created": _("Customer created"),
    "customer.updated": _("Profile updated"),
    "identity.linked": _("Identity linked"),
    "consent.granted": _("Consent granted"),
    "consent.withdrawn": _("Consent withdrawn"),
    "order.placed": _("Order placed"),
    "order.refunded": _("Order refunded"),
    "customer.at_risk": _("Became at risk of churning"),
}


@register.filter
def money(amount_minor: int | None, currency: str = "JPY") -> str:
    """`{{ order.total_minor|money:order.currency }}` → ¥12,345."""
    return format_money(amount_minor, currency or "JPY")


@register.filter
def prefecture_name(code: str) -> str:
    if not code:
        return ""
    if (get_language() or "ja").startswith("en"):
        return PREFECTURE_NAMES_EN.get(code, code)
    return _PREFECTURE_NAMES_JA.get(code, code)


@register.filter
def age(birthday: date | None) -> int | None:
    return age_on(birthday, local_date(now())) if birthday else None


@register.filter
def percent(value: float | None) -> str:
    return f"{(value or 0) * 100:.1f}%"


@register.filter
def event_label(event_type: str) -> str:
    return str(EVENT_LABELS.get(event_type, event_type))


@register.simple_tag(takes_context=True)
def console_role(context: template.Context) -> str:
    """The signed-in user's role, translated (cached on the request)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return ""
    if not hasattr(request, "_console_role"):
        role = user_role_cached(user)  # shared with the masking policy
        request._console_role = str(Role(role).label) if role else ""
    return request._console_role


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: Any) -> str:
    """The current query string with some parameters replaced (for paging and sorting)."""
    request = context["request"]
    params = request.GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = urlencode(sorted((k, v) for k in params for v in params.getlist(k)))
    return f"?{encoded}" if encoded else "?"
