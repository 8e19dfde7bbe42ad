"""Plotly figures of the customer-insight pages, as plain JSON-ready dicts.

The pages put each figure in a `<script type="application/json">` data block (never
executed, so the `script-src 'self'` CSP allows it) and `static/console/charts.js` draws
them with plotly.js from the installed plotly package (see plotly_assets.py).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from kizuna.analytics.models import Kpi, Segment
from kizuna.analytics.scoring import rfm_names as rfm

FONT = "-apple-system, 'Hiragino Sans', 'Noto Sans JP', 'Segoe UI', sans-serif"
ACCENT = "#8a3b12"
MUTED = "#8c8279"
# Heatmaps without a colour bar (plotly.js sets an inline style attribute on its fills) and
# with gaps between cells (without them plotly.js probes image rendering through an inline
# style attribute): the CSP forbids inline styles. Cells carry their values as text instead.
HEATMAP_CSP: dict[str, Any] = {"showscale": False, "xgap": 1, "ygap": 1}


def month_tickformat() -> str:
    """A month axis's d3 tick format in the active language: 2026年11月 or 2026-11."""
    return "%Y年%-m月" if (get_language() or "").startswith("ja") else "%Y-%m"


def _layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "height": 360,
        "legend": {"orientation": "h", "y": -0.2},
    }
    base.update(extra)
    return base


