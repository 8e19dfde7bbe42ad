"""Dates the console formats in Python (chart labels, form defaults) follow the active
language: 2026年11月 in Japanese, ISO 2026-11 in English (issue 13)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import translation

from kizuna.console import analytics_charts, subscription_charts
from kizuna.console.views_campaigns import CampaignForm
from kizuna.core.jp_calendar import JST, is_business_day


def test_chart_month_labels_follow_the_language() -> None:
    points = [{"month": date(2026, 11, 1), "mrr_yen": 120000}]
    with translation.override("ja"):
        ja = subscription_charts.mrr_trend(points)
        trend = analytics_charts.kpi_trend(
            "revenue", [date(2026, 10, 1)], [1], [{"due": date(2026, 11, 30), "target": 2}]
        )
    with translation.override("en"):
        en = subscription_charts.mrr_trend(points)
    assert ja["data"][0]["x"] == ["2026年11月"] and en["data"][0]["x"] == ["2026-11"]
    assert trend["layout"]["xaxis"]["tickformat"] == "%Y年%-m月"
    assert "2026年11月" in trend["data"][1]["name"]


def test_campaign_form_suggests_the_next_business_day_at_ten() -> None:
    suggested = CampaignForm().fields["send_at"].initial()
    assert isinstance(suggested, datetime)
    local = suggested.astimezone(JST)
    assert (local.hour, local.minute) == (10, 0) and is_business_day(local.date())
    assert local.date() > datetime.now(tz=JST).date()
