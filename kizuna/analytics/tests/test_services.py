"""Scoring runs against the database: what is stored, the edge cases of purchases, runs
that keep the previous scores, the `customer.at_risk` event, one run at a time, the task
and the command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from kizuna.analytics import services, sql
from kizuna.analytics.models import CustomerScore, KpiGoal, RunStatus, RunTrigger, ScoringRun
from kizuna.analytics.scoring import population
from kizuna.analytics.scoring.fitting import FitResult
from kizuna.analytics.tests.conftest import AS_OF
from kizuna.catalog.services import product_create
from kizuna.commerce.models import Order
from kizuna.commerce.services import order_place, refund_create
from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer, Event
from kizuna.customers.services import customer_create

pytestmark = pytest.mark.django_db


def run(parameters, **kwargs):
    return services.scoring_run_now(
        trigger=RunTrigger.CLI, parameters=parameters, as_of=AS_OF, **kwargs
    )


def test_a_run_scores_every_buyer_and_stores_the_model_version(history, small_parameters):
    shop = history(150)
    customer_create(data={"family_name": "未購入"})  # no purchase: no score
    result = run(small_parameters)
    assert result.status == RunStatus.SUCCEEDED, result.message
    assert result.customers_scored == 150
    assert CustomerScore.objects.count() == 150
    assert set(CustomerScore.objects.values_list("customer_id", flat=True)) == set(
        shop.customer_ids
    )
    score = CustomerScore.objects.order_by("-orders").first()
    assert score is not None
    assert score.model_version == "rfm5+bgnbd+gg/1" == result.model_version
    assert score.run_id == result.pk and score.scored_at == AS_OF
    assert 0 <= score.p_alive <= 1 and score.clv_minor >= 0
    assert CustomerScore.objects.filter(clv_minor__gt=0).count() > 100
    assert score.orders == Order.objects.filter(customer_id=score.customer_id).count()
    assert result.fit["repeat"]["converged"] and result.fit["spend"]["converged"]
    assert set(result.timings["seconds"]) >= {"read", "score", "store"}
    assert result.started_at is not None and result.finished_at >= result.started_at
    tracking = result.diagnostics["tracking"]
    assert tracking["actual"][-1] == sum(s.frequency for s in CustomerScore.objects.all())


def test_purchase_edge_cases_are_defined(history, small_parameters):
    history(120)
    product_create(data={"sku": "FREE", "name": "試供品", "price_minor": 0})
    product_create(data={"sku": "BEAN", "name": "豆", "price_minor": 2000})
    one = customer_create(data={"family_name": "一回"})
    order_place(
        customer=one, number="E-1", lines=[{"sku": "BEAN"}], placed_at=AS_OF - timedelta(days=40)
    )
    zero = customer_create(data={"family_name": "無料"})
    order_place(
        customer=zero, number="E-2", lines=[{"sku": "BEAN"}], placed_at=AS_OF - timedelta(days=90)
    )
    order_place(
        customer=zero, number="E-3", lines=[{"sku": "FREE"}], placed_at=AS_OF - timedelta(days=10)
    )
    refunded = customer_create(data={"family_name": "返金"})
    kept = order_place(
        customer=refunded,
        number="E-4",
        lines=[{"sku": "BEAN", "quantity": 2}],
        placed_at=AS_OF - timedelta(days=60),
    )
    gone = order_place(
        customer=refunded,
        number="E-5",
        lines=[{"sku": "BEAN"}],
        placed_at=AS_OF - timedelta(days=5),
    )
    refund_create(order=kept, amount_minor=1500, idempotency_key="r1")
    refund_create(order=gone, amount_minor=2000, idempotency_key="r2")
    only_refunded = customer_create(data={"family_name": "全額返金"})
    lost = order_place(
        customer=only_refunded,
        number="E-6",
        lines=[{"sku": "BEAN"}],
        placed_at=AS_OF - timedelta(days=5),
    )
    refund_create(order=lost, amount_minor=2000, idempotency_key="r3")
    early = customer_create(data={"family_name": "先行"})
    order_place(
        customer=early, number="E-7", lines=[{"sku": "BEAN"}], placed_at=AS_OF - timedelta(days=300)
    )
    Customer.objects.filter(pk=early.pk).update(first_seen_at=AS_OF - timedelta(days=3))
    future = customer_create(data={"family_name": "未来"})
    order_place(
        customer=future,
        number="E-8",
        lines=[{"sku": "BEAN"}],
        placed_at=AS_OF + timedelta(minutes=5),
    )
    order_place(
        customer=early, number="E-9", lines=[{"sku": "BEAN"}], placed_at=AS_OF + timedelta(hours=2)
    )

    result = run(small_parameters)
    assert result.status == RunStatus.SUCCEEDED, result.message
    scores = {s.customer_id: s for s in CustomerScore.objects.all()}
    # one purchase: no repeat, P(alive) = 1 under BG/NBD, AOV = the population mean
    assert scores[one.pk].frequency == 0 and scores[one.pk].p_alive == 1.0
    assert scores[one.pk].recency_days == 40 and scores[one.pk].age_days == 40
    # a zero-value order is a purchase (recency, frequency) worth nothing
    assert scores[zero.pk].frequency == 1 and scores[zero.pk].recency_days == 10
    assert scores[zero.pk].monetary_minor == 2000
    # refunds: net value; a fully refunded order is no purchase at all
    assert scores[refunded.pk].orders == 1 and scores[refunded.pk].monetary_minor == 2500
    assert scores[refunded.pk].recency_days == 60
    assert only_refunded.pk not in scores
    # an order before the customer's first-seen date counts from when it was placed
    assert scores[early.pk].age_days == 300
    # an order after the as-of instant is not seen (AS_OF is 23:00 JST: minutes later it is
    # still the same UTC day, hours later the next local day)
    assert future.pk not in scores
    assert scores[early.pk].orders == 1 and scores[early.pk].recency_days == 300


def test_too_small_a_population_keeps_the_previous_scores_and_says_so(history, small_parameters):
    history(60)
    first = run(small_parameters)
    assert first.status == RunStatus.SUCCEEDED
    before = list(CustomerScore.objects.values_list("customer_id", "clv_minor", "run_id"))
    second = run(population.Parameters(min_customers=10_000))
    assert second.status == RunStatus.KEPT_PREVIOUS
    assert second.summary["reason"] == "too_small"
    assert "10000" in second.message and "Previous scores kept" in second.message
    assert list(CustomerScore.objects.values_list("customer_id", "clv_minor", "run_id")) == before


def test_a_fit_that_does_not_converge_keeps_the_previous_scores(
    history, small_parameters, monkeypatch
):
    history(60)
    assert run(small_parameters).status == RunStatus.SUCCEEDED
    before = list(CustomerScore.objects.values_list("customer_id", "p_alive", "run_id"))
    real_fit = population.bgnbd.fit

    def stuck(*args, **kwargs) -> FitResult:
        result = real_fit(*args, **kwargs)
        return FitResult(**{**result.__dict__, "converged": False, "message": "ABNORMAL"})

    monkeypatch.setattr(population.bgnbd, "fit", stuck)
    kept = run(small_parameters)
    assert kept.status == RunStatus.KEPT_PREVIOUS
    assert kept.summary["reason"] == "not_converged"
    assert "did not converge" in kept.message and "ABNORMAL" in kept.message
    assert kept.fit["repeat"]["converged"] is False
    assert list(CustomerScore.objects.values_list("customer_id", "p_alive", "run_id")) == before


def test_nothing_to_score_on_an_empty_database_is_a_kept_previous_run(small_parameters):
    result = run(small_parameters)
    assert result.status == RunStatus.KEPT_PREVIOUS
    assert CustomerScore.objects.count() == 0


def test_customers_crossing_the_threshold_get_one_at_risk_event(
    history, small_parameters, django_capture_on_commit_callbacks
):
    history(150)
    first = run(small_parameters)
    assert first.newly_at_risk == 0  # no previous scores: the first run sets the baseline
    at_risk = set(CustomerScore.objects.filter(at_risk=True).values_list("customer_id", flat=True))
    assert at_risk
    # pretend they were all fine last time
    CustomerScore.objects.update(p_alive=1.0, at_risk=False)
    seen: list[bus.DomainEvent] = []
    bus.subscribe(services.AT_RISK_EVENT, seen.append)
    with django_capture_on_commit_callbacks(execute=True):
        second = run(small_parameters)
    assert second.newly_at_risk == len(at_risk)
    assert {e.customer_id for e in seen} == at_risk
    stored = Event.objects.filter(type="customer.at_risk")
    assert stored.count() == len(at_risk)
    event = stored.first()
    assert event is not None
    assert event.properties["run_id"] == second.pk
    assert event.properties["churn_risk"] >= 0.5 and event.properties["threshold"] == 0.5
    assert all(e.event_id is not None for e in seen)
    # a third run: still at risk, but no new crossing, so no new events
    third = run(small_parameters)
    assert third.newly_at_risk == 0
    assert Event.objects.filter(type="customer.at_risk").count() == len(at_risk)


def test_only_one_run_at_a_time(history, small_parameters):
    history(80)
    blocking = ScoringRun.objects.create(trigger=RunTrigger.CLI, status=RunStatus.RUNNING)
    ScoringRun.objects.filter(pk=blocking.pk).update(started_at=now() - timedelta(hours=1))
    refused = run(small_parameters)
    assert refused.status == RunStatus.FAILED
    assert "Another scoring run" in refused.message
    assert CustomerScore.objects.count() == 0
    # a run stuck for more than 6 hours no longer blocks
    ScoringRun.objects.filter(pk=blocking.pk).update(started_at=now() - timedelta(hours=7))
    assert run(small_parameters).status == RunStatus.SUCCEEDED
    blocking.refresh_from_db()
    assert blocking.status == RunStatus.FAILED and "abandoned" in blocking.message


def test_requested_runs_go_through_the_worker_task(history, django_capture_on_commit_callbacks):
    history(80)
    with django_capture_on_commit_callbacks(execute=True):
        queued = services.scoring_run_request(trigger=RunTrigger.CONSOLE)
    queued.refresh_from_db()
    assert queued.status == RunStatus.SUCCEEDED  # Huey runs tasks immediately in tests
    assert CustomerScore.objects.count() == 80


def test_bad_parameters_are_refused_before_anything_is_written():
    with pytest.raises(ValidationError) as caught:
        services.scoring_run_now(
            trigger=RunTrigger.CLI,
            parameters=population.Parameters(horizon_months=0, annual_discount_rate=3),
        )
    assert set(caught.value.message_dict) == {"horizon_months", "annual_discount_rate"}
    with pytest.raises(ValidationError):
        services.scoring_run_now(trigger="nightly-ish")
    assert ScoringRun.objects.count() == 0


def test_nightly_schedule_is_three_in_the_morning_local_time():
    from datetime import datetime

    from kizuna.analytics.tasks import nightly

    assert nightly(datetime(2026, 6, 30, 18, 0))  # 18:00 UTC = 03:00 JST
    assert not nightly(datetime(2026, 6, 30, 3, 0))
    assert not nightly(datetime(2026, 6, 30, 18, 1))


def test_score_command_prints_the_run(history):
    history(80)
    out = StringIO()
    call_command("score", "--json", "--as-of", AS_OF.isoformat(), stdout=out)
    data = json.loads(out.getvalue()[out.getvalue().index("{") :])
    assert data["status"] == "succeeded" and data["customers_scored"] == 80
    assert data["fit"]["repeat"]["model"] == "bgnbd"
    out = StringIO()
    call_command("score", "--model", "paretonbd", stdout=out)
    assert "paretonbd" in out.getvalue() and "Succeeded" in out.getvalue()


def test_kpi_goals_are_validated_and_replaced_per_month():
    from datetime import date

    goal = services.kpi_goal_set(kpi="repeat_rate", target=0.4, due=date(2026, 9, 15))
    assert goal.due == date(2026, 9, 1)
    again = services.kpi_goal_set(kpi="repeat_rate", target=0.45, due=date(2026, 9, 1))
    assert again.pk == goal.pk and KpiGoal.objects.get().target == 0.45
    with pytest.raises(ValidationError) as caught:
        services.kpi_goal_set(kpi="nps", target=-1, due=date(2026, 9, 1))
    assert set(caught.value.message_dict) == {"kpi", "target"}
    with pytest.raises(ValidationError) as caught:
        services.kpi_goal_set(kpi="churn_rate", target=5, due=date(2026, 9, 1))
    assert set(caught.value.message_dict) == {"target"}
    assert KpiGoal.objects.count() == 1


def test_sql_reads_the_same_summary_as_python(history):
    shop = history(50)
    purchases = sql.read_purchases(as_of=AS_OF, currency="JPY", zone=services.business_zone())
    assert sorted(purchases.customer_id.tolist()) == sorted(shop.customer_ids)
    assert int(purchases.orders.sum()) == shop.orders
    totals = {o.customer_id: 0 for o in Order.objects.all()}
    for o in Order.objects.all():
        totals[o.customer_id] += o.total_minor - o.refunded_minor
    assert (
        dict(zip(purchases.customer_id.tolist(), purchases.total.tolist(), strict=True)) == totals
    )
    assert purchases.repeat_by_day is not None
    assert int(purchases.repeat_by_day.sum()) == int((purchases.purchase_days - 1).sum())


def test_a_run_keeps_a_kpi_and_cohort_snapshot_that_the_pages_read(history, small_parameters):
    from kizuna.analytics import selectors

    history(60)
    live = selectors.insight()  # before any run: computed from the orders
    assert live.as_of is None and len(live.months) == 24
    result = run(small_parameters)
    assert len(result.insight["months"]) == 24 and "kpis" in result.timings["seconds"]
    snapshot = selectors.insight()
    assert snapshot.as_of == AS_OF
    assert snapshot.kpis["total_clv"][-1] == pytest.approx(result.summary["total_clv"])
    assert sum(snapshot.cohorts["sizes"]) <= 60
    assert snapshot.kpis["buyers"][-1] == 60
