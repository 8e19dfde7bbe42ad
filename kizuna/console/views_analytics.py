"""Console pages of customer insight: RFM and CLV overview, cohorts, KPIs with goals, model
diagnostics, the score list, CSV downloads of every table, and the customer-360 panel."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.analytics import selectors, services
from kizuna.analytics.models import Kpi, RunTrigger, Segment
from kizuna.console import analytics_charts as charts
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers.models import Customer

VIEW = "analytics.view_customerscore"
VIEW_RUNS = "analytics.view_scoringrun"
RUN = "analytics.add_scoringrun"
SET_GOAL = "analytics.add_kpigoal"
DELETE_GOAL = "analytics.delete_kpigoal"
AT_RISK_SHOWN = 50
KPI_MONTHS = 24
EPOCH = date(1970, 1, 1)


# --- customer 360 panel -------------------------------------------------------------------


def _score_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    """The customer's scores; no section until they have some (bought, then a run)."""
    score = selectors.customer_score(customer=customer)
    return {"score": score} if score is not None else None


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="analytics.scores",
            template="console/analytics/_customer_panel.html",
            context=_score_panel,
            permission=VIEW,
            order=10,
        )
    )


# --- pages --------------------------------------------------------------------------------


@staff_required(VIEW)
def overview(request: HttpRequest) -> HttpResponse:
    segments = selectors.segment_summary()
    context = {
        "run": selectors.latest_run(),
        "scored_run": selectors.latest_successful_run(),
        "segments": segments,
        "at_risk": selectors.at_risk_list(limit=AT_RISK_SHOWN),
        "rfm_figure": charts.rfm_grid(selectors.rfm_grid()),
        "segment_figure": charts.segment_bars(segments),
        "clv_figure": charts.clv_histogram(selectors.clv_distribution()),
    }
    return render(request, "console/analytics/overview.html", context)


class ScoreFilterForm(forms.Form):
    segment = forms.ChoiceField(
        label=gettext_lazy("Segment"),
        choices=[("", gettext_lazy("All segments")), *Segment.choices],
        required=False,
    )
    at_risk = forms.ChoiceField(
        label=gettext_lazy("Churn risk"),
        choices=[
            ("", gettext_lazy("All")),
            ("yes", gettext_lazy("At risk")),
            ("no", gettext_lazy("Not at risk")),
        ],
        required=False,
    )

    def selector_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "segment": data.get("segment") or "",
            "at_risk": {"yes": True, "no": False}.get(data.get("at_risk") or ""),
        }


@staff_required(VIEW, "customers.view_customer")
def score_list(request: HttpRequest) -> HttpResponse:
    form = ScoreFilterForm(request.GET)
    page = _page(request, selectors.score_list(**form.selector_kwargs()))
    return render(request, "console/analytics/scores.html", {"form": form, "page": page})


@staff_required(VIEW)
def cohorts(request: HttpRequest) -> HttpResponse:
    data = selectors.insight(months=KPI_MONTHS)
    context = {
        "cohorts": data.cohorts,
        "rows": zip(
            data.cohorts["cohorts"], data.cohorts["sizes"], data.cohorts["retention"], strict=True
        ),
        "offsets": range(len(data.cohorts["cohorts"])),
        "figure": charts.cohort_heatmap(data.cohorts),
        "as_of": data.as_of,
    }
    return render(request, "console/analytics/cohorts.html", context)


class GoalForm(forms.Form):
    kpi = forms.ChoiceField(label=gettext_lazy("KPI"), choices=Kpi.choices)
    target = forms.FloatField(
        label=gettext_lazy("Target"),
        help_text=gettext_lazy("Rates as percentages (40 = 40%); money in yen."),
    )
    due = forms.DateField(
        label=gettext_lazy("By (month)"),
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)

    def service_target(self) -> float:
        target = float(self.cleaned_data["target"])
        return target / 100 if self.cleaned_data["kpi"] in services.RATE_KPIS else target


def _kpi_rows(data: selectors.Insight, goals: list[Any]) -> list[dict[str, Any]]:
    rows = []
    by_kpi: dict[str, list[Any]] = {}
    for goal in goals:
        by_kpi.setdefault(goal.kpi, []).append(goal)
    for kpi, label in Kpi.choices:
        values = data.kpis.get(kpi, [])
        kpi_goals = [{"target": g.target, "due": g.due} for g in by_kpi.get(kpi, [])]
        latest = next((v for v in reversed(values) if v is not None), None)
        rows.append(
            {
                "kpi": kpi,
                "label": label,
                "latest": latest,
                "is_rate": kpi in services.RATE_KPIS,
                "is_money": kpi in MONEY_KPIS,
                "figure": charts.kpi_trend(kpi, data.months, values, kpi_goals),
            }
        )
    return rows