def _plain(figure: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON types (plotly's encoder handles NumPy arrays)."""
    out: dict[str, Any] = json.loads(figure.to_json())
    out.pop("layout", {}).get("template")
    out["layout"] = json.loads(figure.to_json())["layout"]
    out["layout"].pop("template", None)
    return out


def rfm_grid(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Heatmap of customers per (R, F) cell, labelled with the segment of the cell."""
    counts = [[0] * 5 for _ in range(5)]
    spend = [[0.0] * 5 for _ in range(5)]
    for cell in cells:
        counts[cell["r_score"] - 1][cell["f_score"] - 1] = cell["customers"]
        spend[cell["r_score"] - 1][cell["f_score"] - 1] = cell["spend"] or 0.0
    labels = dict(Segment.choices)
    text = [[f"{labels[rfm.GRID[r][f]]}<br>{counts[r][f]:,}" for f in range(5)] for r in range(5)]
    hover = [
        [
            _("R %(r)d × F %(f)d: %(n)s customers, average spend ¥%(m)s")
            % {"r": r + 1, "f": f + 1, "n": f"{counts[r][f]:,}", "m": f"{spend[r][f]:,.0f}"}
            for f in range(5)
        ]
        for r in range(5)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=counts,
            x=[str(f) for f in range(1, 6)],
            y=[str(r) for r in range(1, 6)],
            text=text,
            texttemplate="%{text}",
            hovertext=hover,
            hoverinfo="text",
            colorscale="Oranges",
            **HEATMAP_CSP,
        ),
        layout=_layout(
            xaxis={"title": {"text": _("F score (frequency)")}},
            yaxis={"title": {"text": _("R score (recency)")}},
            height=420,
        ),
    )
    return _plain(figure)


def clv_histogram(bins: list[dict[str, Any]]) -> dict[str, Any]:
    figure = go.Figure(
        go.Bar(
            x=[(b["low"] + b["high"]) / 2 for b in bins],
            y=[b["customers"] for b in bins],
            width=[(b["high"] - b["low"]) * 0.95 for b in bins],
            marker={"color": ACCENT},
            hovertemplate=_("CLV ¥%{x:,.0f}: %{y:,} customers") + "<extra></extra>",
        ),
        layout=_layout(
            xaxis={"title": {"text": _("CLV over the horizon (¥)")}, "tickformat": ",.0f"},
            yaxis={"title": {"text": _("Customers")}},
            bargap=0,
        ),
    )
    return _plain(figure)


def segment_bars(rows: list[dict[str, Any]]) -> dict[str, Any]:
    figure = go.Figure(
        go.Bar(
            x=[r["label"] for r in rows],
            y=[r["customers"] for r in rows],
            marker={"color": ACCENT},
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        ),
        layout=_layout(yaxis={"title": {"text": _("Customers")}}, height=300),
    )
    return _plain(figure)


def cohort_heatmap(cohorts: dict[str, Any]) -> dict[str, Any]:
    retention = cohorts["retention"]
    width = len(retention[0]) if retention else 0
    z = [[None if v is None else round(v * 100, 1) for v in row] for row in retention]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(k) for k in range(width)],
            y=[f"{c} ({n:,})" for c, n in zip(cohorts["cohorts"], cohorts["sizes"], strict=True)],
            colorscale="Blues",
            zmin=0,
            zmax=100,
            hovertemplate=_("Cohort %{y}, month %{x}: %{z}%") + "<extra></extra>",
            texttemplate="%{z:.0f}",
            textfont={"size": 9},
            **HEATMAP_CSP,
        ),
        layout=_layout(
            xaxis={"title": {"text": _("Months since first purchase")}},
            yaxis={"autorange": "reversed", "title": {"text": _("First-purchase month")}},
            height=max(360, 22 * len(retention) + 120),
        ),
    )
    return _plain(figure)


def kpi_trend(
    kpi: str, months: list[date], values: list[Any], goals: list[dict[str, Any]]
) -> dict[str, Any]:
    label = str(dict(Kpi.choices).get(kpi, kpi))
    is_rate = kpi in ("repeat_rate", "churn_rate")
    ys = [None if v is None else (v * 100 if is_rate else v) for v in values]
    figure = go.Figure(
        go.Scatter(
            x=[m.isoformat() for m in months],
            y=ys,
            mode="lines+markers",
            name=label,
            line={"color": ACCENT},
            connectgaps=False,
        ),
        layout=_layout(
            yaxis={"title": {"text": label + (" (%)" if is_rate else "")}, "rangemode": "tozero"},
            xaxis={"tickformat": month_tickformat()},
            height=300,
            showlegend=bool(goals),
        ),
    )
    for goal in goals:
        target = goal["target"] * 100 if is_rate else goal["target"]
        figure.add_trace(
            go.Scatter(
                x=[goal["due"].isoformat()],
                y=[target],
                mode="markers",
                marker={"symbol": "star", "size": 14, "color": "#2b6cb0"},
                name=_("Goal by %(month)s")
                % {"month": date_format(goal["due"], "YEAR_MONTH_FORMAT")},
            )
        )
        start = months[0] if months else goal["due"]
        figure.add_shape(
            type="line",
            x0=start.isoformat(),
            x1=(goal["due"] + timedelta(days=1)).isoformat(),
            y0=target,
            y1=target,
            line={"dash": "dot", "color": "#2b6cb0"},
        )
    return _plain(figure)


def repeat_histogram(histogram: dict[str, Any]) -> dict[str, Any]:
    traces = [
        go.Bar(
            x=histogram["labels"], y=histogram["actual"], name=_("Actual"), marker={"color": MUTED}
        )
    ]
    if histogram.get("expected"):
        traces.append(
            go.Bar(
                x=histogram["labels"],
                y=histogram["expected"],
                name=_("Model"),
                marker={"color": ACCENT},
            )
        )
    figure = go.Figure(
        traces,
        layout=_layout(
            barmode="group",
            xaxis={"title": {"text": _("Repeat purchases")}, "type": "category"},
            yaxis={"title": {"text": _("Customers")}},
        ),
    )
    return _plain(figure)


def tracking(data: dict[str, Any]) -> dict[str, Any]:
    epoch = date(1970, 1, 1)
    days = [(epoch + timedelta(days=d)).isoformat() for d in data["day"]]
    figure = go.Figure(
        [
            go.Scatter(x=days, y=data["actual"], name=_("Actual"), line={"color": MUTED}),
            go.Scatter(
                x=days, y=data["expected"], name=_("Model"), line={"color": ACCENT, "dash": "dash"}
            ),
        ],
        layout=_layout(
            yaxis={"title": {"text": _("Cumulative repeat purchases")}},
            xaxis={"tickformat": "%Y-%m"},
        ),
    )
    return _plain(figure)
