from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from kizuna.accounts import services
from kizuna.accounts.models import Activity, Deal
from kizuna.accounts.tests.conftest import make_pipeline
from kizuna.core.timeutil import now
from kizuna.iam.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "admin", user=None):
        user = user or make_staff(role)
        key = api_key_create(name=role, role=role, created_by=user)
        client = Client()

        def send(method: str, path: str, body=None):
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
            if method == "GET":
                return client.get(path, headers=headers)
            return client.generic(
                method,
                path,
                json.dumps(body or {}),
                content_type="application/json",
                headers=headers,
            )

        return send

    return make


def session(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_accounts_deals_move_and_forecast(call, pipeline, customer) -> None:
    api = call("admin")
    r = api("POST", "/api/v1/accounts", {"name": "Acme", "named": True})
    assert r.status_code == 201
    acme = r.json()["id"]
    r = api("POST", "/api/v1/accounts", {"name": "Acme Osaka", "parent": acme})
    child = r.json()["id"]
    r = api("PATCH", f"/api/v1/accounts/{acme}", {"parent": child})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "parent"
    r = api(
        "POST",
        f"/api/v1/accounts/{acme}/contacts",
        {"customer_id": customer.pk, "role": "champion"},
    )
    assert r.status_code == 201
    stages = {s["name"]: s["id"] for s in api("GET", "/api/v1/pipelines").json()[0]["stages"]}
    r = api(
        "POST",
        "/api/v1/deals",
        {"title": "Pilot", "account": acme, "stage": stages["Proposal"], "amount_yen": 400000},
    )
    assert r.status_code == 201, r.content
    deal = r.json()["id"]
    other = make_pipeline("Renewals").stages.get(name="Lead")
    r = api("POST", f"/api/v1/deals/{deal}/move", {"stage": other.pk})
    assert r.status_code == 422
    assert (
        r.json()["detail"][0]["field"] == "stage" and "Renewals" in r.json()["detail"][0]["message"]
    )
    r = api("POST", f"/api/v1/deals/{deal}/move", {"stage": stages["Negotiation"]})
    assert r.json()["stage_id"] == stages["Negotiation"]
    f = api("GET", "/api/v1/forecast").json()
    assert (f["total_yen"], f["weighted_yen"]) == (400000, 320000)
    r = api(
        "POST",
        "/api/v1/deals",
        {"title": "Neg", "account": acme, "stage": stages["Lead"], "amount_yen": -5},
    )
    assert r.status_code == 422 and Deal.objects.count() == 1
    rollup = api("GET", f"/api/v1/accounts/{acme}/rollup").json()
    assert rollup["open_pipeline_yen"] == 400000 and rollup["contacts"] == 1
    assert api("GET", f"/api/v1/accounts/{acme}/timeline").status_code == 200


def test_activities_tasks_and_deactivated_assignee(call, make_staff, customer) -> None:
    user = make_staff("marketer")
    api = call("marketer", user=user)
    gone = make_staff("support", username="gone")
    gone.is_active = False
    gone.save()
    due = (now() + timedelta(days=1)).isoformat()
    r = api(
        "POST",
        "/api/v1/activities",
        {
            "kind": "task",
            "subject": "Call",
            "customer": customer.pk,
            "due_at": due,
            "assigned_to": gone.pk,
        },
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "assigned_to"
    assert "deactivated" in r.json()["detail"][0]["message"]
    assert Activity.objects.count() == 0
    r = api(
        "POST",
        "/api/v1/activities",
        {"kind": "task", "subject": "Call", "customer": customer.pk, "due_at": due},
    )
    assert r.status_code == 201 and r.json()["assigned_to_id"] == user.pk
    task = r.json()["id"]
    assert [
        a["id"] for a in api("GET", "/api/v1/activities?mine=true&open_tasks=true").json()["items"]
    ] == [task]
    assert api("POST", f"/api/v1/activities/{task}/complete").json()["done_at"]
    assert api("GET", "/api/v1/activities?open_tasks=true").json()["count"] == 0


def test_sales_sees_own_deals_only(sales, pipeline, admin_user) -> None:
    a, b = sales("sato"), sales("suzuki")
    account = services.account_create(data={"name": "Acme"})
    lead = pipeline.stages.first()
    services.deal_create(data={"title": "Mine", "account": account, "stage": lead.pk}, actor=a)
    theirs = services.deal_create(
        data={"title": "Theirs", "account": account, "stage": lead.pk}, actor=b
    )
    client = session(a)
    r = client.get("/api/v1/deals")
    assert [d["title"] for d in r.json()["items"]] == ["Mine"]
    assert client.get(f"/api/v1/deals/{theirs.pk}").status_code == 404
    r = client.post(
        f"/api/v1/deals/{theirs.pk}/move",
        json.dumps({"stage": lead.pk}),
        content_type="application/json",
    )
    assert r.status_code == 404
    assert session(admin_user).get("/api/v1/deals").json()["count"] == 2
    r = client.post(
        "/api/v1/pipelines",
        json.dumps({"name": "X", "stages": []}),
        content_type="application/json",
    )
    assert r.status_code == 403


def test_my_customers_route(call, make_staff, customer) -> None:
    owner = make_staff("marketer")
    services.care_assign(customer=customer, owner=owner, cadence_days=7)
    api = call("marketer", user=owner)
    rows = api("GET", "/api/v1/my-customers").json()
    assert rows["count"] == 1 and rows["items"][0]["customer_id"] == customer.pk
    assert Client().get("/api/v1/my-customers").status_code == 401
    assert Client().get("/api/v1/deals").status_code == 401


def test_ids_beyond_any_row_are_404_or_422_not_500(call, pipeline) -> None:
    api = call("admin")
    huge = 2**63 + 5
    assert api("GET", f"/api/v1/accounts/{huge}").status_code in (404, 422)
    assert api("GET", f"/api/v1/deals/{2**62 + 1}").status_code == 404
    r = api("POST", "/api/v1/deals", {"title": "X", "stage": huge})
    assert r.status_code in (400, 422)  # the JSON parser refuses numbers past 64 bits
    r = api("POST", "/api/v1/deals", {"title": "X", "stage": 2**62 + 1})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "stage"
    r = api("POST", "/api/v1/activities", {"kind": "note", "subject": "x", "account": 2**62 + 1})
    assert r.status_code == 422
    assert api("POST", f"/api/v1/activities/{2**62 + 1}/complete").status_code == 404


def test_sales_api_key_can_do_what_sales_staff_can_and_nothing_more(
    sales, pipeline, admin_user, customer
) -> None:
    """The same requests through a sales user's session and through a sales API key created
    for that user: the same answers (own deals only, selling allowed, the rest refused)."""
    from kizuna.iam.models import ApiKey

    sato = sales("sato")
    account = services.account_create(data={"name": "Acme"})
    lead, proposal = pipeline.stages.order_by("position")[:2]
    theirs = services.deal_create(
        data={"title": "Theirs", "account": account, "stage": lead.pk}, actor=admin_user
    )
    key = api_key_create(name="sato's CRM sync", role="sales", created_by=sato)
    assert ApiKey.objects.get().role == "sales"

    def by_session(method: str, path: str, body=None):
        return session(sato).generic(
            method, path, json.dumps(body) if body is not None else "", "application/json"
        )

    def by_key(method: str, path: str, body=None):
        return Client().generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            "application/json",
            headers={"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"},
        )

    def scenario(send, tag: str) -> list[int]:
        answers = []

        def ask(method: str, path: str, body=None) -> Any:
            r = send(method, path, body)
            answers.append(r.status_code)
            return r

        r = ask(
            "POST",
            "/api/v1/deals",
            {"title": f"Mine {tag}", "account": account.pk, "stage": lead.pk},
        )
        mine = r.json()["id"]
        assert r.json()["owner_id"] == sato.pk  # the key acts as the user it was made for
        ask("POST", f"/api/v1/deals/{mine}/move", {"stage": proposal.pk})
        ask("PATCH", f"/api/v1/deals/{mine}", {"amount_yen": 5000})
        r = ask("GET", "/api/v1/deals")
        assert theirs.pk not in [d["id"] for d in r.json()["items"]]
        ask("GET", f"/api/v1/deals/{theirs.pk}")  # 404: another owner's deal
        ask("POST", f"/api/v1/deals/{theirs.pk}/move", {"stage": proposal.pk})  # 404
        r = ask("GET", f"/api/v1/forecast?pipeline_id={pipeline.pk}")
        assert sum(s["count"] for s in r.json()["stages"]) == int(tag)  # own open deals only
        r = ask("POST", "/api/v1/accounts", {"name": f"Prospect {tag}"})
        ask("PATCH", f"/api/v1/accounts/{r.json()['id']}", {"domain": "prospect.example"})
        ask("POST", f"/api/v1/accounts/{r.json()['id']}/contacts", {"customer_id": customer.pk})
        ask("GET", f"/api/v1/accounts/{account.pk}/rollup")
        due = (now() + timedelta(days=1)).isoformat()
        r = ask(
            "POST",
            "/api/v1/activities",
            {"kind": "task", "subject": "Call", "deal": mine, "due_at": due},
        )
        ask("POST", f"/api/v1/activities/{r.json()['id']}/complete")
        ask("GET", "/api/v1/my-customers")
        ask("GET", "/api/v1/plans")
        ask("GET", f"/api/v1/customers/{customer.pk}")
        # refused: managing pipelines, plans and subscriptions, customers' writes, loyalty
        ask("POST", "/api/v1/pipelines", {"name": "X", "stages": []})
        ask("POST", "/api/v1/plans", {"code": "x", "name": "X", "price_yen": 100})
        ask("POST", "/api/v1/subscriptions", {"customer_id": customer.pk, "plan_id": 1})
        ask("POST", "/api/v1/customers", {"family_name": "新規"})
        ask("PATCH", f"/api/v1/customers/{customer.pk}", {"family_name": "変更"})
        return answers

    expected = [201, 200, 200, 200, 404, 404, 200, 201, 200, 201, 200, 201, 200, 200, 200, 200]
    expected += [403] * 5
    assert scenario(by_session, "1") == expected
    before = Deal.objects.get(pk=theirs.pk).stage_id
    assert scenario(by_key, "2") == expected
    assert Deal.objects.get(pk=theirs.pk).stage_id == before == lead.pk


def test_pipeline_put_restages_and_names_the_problem(call, pipeline) -> None:
    api = call("admin")
    stages = [
        {"name": "Lead", "probability": 5},
        {"name": "Won", "probability": 100, "outcome": "won"},
        {"name": "Lost", "probability": 0, "outcome": "lost"},
    ]
    r = api("PUT", f"/api/v1/pipelines/{pipeline.pk}", {"name": "Short", "stages": stages})
    assert r.status_code == 200, r.content
    assert [(s["name"], s["probability"]) for s in r.json()["stages"]] == [
        ("Lead", 5),
        ("Won", 100),
        ("Lost", 0),
    ]
    r = api("PUT", f"/api/v1/pipelines/{pipeline.pk}", {"name": "Short", "stages": stages[:1]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "stages"
    r = api("PUT", "/api/v1/pipelines/999999", {"name": "Short", "stages": stages})
    assert r.status_code == 404
    assert (
        call("sales")(
            "PUT", f"/api/v1/pipelines/{pipeline.pk}", {"name": "S", "stages": stages}
        ).status_code
        == 403
    )
