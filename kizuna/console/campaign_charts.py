"""Plotly figures of the campaign results page, as plain JSON-ready dicts (drawn by
static/console/charts.js like the insight pages' figures, under the same strict CSP)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from kizuna.console.analytics_charts import ACCENT, MUTED, _layout, _plain

SERIES = ("#8a3b12", "#c47a3d", "#5b7f6e", "#3d5a80", "#8c8279")


def variant_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Open, click and conversion rate per variant, grouped bars."""
    metrics = [
        ("open_rate", _("Open rate")),
        ("click_rate", _("Click rate")),
        ("conversion_rate", _("Conversion rate")),
    ]
    figure = go.Figure(
        [
            go.Bar(
                name=f"{row['key']} {row['name']}".strip(),
                x=[label for _key, label in metrics],
                y=[row[key] for key, _label in metrics],
                marker={"color": SERIES[i % len(SERIES)]},
                hovertemplate="%{x}: %{y:.1%}<extra>" + row["key"] + "</extra>",
            )
            for i, row in enumerate(rows)
        ],
        layout=_layout(barmode="group", yaxis={"tickformat": ".0%"}, height=320),
    )
    return _plain(figure)


def funnel(row: dict[str, Any]) -> dict[str, Any]:
    """Recipients → sent → delivered → opened → clicked → converted, for all variants."""
    stages = [
        ("recipients", _("Recipients")),
        ("sent", _("Sent")),
        ("delivered", _("Delivered")),
        ("opened", _("Opened")),
        ("clicked", _("Clicked")),
        ("conversions", _("Converted")),
    ]
    figure = go.Figure(
        go.Bar(
            x=[row[key] for key, _label in stages],
            y=[label for _key, label in stages],
            orientation="h",
            marker={"color": [ACCENT, ACCENT, ACCENT, MUTED, MUTED, MUTED]},
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        ),
        layout=_layout(yaxis={"autorange": "reversed"}, height=300),
    )
    return _plain(figure)


def holdout_bars(holdout: dict[str, Any]) -> dict[str, Any]:
    """Conversion rate of the treated against the holdout (intention to treat)."""
    figure = go.Figure(
        go.Bar(
            x=[_("Sent the campaign"), _("Holdout")],
            y=[holdout["treated_rate"], holdout["holdout_rate"]],
            marker={"color": [ACCENT, MUTED]},
            hovertemplate="%{x}: %{y:.2%}<extra></extra>",
        ),
        layout=_layout(yaxis={"tickformat": ".1%"}, height=280),
    )
    return _plain(figure)
