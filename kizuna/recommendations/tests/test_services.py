"""Training runs against the database and serving from the stored versions: exclusions,
consumables, fallbacks, atomic version switches, one run at a time, the task, the command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from kizuna.catalog.services import product_update
from kizuna.customers.services import customer_create
from kizuna.recommendations import selectors, services
from kizuna.recommendations.engine import models as engine
from kizuna.recommendations.models import (
    ItemSetting,
    ModelVersion,
    RunStatus,
    RunTrigger,
    TrainingRun,
)
from kizuna.recommendations.tests.conftest import AS_OF

pytestmark = pytest.mark.django_db


def train(**kwargs):
    return services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF, **kwargs)


def test_a_run_trains_evaluates_and_activates_every_kind(shop):
    world = shop()
    run = train()
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.progress == 100 and run.stage == "done"
    assert run.data["customers"] == len(world.customers)
    assert run.data["products"] == 12 and run.data["purchases"] == 80 * 3 + 20
    # the settings of the test (conftest.SMALL) are used as set, not chosen by size
    assert (run.data["als_factors"], run.data["als_iterations"]) == (2, 10)
    assert run.data["bpr_iterations"] == 40
    versions = selectors.active_versions()
    assert set(versions) == set(engine.KINDS)
    for kind, version in versions.items():
        assert version.run_id == run.pk and version.path.exists()
        assert version.metrics == run.evaluation["kinds"][kind]
    evaluation = run.evaluation
    assert evaluation["k"] == 10 and evaluation["test_customers"] > 10
    als = evaluation["kinds"]["als"]
    assert als["map"] > evaluation["kinds"]["popularity"]["map"]
    assert 0 < als["coverage"] <= 1 and als["map_vs_popularity"] > 1
    assert {"read", "evaluate", "matrix", "train", "store", "train.als"} <= set(
        run.timings["seconds"]
    )


def test_a_second_run_switches_the_active_versions_and_serving_reloads(shop):
    world = shop()
    first = train()
    customer = customer_get(world.customers[0])
    before = selectors.recommendations_for(customer=customer, n=3)
    assert before.model is not None and before.model.version == first.versions.get(kind="als").pk
    second = train()
    assert ModelVersion.objects.filter(active=True).count() == 4
    assert ModelVersion.objects.filter(kind="als", active=True).get().run_id == second.pk
    after = selectors.recommendations_for(customer=customer, n=3)
    assert after.model is not None and after.model.version == second.versions.get(kind="als").pk


def customer_get(pk):
    from kizuna.customers.models import Customer

    return Customer.objects.get(pk=pk)


def test_recommendations_fit_the_taste_and_exclude_what_was_bought(shop):
    world = shop()
    train()
    for index in (0, 1, 2, 3):
        customer = customer_get(world.customers[index])
        result = selectors.recommendations_for(customer=customer, n=2)
        assert result.fallback is None and result.reason is None
        bought = set(customer.orders.values_list("lines__sku", flat=True))
        skus = [item.sku for item in result.items]
        assert len(skus) == 2 and not set(skus) & bought
        assert skus[0][0] == ("C" if index % 2 == 0 else "T")


def test_consumables_come_back_and_excluded_or_inactive_products_never_do(shop):
    world = shop()
    train()
    customer = customer_get(world.customers[0])
    bought = set(customer.orders.values_list("lines__sku", flat=True))
    services.item_setting_save(category=world.coffee, consumable=True)
    selectors.cache_clear()
    skus = [i.sku for i in selectors.recommendations_for(customer=customer, n=5).items]
    assert set(skus) & bought  # bought coffee is recommended again
    services.item_setting_save(category=world.coffee, excluded=True)
    product_update(product=world.products["T1"], data={"active": False})
    selectors.cache_clear()
    skus = [i.sku for i in selectors.recommendations_for(customer=customer, n=12).items]
    assert skus and not any(s.startswith("C") for s in skus) and "T1" not in skus
    # a product's own setting wins over its category's
    services.item_setting_save(product=world.products["C5"], excluded=False)
    selectors.cache_clear()
    skus = [i.sku for i in selectors.recommendations_for(customer=customer, n=12).items]
    assert "C5" in skus or "C5" in bought


def test_diversity_caps_each_category_at_half_the_list(shop):
    world = shop()
    train()
    services.item_setting_save(category=world.coffee, consumable=True)
    selectors.cache_clear()
    result = selectors.recommendations_for(customer=customer_get(world.customers[0]), n=4)
    categories = [i.category for i in result.items]
    assert len(categories) == 4 and max(categories.count(c) for c in set(categories)) == 2


def test_a_customer_without_history_gets_their_groups_popular_products(shop):
    shop()
    train()
    tokyo = customer_create(data={"family_name": "新規", "prefecture": "JP-13"})
    result = selectors.recommendations_for(customer=tokyo, n=3)
    assert result.fallback == "group_popularity" and result.reason == "no_history"
    assert result.model is not None and result.model.kind == "popularity"
    assert [i.sku[0] for i in result.items].count("C") >= 1
    nowhere = customer_create(data={"family_name": "新規"})
    result = selectors.recommendations_for(customer=nowhere, n=3)
    assert result.fallback == "popularity" and len(result.items) == 3


def test_nothing_trained_and_an_empty_catalogue_are_defined(db):
    customer = customer_create(data={"family_name": "誰か"})
    result = selectors.recommendations_for(customer=customer, n=5)
    assert result.items == [] and result.model is None and result.reason == "not_trained"
    run = train()  # no products, no orders
    assert run.status == RunStatus.SUCCEEDED, run.message
    result = selectors.recommendations_for(customer=customer, n=5)
    assert result.items == [] and result.model is not None and result.fallback == "popularity"


def test_related_products_are_bought_together(shop):
    world = shop()
    train()
    result = selectors.related_to(product=world.products["C1"], n=3)
    assert result.model is not None and result.model.kind == "cooccurrence"
    assert result.fallback is None and result.items
    assert all(i.sku != "C1" for i in result.items)
    assert result.items[0].sku[0] in "CG"
    alone = world.products["G2"]  # never sold: the popular products instead
    result = selectors.related_to(product=alone, n=3)
    assert result.fallback == "popularity" and result.reason == "no_neighbours"
    assert len(result.items) == 3 and all(i.sku != "G2" for i in result.items)


def test_a_failed_run_keeps_the_active_versions(shop, monkeypatch):
    shop()
    good = train()
    monkeypatch.setattr(services, "train_all", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train(evaluate=False)
    failed = TrainingRun.objects.order_by("-id").first()
    assert (
        failed is not None
        and failed.status == RunStatus.FAILED
        and "ZeroDivisionError" in failed.message
    )
    assert set(ModelVersion.objects.filter(active=True).values_list("run_id", flat=True)) == {
        good.pk
    }


def test_one_run_at_a_time(shop):
    shop()
    busy = TrainingRun.objects.create(trigger=RunTrigger.CLI, status=RunStatus.RUNNING)
    busy.started_at = AS_OF
    TrainingRun.objects.filter(pk=busy.pk).update(started_at=AS_OF + timedelta(days=9999))
    run = train()
    assert run.status == RunStatus.FAILED and "in progress" in run.message
    assert not ModelVersion.objects.exists()


def test_bad_parameters_and_settings_are_refused(db, shop):
    world = shop()
    with pytest.raises(ValidationError) as err:
        services.training_run_request(
            trigger=RunTrigger.API, params=services.default_params().__class__(factors=-1)
        )
    assert "factors" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        services.training_run_request(trigger="nope")
    assert "trigger" in err.value.message_dict
    assert not TrainingRun.objects.exists()
    with pytest.raises(ValidationError) as err:
        services.item_setting_save(product=world.products["C1"], category=world.coffee)
    assert "product" in err.value.message_dict
    with pytest.raises(ValidationError):
        services.item_setting_save()
    assert not ItemSetting.objects.exists()


def test_a_requested_run_is_executed_by_the_worker(shop, django_capture_on_commit_callbacks):
    shop()
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run_request(trigger=RunTrigger.API)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert ModelVersion.objects.filter(run=run, active=True).count() == 4


def test_the_command_trains_and_reports(shop):
    shop()
    out = StringIO()
    call_command("recommendations", "train", stdout=out)
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.trigger == RunTrigger.CLI
    text = out.getvalue()
    assert f"#{run.pk}" in text and "als" in text and "MAP@10" in text


def test_a_data_subject_export_lists_the_recommended_products(shop):
    from kizuna.core.personal_data import handlers

    world = shop()
    handler = {h.name: h for h in handlers()}["recommendations.products"]
    assert list(handler.export(world.customers[0])) == []  # nothing trained yet
    train(evaluate=False)
    rows = list(handler.export(world.customers[0]))
    assert 0 < len(rows) <= 10 and rows[0]["rank"] == 1 and rows[0]["model"] == "als"
    assert handler.erase(world.customers[0], pseudonym="erased-x") == 0


def test_the_active_version_is_looked_up_at_most_once_per_check_interval(
    shop, settings, django_assert_num_queries
):
    world = shop()
    first = train(evaluate=False)
    customer = customer_get(world.customers[0])
    settings.KIZUNA_RECOMMENDATIONS_VERSION_CHECK_SECONDS = 3600
    selectors.recommendations_for(customer=customer, n=3)  # loads the model
    # one query: the customer's basis for personalisation (the consent ledger), not the version
    with django_assert_num_queries(1) as queries:
        result = selectors.recommendations_for(customer=customer, n=3)
    assert "customers_consententry" in queries.captured_queries[0]["sql"]
    train(evaluate=False)
    assert selectors.recommendations_for(customer=customer, n=3).model == result.model
    assert result.model is not None and result.model.version == first.versions.get(kind="als").pk
    settings.KIZUNA_RECOMMENDATIONS_VERSION_CHECK_SECONDS = 0
    newer = selectors.recommendations_for(customer=customer, n=3).model
    assert newer is not None and newer.version != result.model.version


def test_the_kinds_of_one_run_share_their_rows_in_memory(shop):
    world = shop()
    train(evaluate=False)
    customer = customer_get(world.customers[0])
    selectors.recommendations_for(customer=customer, n=3)  # loads ALS
    selectors.recommendations_for(customer=customer, n=3, kind="bpr")
    selectors.related_to(product=world.products["C1"], n=3)  # loads co-purchase
    held = selectors._loaded
    assert {"als", "bpr", "cooccurrence"} <= set(held)
    assert held["bpr"].model.bought is held["als"].model.bought
    assert held["cooccurrence"].model.customer_ids is held["als"].model.customer_ids
    # rows that differ (another run over other data) are never shared
    other = engine.Trained(
        "als",
        held["als"].model.customer_ids[:-1].copy(),
        held["als"].model.product_ids,
        held["als"].model.bought[:-1],
    )
    assert not other.share_rows(held["als"].model)
    assert other.bought is not held["als"].model.bought
    # and a shared model still excludes what the customer bought
    row = held["bpr"].model.row_of(customer.pk)
    assert row is not None
    bought = set(held["bpr"].model.bought_columns(row).tolist())
    items = selectors.recommendations_for(customer=customer, n=10, kind="bpr").items
    assert bought and not bought & {held["bpr"].model.column_of(i.product_id) for i in items}


def test_settings_left_at_zero_are_chosen_by_the_size_of_the_data(shop, settings):
    shop()
    settings.KIZUNA_RECOMMENDATIONS_PARAMS = {
        **settings.KIZUNA_RECOMMENDATIONS_PARAMS,
        "factors": 0,
        "iterations": 0,
        "bpr_iterations": 0,
    }
    run = train(evaluate=False)
    assert run.status == RunStatus.SUCCEEDED, run.message
    # 12 products, a few hundred pairs: the small-data end of each rule
    assert (run.data["als_factors"], run.data["als_iterations"]) == (4, 12)
    assert run.data["bpr_iterations"] == 40
    assert run.params["iterations"] == 0  # what was asked; run.data says what was used
