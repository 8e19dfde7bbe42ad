"""The console pages, CSV downloads, customer-360 panel and API routes of customer insight:
permissions, content, and the JSON data blocks the charts are drawn from. (Here, in the
faces layer, because it exercises the console and the API; the shop-history fixtures come
from kizuna/analytics/tests.)"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.test import Client

from kizuna.analytics import services
from kizuna.analytics.models import CustomerScore, KpiGoal, RunStatus, RunTrigger, ScoringRun
from kizuna.analytics.tests.conftest import AS_OF, history, small_parameters  # noqa: F401
from kizuna.customers.services import customer_create
from kizuna.iam.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(request):
    shop = request.getfixturevalue("history")(120)
    result = services.scoring_run_now(
        trigger=RunTrigger.CLI,
        parameters=request.getfixturevalue("small_parameters"),
        as_of=AS_OF,
    )
    assert result.status == RunStatus.SUCCEEDED
    return shop


def login(client: Client, make_staff, role: str) -> Client:
    client.force_login(make_staff(role))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the assertions read English text
    return client


def figures(html: str) -> dict[str, dict]:
    """The figures in <script type="application/json"> data blocks, by id."""
    blocks = re.findall(r'<script id="([^"]+)" type="application/json">(.*?)</script>', html, re.S)
    return {key: json.loads(body) for key, body in blocks}


def test_pages_render_charts_as_data_blocks_for_each_role(client, make_staff, scored):
    login(client, make_staff, "analyst")
    for path, charts in (
        ("/insight/", {"fig-rfm", "fig-clv", "fig-segments"}),
        ("/insight/cohorts/", {"fig-cohorts"}),
        ("/insight/models/", {"fig-histogram", "fig-tracking"}),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        found = figures(html)
        assert charts <= set(found), path
        for figure in found.values():
            assert figure["data"] and "layout" in figure
        # no inline script may run: every <script> is a file or a data block
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, tag
        assert "/static/vendor/plotly/plotly.min.js" in html
        assert 'class="no-inline-styles"' in html
    kpis = client.get("/insight/kpis/")
    assert kpis.status_code == 200
    assert {f"fig-kpi-{k}" for k in ("repeat_rate", "churn_rate", "aov", "total_clv")} <= set(
        figures(kpis.content.decode())
    )
    rfm = figures(client.get("/insight/").content.decode())["fig-rfm"]
    cells = sum(sum(row) for row in rfm["data"][0]["z"])
    assert cells == CustomerScore.objects.count() == 120


def test_support_sees_insight_but_may_not_run_scoring_or_set_goals(client, make_staff, scored):
    login(client, make_staff, "support")
    assert client.get("/insight/").status_code == 200
    assert b"Score customers now" not in client.get("/insight/").content
    assert client.get("/insight/models/").status_code == 200
    assert client.post("/insight/run/").status_code == 403
    response = client.post("/insight/kpis/goals/", {"kpi": "aov", "target": "1", "due": "2026-12"})
    assert response.status_code == 403
    assert ScoringRun.objects.count() == 1 and KpiGoal.objects.count() == 0
    client.logout()
    assert client.get("/insight/").status_code == 302


def test_run_now_queues_a_run_that_the_worker_executes(
    client, make_staff, scored, django_capture_on_commit_callbacks
):
    login(client, make_staff, "marketer")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/insight/run/", {"next": "/insight/models/"})
    assert response.status_code == 302 and response["Location"] == "/insight/models/"
    latest = ScoringRun.objects.order_by("-id").first()
    assert latest is not None
    assert latest.trigger == RunTrigger.CONSOLE and latest.status == RunStatus.SUCCEEDED
    assert latest.requested_by is not None


def test_every_table_downloads_as_csv(client, make_staff, scored):
    login(client, make_staff, "admin")
    services.kpi_goal_set(kpi="aov", target=1500, due=AS_OF.date())
    for table in (
        "segments", "rfm-grid", "clv-distribution", "at-risk", "scores", "cohorts",
        "kpis", "goals", "runs", "histogram", "tracking",
    ):  # fmt: skip
        response = client.get(f"/insight/csv/{table}.csv")
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(body)))
        assert len(rows) >= 2, table
    scores = b"".join(client.get("/insight/csv/scores.csv?segment=champions").streaming_content)
    rows = list(csv.reader(io.StringIO(scores.decode("utf-8-sig"))))
    assert len(rows) - 1 == CustomerScore.objects.filter(segment="champions").count()
    assert {row[2] for row in rows[1:]} <= {"champions"}
    assert client.get("/insight/csv/nope.csv").status_code == 404


def test_kpi_goals_from_the_console(client, make_staff, scored):
    login(client, make_staff, "analyst")
    response = client.post(
        "/insight/kpis/goals/",
        {"kpi": "repeat_rate", "target": "85", "due": "2026-12", "note": "PDCA"},
    )
    assert response.status_code == 302
    goal = KpiGoal.objects.get()
    assert goal.target == 0.85 and goal.due.isoformat() == "2026-12-01"
    page = client.get("/insight/kpis/").content.decode()
    assert "PDCA" in page and ("On track" in page or "Off track" in page)
    bad = client.post(
        "/insight/kpis/goals/", {"kpi": "churn_rate", "target": "abc", "due": "2026-12"}
    )
    assert bad.status_code == 400 and KpiGoal.objects.count() == 1
    assert client.post(f"/insight/kpis/goals/{goal.pk}/delete/").status_code == 302
    assert KpiGoal.objects.count() == 0


def test_customer_360_shows_the_scores_panel(client, make_staff, scored):
    login(client, make_staff, "support")
    score = CustomerScore.objects.order_by("customer_id").first()
    assert score is not None
    page = client.get(f"/customers/{score.customer_id}/").content.decode()
    assert 'id="scores"' in page and score.model_version in page
    assert score.get_segment_display() in page
    unscored = customer_create(data={"family_name": "未購入"})
    assert 'id="scores"' not in client.get(f"/customers/{unscored.pk}/").content.decode()


def test_api_returns_a_customers_scores_and_lists(
    client, make_staff, scored, django_capture_on_commit_callbacks
):
    creator = make_staff("analyst")
    key = api_key_create(name="k", role="analyst", created_by=creator).secret
    headers = {"Authorization": f"Bearer {key}"}
    score = CustomerScore.objects.order_by("customer_id").first()
    assert score is not None
    body = client.get(f"/api/v1/customers/{score.customer_id}/scores", headers=headers).json()
    assert body["customer_id"] == score.customer_id and body["segment"] == score.segment
    assert body["churn_risk"] == pytest.approx(1 - score.p_alive)
    assert body["model_version"] == "rfm5+bgnbd+gg/1"
    assert client.get("/api/v1/customers/999999/scores", headers=headers).status_code == 404
    listed = client.get("/api/v1/insight/scores?at_risk=true&page_size=5", headers=headers).json()
    assert listed["count"] == CustomerScore.objects.filter(at_risk=True).count()
    assert all(item["at_risk"] for item in listed["items"])
    runs = client.get("/api/v1/insight/runs", headers=headers).json()
    assert runs["items"][0]["status"] == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(
            "/api/v1/insight/runs", "{}", content_type="application/json", headers=headers
        )
    assert queued.status_code == 202
    assert (
        client.get(f"/api/v1/insight/runs/{queued.json()['id']}", headers=headers).json()["status"]
        == "succeeded"
    )
    support = api_key_create(name="s", role="support", created_by=make_staff("support")).secret
    refused = client.post(
        "/api/v1/insight/runs",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {support}"},
    )
    assert refused.status_code == 403


def test_plotly_assets_come_from_the_installed_package(client):
    from kizuna.console.plotly_assets import package_data_dir, plotly_css, style_guard_ids

    css = plotly_css()
    assert ".js-plotly-plot .plotly .modebar" in css and css.count("{") > 50
    assert client.get("/assets/plotly.css").content.decode() == css
    assert all(len(guard) == 64 for guard in style_guard_ids())
    from django.contrib.staticfiles import finders

    found = finders.find("vendor/plotly/plotly.min.js")
    directory = package_data_dir()
    assert directory is not None
    assert found == str(directory / "plotly.min.js")
