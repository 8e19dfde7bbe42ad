"""Forms of the staff console: they parse and shape input; the services hold the rules."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from kizuna.commerce.models import OrderStatus
from kizuna.core.money import exponent
from kizuna.customers.choices import (
    PREFECTURE_CHOICES,
    PREFECTURE_NAMES_EN,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Gender,
    IdentityKind,
    LegalBasis,
    Locale,
    TraitType,
)
from kizuna.customers.models import Customer, TraitDefinition

ANY = [("", _("Any"))]


def prefecture_choices() -> list[tuple[str, str]]:
    if (get_language() or "ja").startswith("en"):
        return [(code, PREFECTURE_NAMES_EN[code]) for code, _ja in PREFECTURE_CHOICES]
    return list(PREFECTURE_CHOICES)


class CustomerFilterForm(forms.Form):
    ORDERINGS = [
        ("-id", _("Newest first")),
        ("id", _("Oldest first")),
        ("family_name_kana", _("Name (kana)")),
        ("-last_seen_at", _("Last seen")),
    ]
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    prefecture = forms.ChoiceField(label=_("Prefecture"), required=False)
    gender = forms.ChoiceField(label=_("Gender"), required=False, choices=[*ANY, *Gender.choices])
    has_email = forms.ChoiceField(
        label=_("Email"),
        required=False,
        choices=[*ANY, ("yes", _("With email")), ("no", _("Without email"))],
    )
    ordering = forms.ChoiceField(label=_("Order by"), required=False, choices=ORDERINGS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prefecture"].choices = [*ANY, *prefecture_choices()]  # type: ignore[attr-defined]

    def selector_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data if self.is_valid() else {}
        has_email = {"yes": True, "no": False}.get(data.get("has_email") or "")
        return {
            "search": data.get("q") or "",
            "prefecture": data.get("prefecture") or "",
            "gender": data.get("gender") or "",
            "has_email": has_email,
            "ordering": data.get("ordering") or "-id",
        }


class IdentityForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=IdentityKind.choices)
    value = forms.CharField(label=_("Value"), max_length=255)


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=ConsentPurpose.choices)
    channel = forms.ChoiceField(label=_("Channel"), choices=ConsentChannel.choices)
    status = forms.ChoiceField(label=_("Status"), choices=ConsentStatus.choices)
    legal_basis = forms.ChoiceField(
        label=_("Legal basis"), choices=LegalBasis.choices, initial=LegalBasis.CONSENT
    )
    notice_version = forms.CharField(label=_("Notice version"), required=False, max_length=50)
    note = forms.CharField(
        label=_("Note (how the customer told us)"), required=False, max_length=500
    )


class ProfileForm(forms.Form):
    """The profile fields of a customer plus one field per declared trait (`trait_<key>`).

    Values are passed to `customer_update` as typed; its ValidationError is mapped back onto
    these fields by `add_service_errors`."""

    family_name = forms.CharField(label=_("Family name"), required=False)
    given_name = forms.CharField(label=_("Given name"), required=False)
    family_name_kana = forms.CharField(label=_("Family name (kana)"), required=False)
    given_name_kana = forms.CharField(label=_("Given name (kana)"), required=False)
    email = forms.CharField(label=_("Email"), required=False)
    phone = forms.CharField(label=_("Phone"), required=False)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=Gender.choices)
    postal_code = forms.CharField(label=_("Postal code"), required=False)
    prefecture = forms.ChoiceField(label=_("Prefecture"), required=False)
    city = forms.CharField(label=_("City"), required=False)
    address_line = forms.CharField(label=_("Address"), required=False)
    locale = forms.ChoiceField(label=_("Language"), choices=Locale.choices)

    PROFILE_FIELDS = (
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "email",
        "phone",
        "birthday",
        "gender",
        "postal_code",
        "prefecture",
        "city",
        "address_line",
        "locale",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        customer: Customer,
        definitions: list[TraitDefinition],
        **kwargs: Any,
    ) -> None:
        initial = {f: getattr(customer, f) for f in self.PROFILE_FIELDS}
        self.definitions = definitions
        for d in definitions:
            value = customer.traits.get(d.key)
            if d.type == TraitType.BOOLEAN and value is not None:
                value = "true" if value else "false"
            initial[f"trait_{d.key}"] = value
        initial.update(kwargs.pop("initial", None) or {})
        super().__init__(data, initial=initial, **kwargs)
        self.fields["prefecture"].choices = [("", "—"), *prefecture_choices()]  # type: ignore[attr-defined]
        for d in definitions:
            self.fields[f"trait_{d.key}"] = self._trait_field(d)

    @staticmethod
    def _trait_field(d: TraitDefinition) -> forms.Field:
        label = d.label or d.key
        help_text = d.description
        if d.type == TraitType.INTEGER:
            return forms.IntegerField(label=label, required=False, help_text=help_text)
        if d.type == TraitType.NUMBER:
            return forms.FloatField(label=label, required=False, help_text=help_text)
        if d.type == TraitType.BOOLEAN:
            return forms.ChoiceField(
                label=label,
                required=False,
                help_text=help_text,
                choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))],
            )
        if d.type == TraitType.DATE:
            return forms.DateField(
                label=label,
                required=False,
                help_text=help_text,
                widget=forms.DateInput(attrs={"type": "date"}),
            )
        if d.type == TraitType.CHOICE:
            return forms.ChoiceField(
                label=label,
                required=False,
                help_text=help_text,
                choices=[("", "—"), *((str(c), str(c)) for c in d.choices)],
            )
        return forms.CharField(label=label, required=False, help_text=help_text)

    @property
    def trait_fields(self) -> list[forms.BoundField]:
        return [self[f"trait_{d.key}"] for d in self.definitions]

    @property
    def profile_fields(self) -> list[forms.BoundField]:
        return [self[f] for f in self.PROFILE_FIELDS]

    def service_data(self) -> dict[str, Any]:
        """The cleaned values in the shape `customer_update` takes."""
        data: dict[str, Any] = {f: self.cleaned_data.get(f) for f in self.PROFILE_FIELDS}
        traits: dict[str, Any] = {}
        for d in self.definitions:
            value = self.cleaned_data.get(f"trait_{d.key}")
            if value in ("", None):
                value = None
            elif d.type == TraitType.BOOLEAN:
                value = value == "true"
            elif d.type == TraitType.DATE and isinstance(value, date):
                value = value.isoformat()
            elif d.type == TraitType.CHOICE:
                # Choices may be numbers in the definition; send back the declared value.
                value = next((c for c in d.choices if str(c) == value), value)
            traits[d.key] = value
        if traits:
            data["traits"] = traits
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's errors (keyed `email`, `traits.<key>`, ...) on their fields."""
        for key, messages in error.message_dict.items():
            field = f"trait_{key.removeprefix('traits.')}" if key.startswith("traits.") else key
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0"), max_digits=15)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", f"console-{uuid.uuid4()}")
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> int:
        amount: Decimal = self.cleaned_data["amount"]
        minor = amount.scaleb(exponent(self.currency))
        if minor != minor.to_integral_value():
            raise ValidationError(
                _("Too many decimal places for %(currency)s."), params={"currency": self.currency}
            )
        if minor <= 0:
            raise ValidationError(_("A refund must be more than zero."))
        return int(minor)


class OrderFilterForm(forms.Form):
    q = forms.CharField(label=_("Order number"), required=False, max_length=64)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[*ANY, *OrderStatus.choices]
    )


class ProductFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    category = forms.ChoiceField(label=_("Category"), required=False)
    active = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[*ANY, ("yes", _("Active")), ("no", _("Inactive"))],
    )

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [*ANY, *categories]  # type: ignore[attr-defined]
