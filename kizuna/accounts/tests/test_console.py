from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kizuna.accounts import services
from kizuna.accounts.models import Account, Activity, CustomerCare, Deal
from kizuna.accounts.tests.conftest import make_pipeline, score
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer

pytestmark = pytest.mark.django_db

PAGES = [
    "/accounts/",
    "/accounts/new/",
    "/deals/board/",
    "/deals/",
    "/deals/new/",
    "/deals/forecast/",
    "/deals/pipelines/",
    "/tasks/",
    "/my-customers/",
    "/service-levels/",
]


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _deals(pipeline, account, n: int, owner) -> None:
    stages = [s for s in pipeline.stages.order_by("position") if s.outcome == "open"]
    Deal.objects.bulk_create(
        Deal(
            title=f"Deal {i}",
            account=account,
            pipeline=pipeline,
            stage=stages[i % len(stages)],
            amount_yen=1000 * (i + 1),
            owner=owner,
            stage_changed_at=now(),
        )
        for i in range(n)
    )


def test_pages_need_login_and_permission(make_staff, pipeline) -> None:
    for path in PAGES:
        r = Client().get(path)
        assert r.status_code == 302 and "/login/" in r["Location"], path
    nobody = make_staff("support", username="nobody")
    nobody.groups.clear()
    client = login(nobody)
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    analyst = login(make_staff("analyst"))
    assert analyst.get("/deals/board/").status_code == 200
    assert analyst.get("/deals/new/").status_code == 403
    r = analyst.post("/service-levels/", {"top_clv_percent": "5", "cadence_days": "7"})
    assert r.status_code == 403


def test_admin_pages_render_in_english(admin_user, pipeline, customer) -> None:
    account = services.account_create(data={"name": "Acme", "owner": admin_user})
    services.contact_add(account=account, customer=customer, role="champion")
    deal = services.deal_create(
        data={"title": "Pilot", "account": account, "stage": pipeline.stages.first().pk},
        actor=admin_user,
    )
    client = login(admin_user)
    for path in [
        *PAGES,
        f"/accounts/{account.pk}/",
        f"/deals/{deal.pk}/",
        f"/accounts/{account.pk}/edit/",
    ]:
        r = client.get(path)
        assert r.status_code == 200, path
    html = client.get("/deals/board/").content.decode()
    assert "Deals board" in html and 'draggable="true"' in html and "accounts.js" in html
    assert 'name="csrfmiddlewaretoken"' in html and "Pilot" in html
    assert "Weighted forecast" in client.get("/deals/forecast/").content.decode()


