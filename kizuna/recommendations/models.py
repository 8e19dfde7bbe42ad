"""Stored state of recommendations: training runs, the model versions they produce (one
per kind, the active one per kind served), and the recommendations-side settings of
products and categories (consumable, excluded).

A version's trained arrays are a NumPy `.npz` file under the data directory
(`<KIZUNA_DATA_DIR>/recommendations/<kind>-<id>.npz`), not a database column: the factors
of a million customers are hundreds of megabytes, which every web process reads once."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.catalog.models import Category, Product
from kizuna.core.runs import BackgroundRun
from kizuna.core.runs import RunTrigger as RunTrigger  # re-exported: the app's run triggers
from kizuna.recommendations.engine import kinds


class Kind(models.TextChoices):
    ALS = kinds.ALS, _("ALS (matrix factorisation)")
    BPR = kinds.BPR, _("BPR (matrix factorisation)")
    COOCCURRENCE = kinds.COOCCURRENCE, _("Frequently bought together")
    POPULARITY = kinds.POPULARITY, _("Popularity")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class TrainingRun(BackgroundRun):
    """One training of every kind: parameters, progress, evaluation and timings."""

    status = models.CharField(
        _("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    params = models.JSONField(_("parameters"), default=dict)
    stage = models.CharField(_("stage"), max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    # the holdout evaluation of each kind: {kind: {precision, recall, map, coverage, ...}}
    evaluation = models.JSONField(_("evaluation"), default=dict, blank=True)
    data = models.JSONField(_("training data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="recommendations_one_running_training",
            )
        ]


class ModelVersion(models.Model):
    """One trained model of one kind; the active version of each kind is served."""

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="versions", verbose_name=_("run")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    trained_at = models.DateTimeField(_("trained at"))
    params = models.JSONField(_("parameters"), default=dict)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    artifact = models.CharField(_("artifact file"), max_length=200)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    products = models.PositiveIntegerField(_("products"), default=0)
    active = models.BooleanField(_("active"), default=False)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(active=True),
                name="recommendations_one_active_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.pk}"

    @property
    def path(self) -> Path:
        return artifact_dir() / self.artifact


def artifact_dir() -> Path:
    return Path(settings.DATA_DIR) / "recommendations"


class ItemSetting(models.Model):
    """How recommendations treat one product or every product of a category:
    consumable (recommended again after a purchase) and excluded (never recommended).
    A product's own setting wins over its category's."""

    product = models.OneToOneField(
        Product,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("product"),
    )
    category = models.OneToOneField(
        Category,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    consumable = models.BooleanField(_("consumable"), default=False)
    excluded = models.BooleanField(_("excluded"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("recommendation setting")
        verbose_name_plural = _("recommendation settings")
        constraints = [
            models.CheckConstraint(
                condition=(Q(product__isnull=False) & Q(category__isnull=True))
                | (Q(product__isnull=True) & Q(category__isnull=False)),
                name="recommendations_setting_one_target",
            )
        ]

    def __str__(self) -> str:
        return str(self.product or self.category)
