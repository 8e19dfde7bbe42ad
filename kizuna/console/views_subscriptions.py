"""Console pages of subscriptions: the dashboard (MRR/ARR, by plan, MRR, churn and cohort
retention charts), the list and one subscription with its history and actions, plans,
and CSV import."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console import subscription_charts as charts
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers.models import Customer
from kizuna.subscriptions import selectors, services
from kizuna.subscriptions.models import Interval, Status

MAX_UPLOAD = 20 * 1024 * 1024


class PlanForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    code = forms.SlugField(label=gettext_lazy("Code"), max_length=50, required=False)
    price_yen = forms.IntegerField(label=gettext_lazy("Price (yen)"))
    interval = forms.ChoiceField(choices=Interval.choices, label=gettext_lazy("Interval"))
    trial_days = forms.IntegerField(label=gettext_lazy("Trial days"), initial=0)


class ActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("renew", gettext_lazy("Renew (paid)")),
            ("pause", gettext_lazy("Pause")),
            ("resume", gettext_lazy("Resume")),
            ("payment_failed", gettext_lazy("Payment failed")),
            ("cancel", gettext_lazy("Cancel")),
        ],
        label=gettext_lazy("Action"),
    )
    reason = forms.CharField(max_length=200, required=False, label=gettext_lazy("Reason"))


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"))


@staff_required("subscriptions.view_subscription")
def dashboard(request: HttpRequest) -> HttpResponse:
    revenue = selectors.revenue()
    churn = selectors.churn_by_month(months=12)
    cohorts = selectors.retention_by_cohort(max_months=12)
    return render(
        request,
        "console/subscriptions/dashboard.html",
        {
            "revenue": revenue,
            "statuses": [(s.label, revenue.by_status.get(s.value, 0)) for s in Status],
            "churn": churn,
            "cohorts": cohorts,
            "mrr_figure": charts.mrr_trend(selectors.mrr_by_month(months=12)),
            "churn_figure": charts.churn_trend(churn),
            "cohort_figure": charts.retention_heatmap(cohorts),
        },
    )


@staff_required("subscriptions.view_subscription")
def subscription_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    subs = selectors.subscription_list(status=status if status in Status.values else None)
    return render(
        request,
        "console/subscriptions/list.html",
        {"page": _page(request, subs), "status": status, "statuses": Status.choices},
    )


@staff_required("subscriptions.view_subscription")
def subscription_detail(request: HttpRequest, subscription_id: int) -> HttpResponse:
    try:
        sub = selectors.subscription_get(subscription_id=subscription_id)
    except NotFound as exc:
        raise Http404 from exc
    return render(
        request,
        "console/subscriptions/detail.html",
        {
            "sub": sub,
            "events": list(selectors.event_list(subscription=sub)[:200]),
            "form": ActionForm(),
        },
    )


@require_POST
@staff_required("subscriptions.change_subscription")
def subscription_action(request: HttpRequest, subscription_id: int) -> HttpResponse:
    try:
        sub = selectors.subscription_get(subscription_id=subscription_id)
    except NotFound as exc:
        raise Http404 from exc
    form = ActionForm(request.POST)
    if form.is_valid():
        try:
            services.subscription_act(
                subscription=sub,
                action=form.cleaned_data["action"],
                reason=form.cleaned_data["reason"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    messages.error(request, f"{field}: {error}")
        else:
            messages.success(request, _("The subscription was updated."))
    else:
        messages.error(request, _("Choose an action."))
    return redirect("console:subscriptions_detail", subscription_id=sub.pk)


@staff_required("subscriptions.view_plan")
def plans(request: HttpRequest) -> HttpResponse:
    form = PlanForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("subscriptions.add_plan"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
            try:
                services.plan_create(data=data, actor=_staff(request))
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The plan was created."))
                return redirect("console:subscriptions_plans")
    return render(
        request,
        "console/subscriptions/plans.html",
        {"plans": list(selectors.plan_list()), "form": form},
    )


@staff_required("subscriptions.add_subscription")
def import_csv(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    errors: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            form.add_error("file", _("At most 20 MB."))
        else:
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                form.add_error("file", _("The file is not UTF-8 text."))
            else:
                try:
                    result = services.subscriptions_import(text=text, actor=_staff(request))
                except ValidationError as exc:
                    errors = [(k, m) for k, ms in exc.message_dict.items() for m in ms]
                else:
                    messages.success(
                        request,
                        _("%(created)d subscriptions imported, %(unchanged)d already there.")
                        % {"created": result.created, "unchanged": result.unchanged},
                    )
                    return redirect("console:subscriptions_list")
    return render(
        request,
        "console/subscriptions/import.html",
        {"form": form, "errors": errors, "columns": services.IMPORT_COLUMNS},
    )


# --- customer 360 panel -------------------------------------------------------------------


def _customer_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    subs = list(selectors.subscriptions_of(customer=customer)[:10])
    return {"subscriptions": subs} if subs else None


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="subscriptions",
            template="console/subscriptions/_customer_panel.html",
            context=_customer_panel,
            permission="subscriptions.view_subscription",
            order=45,
        )
    )
