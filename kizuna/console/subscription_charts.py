"""Plotly figures of the subscriptions dashboard (see analytics_charts.py for how pages
embed them under the CSP)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from kizuna.console.analytics_charts import ACCENT, HEATMAP_CSP, MUTED, _layout, _plain
from kizuna.subscriptions.periods import ChurnMonth, CohortRow


def mrr_trend(points: list[dict[str, Any]]) -> dict[str, Any]:
    months = [date_format(p["month"], "YEAR_MONTH_FORMAT") for p in points]
    figure = go.Figure(
        go.Bar(x=months, y=[p["mrr_yen"] for p in points], marker_color=ACCENT, name="MRR")
    )
    figure.update_layout(**_layout(yaxis={"title": _("MRR (yen)")}, height=300))
    return _plain(figure)


def churn_trend(rows: list[ChurnMonth]) -> dict[str, Any]:
    months = [date_format(r.month, "YEAR_MONTH_FORMAT") for r in rows]
    figure = go.Figure(
        go.Scatter(
            x=months,
            y=[None if r.rate is None else r.rate * 100 for r in rows],
            mode="lines+markers",
            line={"color": MUTED},
            name=_("Churn"),
        )
    )
    figure.update_layout(**_layout(yaxis={"title": _("Monthly churn (%)")}, height=300))
    return _plain(figure)


def retention_heatmap(rows: list[CohortRow]) -> dict[str, Any]:
    width = max((len(r.retained) for r in rows), default=0)
    z = [
        [(r.retained[k] * 100 if k < len(r.retained) else None) for k in range(width)] for r in rows
    ]
    text = [[("" if v is None else f"{v:.0f}%") for v in line] for line in z]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(k) for k in range(width)],
            y=[f"{date_format(r.cohort, 'YEAR_MONTH_FORMAT')} ({r.size})" for r in rows],
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#f6efe9"], [1, ACCENT]],
            zmin=0,
            zmax=100,
            **HEATMAP_CSP,
        )
    )
    figure.update_layout(
        **_layout(
            xaxis={"title": _("Months since start")},
            yaxis={"autorange": "reversed"},
            height=max(260, 28 * len(rows) + 100),
        )
    )
    return _plain(figure)
