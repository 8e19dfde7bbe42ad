"""Recommendations for the demo business: drinks and food are consumables (bought again and
again, so they stay recommendable after a purchase), then one training run, evaluated on the
last weeks of the history (the report page shows each model against popularity)."""

from __future__ import annotations

from kizuna.catalog.models import Category
from kizuna.recommendations import services
from kizuna.recommendations.models import RunTrigger, TrainingRun

CONSUMABLE_CATEGORIES = ("drinks", "food")


def load() -> TrainingRun:
    for category in Category.objects.filter(slug__in=CONSUMABLE_CATEGORIES):
        services.item_setting_save(category=category, consumable=True)
    return services.training_run_now(trigger=RunTrigger.DEMO)
