"""Console pages of recommendations: the report (holdout metrics of each model against the
popularity baseline, with charts), training runs and "train now", the consumable/excluded
settings of products and categories, and the customer-360 panel."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.catalog.models import Category, Product
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _staff, staff_required
from kizuna.customers.models import Customer
from kizuna.recommendations import selectors, services
from kizuna.recommendations.models import ItemSetting, Kind, RunTrigger

VIEW = "recommendations.view_modelversion"
VIEW_RUNS = "recommendations.view_trainingrun"
TRAIN = "recommendations.add_trainingrun"
MANAGE = "recommendations.change_itemsetting"
PANEL_N = 6

FONT = "-apple-system, 'Hiragino Sans', 'Noto Sans JP', 'Segoe UI', sans-serif"
COLOURS = {"als": "#8a3b12", "bpr": "#c47a3a", "cooccurrence": "#5b7f6a", "popularity": "#8c8279"}


# --- customer 360 panel -------------------------------------------------------------------


def _panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    result = selectors.recommendations_for(customer=customer, n=PANEL_N)
    if result.model is None:
        return None
    return {"result": result}


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="recommendations.products",
            template="console/recommendations/_customer_panel.html",
            context=_panel,
            permission=VIEW,
            order=30,
        )
    )


# --- charts -------------------------------------------------------------------------------


def _layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "height": 340,
        "legend": {"orientation": "h", "y": -0.2},
    }
    base.update(extra)
    return base


def _plain(figure: go.Figure) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(figure.to_json())
    out["layout"].pop("template", None)
    return out


def metrics_chart(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Grouped bars: precision, recall, MAP and coverage at k of each kind."""
    k = evaluation.get("k", 10)
    names = {
        "precision": _("Precision@%(k)s") % {"k": k},
        "recall": _("Recall@%(k)s") % {"k": k},
        "map": _("MAP@%(k)s") % {"k": k},
        "coverage": _("Coverage"),
    }
    kinds = evaluation.get("kinds", {})
    figure = go.Figure(
        [
            go.Bar(
                name=str(Kind(kind).label),
                x=list(names.values()),
                y=[values.get(m, 0) for m in names],
                marker={"color": COLOURS.get(kind, "#444")},
                hovertemplate="%{x}: %{y:.4f}<extra></extra>",
            )
            for kind, values in kinds.items()
        ],
        layout=_layout(barmode="group", yaxis={"title": {"text": _("Value")}}),
    )
    return _plain(figure)


def history_chart(history: list[dict[str, Any]]) -> dict[str, Any]:
    """MAP@k of each kind over the recent training runs."""
    figure = go.Figure(
        [
            go.Scatter(
                name=str(Kind(kind).label),
                x=[f"#{h['run']}" for h in history],
                y=[h.get(kind) for h in history],
                mode="lines+markers",
                line={"color": COLOURS[kind]},
            )
            for kind in COLOURS
        ],
        layout=_layout(
            xaxis={"title": {"text": _("Training run")}, "type": "category"},
            yaxis={"title": {"text": _("MAP")}},
        ),
    )
    return _plain(figure)


# --- pages --------------------------------------------------------------------------------


class SettingForm(forms.Form):
    target = forms.CharField(
        label=gettext_lazy("Product SKU or category slug"),
        max_length=100,
        help_text=gettext_lazy("A product's own setting wins over its category's."),
    )
    consumable = forms.BooleanField(
        label=gettext_lazy("Consumable (recommend again after a purchase)"), required=False
    )
    excluded = forms.BooleanField(label=gettext_lazy("Never recommend"), required=False)


@staff_required(VIEW, VIEW_RUNS)
def report(request: HttpRequest) -> HttpResponse:
    latest = selectors.latest_evaluation()
    history = selectors.evaluation_history()
    runs = list(selectors.run_list()[:20])
    context = {
        "run": runs[0] if runs else None,
        "runs": runs,
        "evaluated": latest,
        "kinds": latest.evaluation.get("kinds", {}) if latest else {},
        "versions": sorted(selectors.active_versions().values(), key=lambda v: v.kind),
        "metrics_figure": metrics_chart(latest.evaluation) if latest else None,
        "history_figure": history_chart(history) if len(history) > 1 else None,
        "settings": ItemSetting.objects.select_related("product", "category").order_by("pk"),
        "form": SettingForm(),
    }
    return render(request, "console/recommendations/report.html", context)


@staff_required(VIEW, TRAIN)
@require_POST
def train_now(request: HttpRequest) -> HttpResponse:
    services.training_run_request(trigger=RunTrigger.CONSOLE, actor=_staff(request))
    messages.success(
        request, _("Training was queued; the worker activates the new models when it is done.")
    )
    return redirect("console:recommendations_report")


@staff_required(VIEW, MANAGE)
@require_POST
def setting_save(request: HttpRequest) -> HttpResponse:
    form = SettingForm(request.POST)
    if form.is_valid():
        target = form.cleaned_data["target"].strip()
        product = Product.objects.filter(sku=target).first()
        category = None if product else Category.objects.filter(slug=target).first()
        if product is None and category is None:
            form.add_error("target", _("No product or category %(t)s.") % {"t": target})
        else:
            try:
                services.item_setting_save(
                    product=product,
                    category=category,
                    consumable=form.cleaned_data["consumable"],
                    excluded=form.cleaned_data["excluded"],
                    actor=_staff(request),
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("target", message)
            else:
                selectors.cache_clear()
                messages.success(request, _("Setting saved for %(t)s.") % {"t": target})
                return redirect("console:recommendations_report")
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))
    return redirect("console:recommendations_report")


@staff_required(VIEW, "recommendations.delete_itemsetting")
@require_POST
def setting_delete(request: HttpRequest, setting_id: int) -> HttpResponse:
    setting = get_object_or_404(ItemSetting, pk=setting_id)
    services.item_setting_delete(setting=setting, actor=_staff(request))
    selectors.cache_clear()
    messages.success(request, _("Setting removed."))
    return redirect("console:recommendations_report")