def test_board_query_count_does_not_grow_with_deals(admin_user, pipeline) -> None:
    account = services.account_create(data={"name": "Acme"})
    client = login(admin_user)
    _deals(pipeline, account, 20, admin_user)
    client.get("/deals/board/")  # warm the session and permission caches
    with CaptureQueriesContext(connection) as small:
        assert client.get("/deals/board/").status_code == 200
    _deals(pipeline, account, 400, admin_user)
    with CaptureQueriesContext(connection) as big:
        r = client.get("/deals/board/")
    assert r.status_code == 200
    # The same statements for 20 or 420 deals: the count does not grow with rows. (The bound
    # includes the session, permission and middleware statements of every console page.)
    assert len(big) == len(small) <= 25
    html = r.content.decode()
    assert html.count('class="deal-card"') == 3 * 20  # 20 cards a column
    assert "and 120 more" in html  # 140 deals in each of the 3 open stages
    assert html.count('name="stage"') == 3  # one move form a column, not one a card
    # "Load more" of a column costs the same statements whatever its position
    lead = pipeline.stages.get(name="Lead")
    with CaptureQueriesContext(connection) as more:
        r = client.get(f"/deals/board/stages/{lead.pk}/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and r.content.decode().count('class="deal-card"') == 20
    assert len(more) <= len(small)


def _cards(html: str) -> list[str]:
    import re

    return re.findall(r'data-deal="(\d+)"', html)


def _next(html: str) -> str | None:
    import re

    found = re.search(r'hx-get="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_load_more_walks_a_column_in_order(admin_user, pipeline, make_staff) -> None:
    account = services.account_create(data={"name": "Acme"})
    lead = pipeline.stages.get(name="Lead")
    base = now().date()
    # 45 deals in Lead: dated ones (some sharing a date) then undated ones last
    Deal.objects.bulk_create(
        Deal(
            title=f"D{i:02d}",
            account=account,
            pipeline=pipeline,
            stage=lead,
            amount_yen=1000,
            expected_close=None if i >= 40 else base + timedelta(days=i // 3),
            owner=admin_user,
            stage_changed_at=now(),
        )
        for i in range(45)
    )
    expected = [
        str(d.pk)
        for d in sorted(
            Deal.objects.filter(stage=lead),
            key=lambda d: (d.expected_close is None, d.expected_close or base, d.pk),
        )
    ]
    client = login(admin_user)
    board = client.get("/deals/board/").content.decode()
    seen = _cards(board)
    url = _next(board)
    while url:
        r = client.get(url, HTTP_HX_REQUEST="true")
        assert r.status_code == 200 and "<html" not in r.content.decode()  # the cards alone
        seen += _cards(r.content.decode())
        url = _next(r.content.decode())
    assert seen == expected  # every card once, by expected close, undated last
    # Without JavaScript the same link is a page of its own with the move form.
    r = client.get(f"/deals/board/stages/{lead.pk}/?after=-.{expected[40]}")
    html = r.content.decode()
    assert "<html" in html and _cards(html) == expected[41:] and 'name="stage"' in html
    assert client.get(f"/deals/board/stages/{lead.pk}/?after=2026-13-01.5").status_code == 400
    assert client.get(f"/deals/board/stages/{lead.pk}/?after=x").status_code == 400
    won = pipeline.stages.get(name="Won")
    assert client.get(f"/deals/board/stages/{won.pk}/").status_code == 404  # not a column
    assert client.get("/deals/board/stages/999999/").status_code == 404
    r = Client().get(f"/deals/board/stages/{lead.pk}/")
    assert r.status_code == 302 and "/login/" in r["Location"]
    nobody = make_staff("support", username="nobody")
    nobody.groups.clear()
    assert login(nobody).get(f"/deals/board/stages/{lead.pk}/").status_code == 403


def test_board_sums_match_the_forecast(admin_user, pipeline) -> None:
    from kizuna.accounts import selectors

    account = services.account_create(data={"name": "Acme"})
    _deals(pipeline, account, 30, admin_user)
    Deal.objects.filter(pk__in=Deal.objects.order_by("id").values("id")[:3]).update(amount_yen=999)
    board = selectors.kanban(principal=admin_user, pipeline=pipeline)
    forecast = selectors.forecast(principal=admin_user, pipeline=pipeline)
    assert [(c.count, c.amount_yen, c.weighted_yen) for c in board] == [
        (r.count, r.amount_yen, r.weighted_yen) for r in forecast.rows
    ]
    assert sum(c.count for c in board) == 30 and board[0].weighted_yen > 0


def test_move_ticked_deals_all_or_none(admin_user, pipeline, sales, make_staff) -> None:
    account = services.account_create(data={"name": "Acme"})
    stages = {s.name: s for s in pipeline.stages.all()}
    a, b = (
        services.deal_create(
            data={"title": t, "account": account, "stage": stages["Lead"].pk}, actor=admin_user
        )
        for t in ("Alpha", "Beta")
    )
    client = login(admin_user)
    r = client.post(
        "/deals/board/move/",
        {"deal": [a.pk, b.pk], "stage": stages["Lost"].pk, "next": "/deals/board/"},
        follow=True,
    )
    assert "Give the reason the deal was lost." in r.content.decode()
    assert set(Deal.objects.values_list("stage_id", flat=True)) == {stages["Lead"].pk}
    foreign = make_pipeline("Renewals").stages.get(name="Lead")
    r = client.post("/deals/board/move/", {"deal": [a.pk], "stage": foreign.pk}, follow=True)
    assert "belongs to the pipeline Renewals" in r.content.decode()
    r = client.post(
        "/deals/board/move/",
        {"deal": [a.pk, b.pk], "stage": stages["Proposal"].pk, "next": "/deals/board/"},
    )
    assert r.status_code == 302 and r["Location"] == "/deals/board/"
    assert set(Deal.objects.values_list("stage_id", flat=True)) == {stages["Proposal"].pk}
    # a sales user cannot move another owner's deal with the form either
    sato = sales("sato")
    seller = login(sato)
    mine = services.deal_create(
        data={"title": "Mine", "account": account, "stage": stages["Lead"].pk}, actor=sato
    )
    seller.post("/deals/board/move/", {"deal": [mine.pk, a.pk], "stage": stages["Won"].pk})
    assert Deal.objects.get(pk=mine.pk).stage_id == stages["Lead"].pk
    assert Deal.objects.get(pk=a.pk).stage_id == stages["Proposal"].pk
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(admin_user)
    r = csrf.post("/deals/board/move/", {"deal": [a.pk], "stage": stages["Lead"].pk})
    assert r.status_code == 403
    r = Client().post("/deals/board/move/", {"deal": [a.pk], "stage": stages["Lead"].pk})
    assert r.status_code == 302 and "/login/" in r["Location"]
    analyst = login(make_staff("analyst"))  # reads every deal, moves none
    r = analyst.post("/deals/board/move/", {"deal": [a.pk], "stage": stages["Lead"].pk})
    assert r.status_code == 403
    assert 'name="deal"' not in analyst.get("/deals/board/").content.decode()


def test_move_by_drag_json_and_by_form(admin_user, pipeline) -> None:
    account = services.account_create(data={"name": "Acme"})
    stages = {s.name: s for s in pipeline.stages.all()}
    deal = services.deal_create(
        data={"title": "Pilot", "account": account, "stage": stages["Lead"].pk}, actor=admin_user
    )
    client = login(admin_user)
    r = client.post(
        f"/deals/{deal.pk}/move/", {"stage": stages["Proposal"].pk}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 200 and r.json() == {
        "ok": True,
        "deal": deal.pk,
        "stage": stages["Proposal"].pk,
    }
    foreign = make_pipeline("Renewals").stages.get(name="Lead")
    r = client.post(
        f"/deals/{deal.pk}/move/", {"stage": foreign.pk}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 422 and "Renewals" in r.json()["errors"]["stage"][0]
    r = client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stages["Lost"].pk, "reason": "", "next": "/deals/board/"},
        follow=True,
    )
    assert "Give the reason the deal was lost." in r.content.decode()
    r = client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stages["Won"].pk, "reason": "signed", "next": "https://evil.example/"},
    )
    assert r.status_code == 302 and r["Location"] == "/deals/board/"
    deal.refresh_from_db()
    assert (deal.status, deal.close_reason) == ("won", "signed")


def test_csrf_is_enforced_on_moves(admin_user, pipeline) -> None:
    account = services.account_create(data={"name": "Acme"})
    deal = services.deal_create(
        data={"title": "Pilot", "account": account, "stage": pipeline.stages.first().pk},
        actor=admin_user,
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    r = client.post(f"/deals/{deal.pk}/move/", {"stage": pipeline.stages.all()[1].pk})
    assert r.status_code == 403


def test_sales_board_and_deal_page_show_own_deals(sales, pipeline) -> None:
    a, b = sales("sato"), sales("suzuki")
    account = services.account_create(data={"name": "Acme"})
    lead = pipeline.stages.first()
    services.deal_create(data={"title": "Mine", "account": account, "stage": lead.pk}, actor=a)
    theirs = services.deal_create(
        data={"title": "Theirs", "account": account, "stage": lead.pk}, actor=b
    )
    client = login(a)
    html = client.get("/deals/board/").content.decode()
    assert "Mine" in html and "Theirs" not in html and "Your own deals." in html
    assert client.get(f"/deals/{theirs.pk}/").status_code == 404
    assert client.post(f"/deals/{theirs.pk}/move/", {"stage": lead.pk}).status_code == 404


def test_forms_create_and_refuse(admin_user, pipeline, make_staff, customer) -> None:
    client = login(admin_user)
    r = client.post("/accounts/new/", {"name": "Holdings"})
    holdings = Account.objects.get(name="Holdings")
    assert r.status_code == 302
    client.post("/accounts/new/", {"name": "Japan", "parent": holdings.pk})
    japan = Account.objects.get(name="Japan")
    r = client.post(f"/accounts/{holdings.pk}/edit/", {"name": "Holdings", "parent": japan.pk})
    assert r.status_code == 200 and "cannot have a cycle" in r.content.decode()
    r = client.post(
        "/deals/new/",
        {
            "title": "Big",
            "account": holdings.pk,
            "stage": pipeline.stages.first().pk,
            "amount_yen": "-5",
        },
    )
    assert r.status_code == 200 and "non-negative" in r.content.decode()
    assert Deal.objects.count() == 0
    gone = make_staff("marketer", username="gone")
    gone.is_active = False
    gone.save()
    r = client.post(
        "/accounts/activities/",
        {
            "kind": "task",
            "subject": "Call",
            "customer": customer.pk,
            "due_at": "2030-01-01T10:00",
            "assigned_to": gone.pk,
            "next": "/tasks/",
        },
        follow=True,
    )
    assert "gone is deactivated" in r.content.decode() and Activity.objects.count() == 0
    client.post(
        "/accounts/activities/",
        {
            "kind": "task",
            "subject": "Call back",
            "customer": customer.pk,
            "due_at": "2000-01-01T10:00",
            "next": "/tasks/",
        },
    )
    html = client.get("/tasks/").content.decode()
    assert "Call back" in html and "Overdue" in html
    task = Activity.objects.get()
    client.post(f"/tasks/{task.pk}/done/", {"next": "/tasks/"})
    task.refresh_from_db()
    assert task.done_at is not None


def test_my_customers_bounded_queries_and_signals(admin_user) -> None:
    client = login(admin_user)

    def add(n: int, start: int) -> None:
        people = Customer.objects.bulk_create(
            Customer(family_name=f"C{start + i}") for i in range(n)
        )
        for person in people:
            score(person, clv=1000, p_alive=0.3, at_risk=True)
        CustomerCare.objects.bulk_create(
            CustomerCare(
                customer=p,
                level="high",
                reason="manual",
                owner=admin_user,
                next_follow_up_at=now() - timedelta(days=1),
                p_alive_previous=0.8,
                p_alive_current=0.3,
            )
            for p in people
        )

    add(5, 0)
    client.get("/my-customers/")
    with CaptureQueriesContext(connection) as small:
        client.get("/my-customers/")
    add(120, 100)
    with CaptureQueriesContext(connection) as big:
        r = client.get("/my-customers/")
    assert len(big) == len(small) <= 25  # 5 or 125 customers: same statements
    html = r.content.decode()
    assert "P(alive) falling" in html and "Overdue" in html and "Page 1 of 3" in html


def test_service_level_form_applies_rule(admin_user, customer) -> None:
    score(customer, clv=5000)
    client = login(admin_user)
    r = client.post(
        "/service-levels/",
        {
            "top_clv_percent": "50",
            "cadence_days": "14",
            "include_named_accounts": "on",
            "default_owner": admin_user.pk,
        },
        follow=True,
    )
    assert "1 customers are high-touch" in r.content.decode()
    care = CustomerCare.objects.get()
    assert (care.level, care.owner_id, care.cadence_days) == ("high", admin_user.pk, 14)


def test_customer_360_panels(admin_user, customer, make_staff) -> None:
    from kizuna.subscriptions import services as subscription_services

    account = services.account_create(data={"name": "Acme"})
    services.contact_add(account=account, customer=customer, role="champion", title="CTO")
    plan = subscription_services.plan_create(
        data={"code": "c", "name": "Coffee box", "price_yen": 3000}
    )
    subscription_services.subscription_start(customer=customer, plan=plan)
    client = login(admin_user)
    client.post(
        "/accounts/activities/",
        {
            "kind": "call",
            "subject": "Checked in",
            "customer": customer.pk,
            "next": f"/customers/{customer.pk}/",
        },
    )
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="accounts"' in html and "Acme" in html and "Checked in" in html
    assert 'id="subscriptions"' in html and "Coffee box" in html
    nobody = make_staff("support", username="viewer")
    nobody.groups.clear()
    from django.contrib.auth.models import Permission

    nobody.user_permissions.add(Permission.objects.get(codename="view_customer"))
    html = login(nobody).get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="accounts"' not in html and 'id="subscriptions"' not in html


def test_pipelines_page_lists_and_creates(admin_user, pipeline, make_staff) -> None:
    from kizuna.accounts.models import Pipeline

    client = login(admin_user)
    html = client.get("/deals/pipelines/").content.decode()
    assert "New business" in html and "Negotiation" in html and "80%" in html
    r = client.post("/deals/pipelines/", {"name": "Renewals", "stages": "Due, 60\nSigned"})
    assert r.status_code == 200 and "Line 2: write a name" in r.content.decode()
    r = client.post("/deals/pipelines/", {"name": "Renewals", "stages": "Due, 60\nSigned, 100"})
    assert "A pipeline needs one won and one lost stage." in r.content.decode()
    r = client.post(
        "/deals/pipelines/", {"name": "Renewals", "stages": "Due, 160\nW, 100, won\nL, 0, lost"}
    )
    assert "A probability is a whole percentage from 0 to 100." in r.content.decode()
    assert not Pipeline.objects.filter(name="Renewals").exists()
    r = client.post(
        "/deals/pipelines/",
        {"name": "Renewals", "stages": "Due, 60\n\nRenewed, 100, won\nChurned, 0, Lost"},
    )
    renewals = Pipeline.objects.get(name="Renewals")
    assert r.status_code == 302 and r["Location"] == f"/deals/board/?pipeline={renewals.pk}"
    assert [(s.name, s.probability, s.outcome) for s in renewals.stages.all()] == [
        ("Due", 60, "open"),
        ("Renewed", 100, "won"),
        ("Churned", 0, "lost"),
    ]
    analyst = login(make_staff("analyst"))  # reads pipelines, creates none
    html = analyst.get("/deals/pipelines/").content.decode()
    assert "Renewals" in html and 'name="stages"' not in html
    r = analyst.post("/deals/pipelines/", {"name": "X", "stages": "A, 1\nW, 100, won\nL, 0, lost"})
    assert r.status_code == 403 and not Pipeline.objects.filter(name="X").exists()


def test_pipeline_edit_keeps_deals_and_refuses_orphaning_them(
    admin_user, pipeline, make_staff
) -> None:
    from kizuna.accounts.models import Stage

    stage = {s.name: s for s in pipeline.stages.all()}
    account = services.account_create(data={"name": "Acme"})
    services.deal_create(
        data={"title": "Pilot", "account": account, "stage": stage["Proposal"], "amount_yen": 1000}
    )
    client = login(admin_user)
    url = f"/deals/pipelines/{pipeline.pk}/"
    form = client.get(url).content.decode()
    assert "Proposal, 50" in form and "Won, 100, won" in form
    # Proposal holds a deal: leaving it out (a rename) or making it "won" is refused
    r = client.post(
        url, {"name": "New", "stages": "Lead, 10\nOffer, 50\nWon, 100, won\nLost, 0, lost"}
    )
    assert r.status_code == 200 and "Proposal still holds 1 deals" in r.content.decode()
    r = client.post(
        url, {"name": "New", "stages": "Proposal, 50, won\nWon, 100, won\nLost, 0, lost"}
    )
    assert "its outcome cannot change" in r.content.decode()
    assert Stage.objects.filter(pipeline=pipeline).count() == 5  # nothing written
    r = client.post(
        url,
        {
            "name": "New business 2027",
            "stages": "Proposal, 40\nQualified, 20\nWon, 100, won\nLost, 0, lost",
        },
    )
    assert r.status_code == 302
    pipeline.refresh_from_db()
    assert pipeline.name == "New business 2027"
    assert [(s.name, s.probability) for s in pipeline.stages.all()] == [
        ("Proposal", 40),
        ("Qualified", 20),
        ("Won", 100),
        ("Lost", 0),
    ]
    assert pipeline.stages.get(name="Proposal").pk == stage["Proposal"].pk  # the deal stays
    sales = login(make_staff("sales"))
    assert sales.get(url).status_code == 403
    assert sales.post(url, {"name": "X", "stages": "W, 100, won\nL, 0, lost"}).status_code == 403
