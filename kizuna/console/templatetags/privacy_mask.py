"""Personal data on console pages, masked for roles that must not see it in clear
(`kizuna.iam.masking`, docs/privacy.md "Masking"):

    {% load privacy_mask %}
    {% pd customer "email" %}            t***@example.com for an analyst, clear otherwise
    {% pd customer "address" %}          〒150-**** 東京都***
    {% pd_identity identity %}           an identity's value
    {% pd_props event.properties customer as props %}  free-form properties (names, contacts masked)
    {% pd_masked as masked %}            whether this page masks (e.g. to hide a birthday)
    {% pd_name customer %}               how the customer is named (str(customer)): 山*** or #12
    {% pd_value "contact_email" inquiry.contact_email %}  a field of another model by its kind
    {% pd_text message.body customer %}  free text: contact details and the customer's names
"""

from __future__ import annotations

from typing import Any

from django import template

from kizuna.customers.japanese import customer_address, format_address
from kizuna.iam.masking import (
    HIDDEN,
    customer_label,
    known_names,
    mask,
    mask_free_text,
    mask_identity,
    mask_postal_code,
    mask_property,
    masks_personal_data,
)

register = template.Library()


def _masked(context: Any) -> bool:
    request = context.get("request")
    return masks_personal_data(getattr(request, "user", None))


@register.simple_tag(takes_context=True)
def pd_masked(context: Any) -> bool:
    return _masked(context)


@register.simple_tag(takes_context=True)
def pd(context: Any, customer: Any, field: str) -> Any:
    """`field` of `customer` ("address" is the formatted postal address)."""
    if customer is None:
        return ""
    if field == "address":
        if not _masked(context):
            return customer_address(customer)
        return format_address(
            postal_code=mask_postal_code(customer.postal_code) if customer.postal_code else "",
            prefecture=customer.prefecture,
            city=HIDDEN if (customer.city or customer.address_line) else "",
        )
    value = getattr(customer, field, "")
    return mask(field, value) if _masked(context) else value


@register.simple_tag(takes_context=True)
def pd_identity(context: Any, identity: Any) -> str:
    value = str(identity.value)
    return mask_identity(identity.kind, value) if _masked(context) else value


@register.simple_tag(takes_context=True)
def pd_props(context: Any, properties: Any, customer: Any = None) -> Any:
    """Free-form properties; masked, the customer's own names are masked inside texts too."""
    if not isinstance(properties, dict) or not _masked(context):
        return properties
    known: tuple[str, ...] = ()
    if customer is not None:
        known = tuple(
            str(getattr(customer, f, "") or "")
            for f in ("family_name", "given_name", "family_name_kana", "given_name_kana")
        )
    return {str(k): mask_property(str(k), v, known) for k, v in properties.items()}


@register.simple_tag(takes_context=True)
def pd_name(context: Any, customer: Any) -> str:
    return customer_label(customer, _masked(context))


@register.simple_tag(takes_context=True)
def pd_value(context: Any, field: str, value: Any) -> Any:
    return mask(field, value) if _masked(context) else value


@register.simple_tag(takes_context=True)
def pd_text(context: Any, value: Any, customer: Any = None) -> Any:
    if not _masked(context):
        return value
    return mask_free_text(value, known_names(customer))
