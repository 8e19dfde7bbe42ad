"""Stored results of customer insight: one score row per customer (replaced by each
successful scoring run), the runs themselves, and KPI goals."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.analytics.scoring import rfm_names as rfm
from kizuna.core.money import CURRENCY_CHOICES, DEFAULT_CURRENCY
from kizuna.core.runs import BackgroundRun
from kizuna.core.runs import RunTrigger as RunTrigger  # re-exported: the app's run triggers
from kizuna.customers.models import Customer


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    KEPT_PREVIOUS = "kept_previous", _("Kept previous scores")
    FAILED = "failed", _("Failed")


class RepeatModel(models.TextChoices):
    BGNBD = "bgnbd", "BG/NBD"
    PARETONBD = "paretonbd", "Pareto/NBD"


class Segment(models.TextChoices):
    CHAMPIONS = rfm.CHAMPIONS, _("Champions")
    LOYAL = rfm.LOYAL, _("Loyal")
    POTENTIAL = rfm.POTENTIAL, _("Potential loyalists")
    NEW = rfm.NEW, _("New customers")
    PROMISING = rfm.PROMISING, _("Promising")
    NEED_ATTENTION = rfm.NEED_ATTENTION, _("Need attention")
    ABOUT_TO_SLEEP = rfm.ABOUT_TO_SLEEP, _("About to sleep")
    AT_RISK = rfm.AT_RISK, _("At risk")
    CANNOT_LOSE = rfm.CANNOT_LOSE, _("Cannot lose them")
    HIBERNATING = rfm.HIBERNATING, _("Hibernating")
    LOST = rfm.LOST, _("Lost")


class ScoringRun(BackgroundRun):
    """One scoring of every customer: its parameters, outcome, fitted models and timings."""

    status = models.CharField(
        _("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    parameters = models.JSONField(_("parameters"), default=dict)
    model_version = models.CharField(_("model version"), max_length=40, blank=True)
    customers_scored = models.PositiveIntegerField(_("customers scored"), default=0)
    newly_at_risk = models.PositiveIntegerField(_("newly at risk"), default=0)
    fit = models.JSONField(_("fitted models"), default=dict, blank=True)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    diagnostics = models.JSONField(_("diagnostics"), default=dict, blank=True)
    # monthly KPIs and cohort retention as of this run (see selectors.insight)
    insight = models.JSONField(_("KPIs and cohorts"), default=dict, blank=True)

    class Meta:
        verbose_name = _("scoring run")
        verbose_name_plural = _("scoring runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one run at a time: a second one is refused, not run twice.
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="analytics_one_running_scoring_run",
            )
        ]


class CustomerScore(models.Model):
    """A customer's current scores, from the last successful run (see docs/analytics.md).

    Only customers with at least one purchase have a row. Durations are whole days in the
    business's time zone; money is integer minor units of `currency`."""

    # Derived data rewritten a million rows at a time: no database-level foreign keys (their
    # per-row triggers would double the time of storing scores). Integrity is kept by the
    # scoring run (it joins the customers it stores) and by Django's cascade on delete.
    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="score",
        db_constraint=False,
        verbose_name=_("customer"),
    )
    run = models.ForeignKey(
        ScoringRun,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
        verbose_name=_("scoring run"),
    )
    model_version = models.CharField(_("model version"), max_length=40)
    scored_at = models.DateTimeField(_("scored at"))
    currency = models.CharField(
        _("currency"), max_length=3, choices=CURRENCY_CHOICES, default=DEFAULT_CURRENCY
    )
    # the purchase summary
    orders = models.PositiveIntegerField(_("orders"))
    frequency = models.PositiveIntegerField(_("repeat purchases"))
    recency_days = models.PositiveIntegerField(_("days since last purchase"))
    age_days = models.PositiveIntegerField(_("days since first purchase"))
    first_purchase = models.DateField(_("first purchase"))
    last_purchase = models.DateField(_("last purchase"))
    monetary_minor = models.BigIntegerField(_("net spend"))
    # RFM
    r_score = models.PositiveSmallIntegerField(_("R"))
    f_score = models.PositiveSmallIntegerField(_("F"))
    m_score = models.PositiveSmallIntegerField(_("M"))
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices)
    # models
    p_alive = models.FloatField(_("probability alive"))
    expected_purchases_30d = models.FloatField(_("expected purchases, next 30 days"))
    expected_purchases = models.FloatField(_("expected purchases over the horizon"))
    expected_aov_minor = models.BigIntegerField(_("expected average order value"))
    clv_minor = models.BigIntegerField(_("lifetime value over the horizon"))
    expected_gap_days = models.FloatField(_("expected days between purchases"))
    days_overdue = models.PositiveIntegerField(_("days past the expected purchase"))
    at_risk = models.BooleanField(_("at risk"))

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        # No secondary indexes: each run rewrites every row, and maintaining an index during
        # the insert costs more than it saves (a segment is ~10% of customers, read by a scan;
        # "top 50 by CLV" is a top-N sort of one column). See docs/benchmarks.md.
        constraints = [
            models.CheckConstraint(
                condition=Q(p_alive__gte=0) & Q(p_alive__lte=1), name="score_p_alive_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.segment}"

    @property
    def churn_risk(self) -> float:
        return 1.0 - self.p_alive


class Kpi(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    ACTIVE_CUSTOMERS = "active_customers", _("Active customers")
    REPEAT_RATE = "repeat_rate", _("Repeat-purchase rate")
    CHURN_RATE = "churn_rate", _("Churn rate")
    AOV = "aov", _("Average order value")
    PURCHASE_FREQUENCY = "purchase_frequency", _("Purchase frequency")
    REPEAT_REVENUE = "repeat_revenue", _("Revenue from repeat customers")
    AVERAGE_CLV = "average_clv", _("Average CLV")
    TOTAL_CLV = "total_clv", _("Total CLV")
    POINTS_OUTSTANDING = "points_outstanding", _("Points outstanding")
    POINTS_LIABILITY = "points_liability", _("Points liability")


class KpiGoal(models.Model):
    """A target for one KPI by a month (the "plan" of the PDCA cycle)."""

    kpi = models.CharField(_("KPI"), max_length=24, choices=Kpi.choices)
    target = models.FloatField(_("target"))
    due = models.DateField(_("by (month)"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("KPI goal")
        verbose_name_plural = _("KPI goals")
        ordering = ["due", "kpi", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kpi", "due"], name="analytics_one_goal_per_kpi_month")
        ]

    def __str__(self) -> str:
        return f"{self.kpi} {self.target} by {self.due:%Y-%m}"
