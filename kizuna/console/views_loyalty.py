"""Console pages of the loyalty programme: overview (tiers, rewards, coupons), the points
liability report (also as CSV), and the customer-360 panel with redeem and adjust forms."""

from __future__ import annotations

import csv
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _staff, staff_required
from kizuna.customers.models import Customer
from kizuna.loyalty import selectors, services
from kizuna.loyalty.models import Reward
from kizuna.portal.links import member_url


class RedeemForm(forms.Form):
    reward = forms.ModelChoiceField(
        queryset=Reward.objects.filter(active=True), label=gettext_lazy("Reward")
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=120)


class AdjustForm(forms.Form):
    points = forms.IntegerField(label=gettext_lazy("Points (+/-)"))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=120)


def _key() -> str:
    return uuid.uuid4().hex


def loyalty_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    card = selectors.member_card(customer=customer)
    if card.programme is None:
        return None
    return {
        "card": card,
        "entries": list(selectors.ledger_list(account=card.account)[:8]) if card.account else [],
        "coupons": list(selectors.coupons_of(customer=customer)[:5]),
        "portal_url": request.build_absolute_uri(member_url(customer.pk)),
        "redeem_form": RedeemForm(initial={"idempotency_key": _key()}),
        "adjust_form": AdjustForm(initial={"idempotency_key": _key()}),
        "customer": customer,
    }


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="loyalty",
            template="console/loyalty/_panel.html",
            context=loyalty_panel,
            permission="loyalty.view_account",
            order=40,
        )
    )


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        for error in errors:
            messages.error(request, f"{field}: {error}")


@staff_required("loyalty.view_programme")
def overview(request: HttpRequest) -> HttpResponse:
    programme = selectors.programme_current()
    return render(
        request,
        "console/loyalty/overview.html",
        {
            "programme": programme,
            "tiers": list(programme.tiers.all()) if programme else [],
            "rewards": selectors.reward_list(),
            "coupons": selectors.coupon_definition_list()[:50],
            "summary": selectors.programme_summary(),
            "liability": selectors.points_liability(),
        },
    )


@staff_required("loyalty.view_programme")
def liability(request: HttpRequest) -> HttpResponse:
    report = selectors.points_liability()
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="points-liability-{report.as_of.isoformat()}.csv"'
        )
        response.write("\ufeff")  # Excel opens UTF-8 CSV correctly with a BOM
        writer = csv.writer(response)
        writer.writerow(
            ["as_of", "kind", "expires_month", "points", "gross_yen", "breakage", "net_yen"]
        )
        for row in report.rows:
            writer.writerow(
                [
                    report.as_of.isoformat(),
                    row.kind,
                    row.expires_month,
                    row.points,
                    row.gross_yen,
                    "0" if row.kind == "paid" else report.breakage,
                    row.net_yen,
                ]
            )
        writer.writerow(
            [
                report.as_of.isoformat(),
                "total",
                "",
                report.points,
                report.gross_yen,
                "",
                report.net_yen,
            ]
        )
        return response
    return render(request, "console/loyalty/liability.html", {"report": report})


@require_POST
@staff_required("loyalty.add_redemption")
def redeem(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    form = RedeemForm(request.POST)
    if form.is_valid():
        try:
            services.reward_redeem(
                customer=customer,
                reward=form.cleaned_data["reward"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(request, _("The reward was redeemed."))
    else:
        messages.error(request, _("Choose a reward."))
    return redirect("console:customer_detail", customer_id=customer.pk)


@require_POST
@staff_required("loyalty.add_ledgerentry")
def adjust(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            services.points_adjust(
                customer=customer,
                points=form.cleaned_data["points"],
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(request, _("The points were adjusted."))
    else:
        messages.error(request, _("Give the points and a reason."))
    return redirect("console:customer_detail", customer_id=customer.pk)