MONEY_KPIS = {Kpi.AOV, Kpi.REPEAT_REVENUE, Kpi.AVERAGE_CLV, Kpi.TOTAL_CLV, Kpi.POINTS_LIABILITY}


@staff_required(VIEW)
def kpis(request: HttpRequest, form: GoalForm | None = None, status: int = 200) -> HttpResponse:
    data = selectors.insight(months=KPI_MONTHS)
    goals = list(selectors.kpi_goal_list())
    context = {
        "rows": _kpi_rows(data, goals),
        "goals": [selectors.goal_progress(goal, data) for goal in goals],
        "form": form or GoalForm(initial={"due": date.today().replace(day=1) + timedelta(days=92)}),
        "months": data.months,
        "as_of": data.as_of,
    }
    return render(request, "console/analytics/kpis.html", context, status=status)


@staff_required(VIEW, SET_GOAL)
@require_POST
def goal_set(request: HttpRequest) -> HttpResponse:
    form = GoalForm(request.POST)
    if form.is_valid():
        try:
            services.kpi_goal_set(
                kpi=form.cleaned_data["kpi"],
                target=form.service_target(),
                due=form.cleaned_data["due"],
                note=form.cleaned_data["note"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("The KPI goal was saved."))
            return redirect("console:analytics_kpis")
    return kpis(request, form=form, status=400)


@staff_required(VIEW, DELETE_GOAL)
@require_POST
def goal_delete(request: HttpRequest, goal_id: int) -> HttpResponse:
    try:
        goal = selectors.kpi_goal_get(goal_id=goal_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    services.kpi_goal_delete(goal=goal, actor=_staff(request))
    messages.success(request, _("The KPI goal was deleted."))
    return redirect("console:analytics_kpis")


@staff_required(VIEW, VIEW_RUNS)
def models(request: HttpRequest) -> HttpResponse:
    run = selectors.latest_successful_run()
    diagnostics = run.diagnostics if run else {}
    context = {
        "run": run,
        "runs": selectors.run_list()[:20],
        "histogram": diagnostics.get("histogram"),
        "histogram_figure": charts.repeat_histogram(diagnostics["histogram"])
        if diagnostics.get("histogram")
        else None,
        "tracking_figure": charts.tracking(diagnostics["tracking"])
        if diagnostics.get("tracking")
        else None,
    }
    return render(request, "console/analytics/models.html", context)


@staff_required(VIEW, RUN)
@require_POST
def run_now(request: HttpRequest) -> HttpResponse:
    services.scoring_run_request(trigger=RunTrigger.CONSOLE, actor=_staff(request))
    messages.success(
        request,
        _("Scoring was queued; the worker stores new scores in a minute or two."),
    )
    return redirect(request.POST.get("next") or "console:analytics_overview")


# --- CSV downloads ------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(name: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # BOM: Excel opens UTF-8 (Japanese names) correctly
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kizuna-{name}.csv"'
    return response


def _segments_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    rows = selectors.segment_summary()
    header = [
        "segment", "label", "customers", "share", "avg_days_since_last_purchase", "avg_orders",
        "avg_net_spend", "avg_clv", "total_clv", "avg_p_alive", "at_risk",
    ]  # fmt: skip
    return header, (
        [
            r["segment"], r["label"], r["customers"], r["share"], r["recency_days"],
            r["orders"], r["spend"], r["clv"], r["total_clv"], r["p_alive"], r["at_risk"],
        ]
        for r in rows
    )  # fmt: skip


def _scores_csv(queryset: Any) -> tuple[list[str], Iterable[Iterable[Any]]]:
    header = [
        "customer_id", "name", "segment", "r", "f", "m", "orders", "repeat_purchases",
        "days_since_last_purchase", "days_since_first_purchase", "net_spend", "p_alive",
        "churn_risk", "at_risk", "days_overdue", "expected_purchases_30d",
        "expected_purchases_horizon", "expected_aov", "clv", "currency", "model_version",
        "scored_at",
    ]  # fmt: skip
    return header, (
        [
            s.customer_id, s.customer.display_name, s.segment, s.r_score, s.f_score, s.m_score,
            s.orders, s.frequency, s.recency_days, s.age_days, s.monetary_minor,
            round(s.p_alive, 6), round(1 - s.p_alive, 6), int(s.at_risk), s.days_overdue,
            round(s.expected_purchases_30d, 4), round(s.expected_purchases, 4),
            s.expected_aov_minor, s.clv_minor, s.currency, s.model_version,
            s.scored_at.isoformat(),
        ]
        for s in queryset.iterator(chunk_size=2000)
    )  # fmt: skip


def _cohorts_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    data = selectors.insight(months=KPI_MONTHS).cohorts
    width = len(data["cohorts"])
    header = ["cohort", "customers", *[f"month_{k}" for k in range(width)]]
    return header, (
        [cohort, size, *["" if v is None else round(v, 6) for v in line]]
        for cohort, size, line in zip(
            data["cohorts"], data["sizes"], data["retention"], strict=True
        )
    )


def _kpis_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    data = selectors.insight(months=KPI_MONTHS)
    keys = list(data.kpis)
    return ["month", *keys], (
        [
            month.strftime("%Y-%m"),
            *["" if data.kpis[k][i] is None else data.kpis[k][i] for k in keys],
        ]
        for i, month in enumerate(data.months)
    )


def _goals_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    data = selectors.insight(months=KPI_MONTHS)
    header = ["kpi", "target", "due", "latest", "trend_per_month", "projected", "on_track", "note"]
    return header, (
        [
            p["goal"].kpi, p["goal"].target, p["goal"].due.strftime("%Y-%m"), p["latest"],
            p["slope"], p["projected"], p["on_track"], p["goal"].note,
        ]
        for p in (selectors.goal_progress(g, data) for g in selectors.kpi_goal_list())
    )  # fmt: skip


def _runs_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    header = [
        "id", "status", "trigger", "created_at", "as_of", "seconds", "model_version",
        "customers_scored", "newly_at_risk", "repeat_params", "repeat_log_likelihood",
        "repeat_converged", "spend_params", "spend_converged", "message",
    ]  # fmt: skip

    def row(run: Any) -> list[Any]:
        repeat = run.fit.get("repeat", {})
        spend = run.fit.get("spend", {})
        return [
            run.pk, run.status, run.trigger, run.created_at.isoformat(),
            run.as_of.isoformat() if run.as_of else "", run.seconds, run.model_version,
            run.customers_scored, run.newly_at_risk, repeat.get("params", ""),
            repeat.get("log_likelihood", ""), repeat.get("converged", ""),
            spend.get("params", ""), spend.get("converged", ""), run.message,
        ]  # fmt: skip

    return header, (row(run) for run in selectors.run_list().iterator())


def _diagnostics(kind: str) -> tuple[list[str], Iterable[Iterable[Any]]]:
    run = selectors.latest_successful_run()
    data = (run.diagnostics if run else {}).get(kind) or {}
    if kind == "histogram":
        expected = data.get("expected") or [None] * len(data.get("labels", []))
        return ["repeat_purchases", "actual_customers", "expected_customers"], zip(
            data.get("labels", []), data.get("actual", []), expected, strict=True
        )
    return ["date", "actual_cumulative", "expected_cumulative"], (
        [(EPOCH + timedelta(days=d)).isoformat(), a, e]
        for d, a, e in zip(
            data.get("day", []), data.get("actual", []), data.get("expected", []), strict=True
        )
    )


def _rfm_grid_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    return ["r", "f", "customers", "avg_net_spend", "avg_clv"], (
        [c["r_score"], c["f_score"], c["customers"], c["spend"], c["clv"]]
        for c in selectors.rfm_grid()
    )


def _clv_csv() -> tuple[list[str], Iterable[Iterable[Any]]]:
    return ["clv_from", "clv_to", "customers"], (
        [b["low"], b["high"], b["customers"]] for b in selectors.clv_distribution()
    )


Table = Callable[[HttpRequest], tuple[list[str], Iterable[Iterable[Any]]]]
TABLES: dict[str, tuple[tuple[str, ...], Table]] = {
    "segments": ((VIEW,), lambda r: _segments_csv()),
    "rfm-grid": ((VIEW,), lambda r: _rfm_grid_csv()),
    "clv-distribution": ((VIEW,), lambda r: _clv_csv()),
    "at-risk": (
        (VIEW, "customers.view_customer"),
        lambda r: _scores_csv(selectors.score_list(at_risk=True)),
    ),
    "scores": (
        (VIEW, "customers.view_customer"),
        lambda r: _scores_csv(selectors.score_list(**ScoreFilterForm(r.GET).selector_kwargs())),
    ),
    "cohorts": ((VIEW,), lambda r: _cohorts_csv()),
    "kpis": ((VIEW,), lambda r: _kpis_csv()),
    "goals": ((VIEW,), lambda r: _goals_csv()),
    "runs": ((VIEW, VIEW_RUNS), lambda r: _runs_csv()),
    "histogram": ((VIEW, VIEW_RUNS), lambda r: _diagnostics("histogram")),
    "tracking": ((VIEW, VIEW_RUNS), lambda r: _diagnostics("tracking")),
}


@staff_required(VIEW)
def download(request: HttpRequest, table: str) -> Any:  # a streaming response
    entry = TABLES.get(table)
    if entry is None:
        raise Http404(table)
    perms, build = entry
    if not request.user.has_perms(perms):
        raise PermissionDenied
    header, rows = build(request)
    return _csv(table, header, rows)
