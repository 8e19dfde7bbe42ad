"""Journeys: a versioned graph (JSON) that follows each enrolled customer over time.

A `Journey` is the thing staff name and switch on; each publish freezes its graph into an
immutable `JourneyVersion`. An `Enrolment` is one customer's pass through one version (its
current node, state and when it is next due). A `StepExecution` is the idempotency record of
one executed node: its `attempt_key` (enrolment + node + visit) is unique, and it is written
in the same transaction as the step's side effects and the enrolment's advance, so a step
re-run after a crash either finds its record (and does nothing) or runs for the first time.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.models import Customer
from kizuna.journeys.choices import EnrolmentState, JourneyStatus


class Journey(models.Model):
    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT
    )
    # The graph being edited (validated on save); publishing freezes it into a version.
    draft = models.JSONField(_("graph"), default=dict)
    template_key = models.CharField(_("started from template"), max_length=50, blank=True)
    live_version = models.ForeignKey(
        "JourneyVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("live version"),
    )
    # Event-stream catch-up: the last event id the trigger poll has looked at.
    event_cursor = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """A published graph: never changed after it is written."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    graph = models.JSONField(_("graph"))
    published_at = models.DateTimeField(_("published at"))

    class Meta:
        verbose_name = _("journey version")
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")
        ]
        ordering = ["journey", "-number"]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class Enrolment(models.Model):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="journey_enrolments"
    )
    # once ever: "<journey>:<customer>"; once per period: + ":p<period>"; re-entry: + ":e<ref>".
    entry_key = models.CharField(_("entry key"), max_length=120, unique=True)
    node = models.CharField(_("current step"), max_length=64, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=EnrolmentState.choices)
    holdout = models.BooleanField(_("holdout"), default=False)
    next_due_at = models.DateTimeField(_("next due"), null=True, blank=True)
    waiting_for = models.CharField(_("waiting for event"), max_length=100, blank=True)
    event_seen = models.BooleanField(default=False)
    steps = models.PositiveIntegerField(_("steps executed"), default=0)
    visits = models.JSONField(default=dict, blank=True)  # node id -> times entered
    context = models.JSONField(_("trigger"), default=dict, blank=True)
    entered_at = models.DateTimeField(_("entered at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        indexes = [
            models.Index(
                fields=["next_due_at"],
                name="enrolment_due",
                condition=Q(state__in=["active", "waiting", "holdout"]),
            ),
            models.Index(fields=["customer", "state"], name="enrolment_customer_state"),
            models.Index(fields=["journey", "state"], name="enrolment_journey_state"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.customer_id} @ {self.node} ({self.state})"


class StepExecution(models.Model):
    """Append-only: one executed node of one enrolment."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="executions")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField(db_index=True)
    node = models.CharField(_("step"), max_length=64)
    kind = models.CharField(_("kind"), max_length=20)
    attempt_key = models.CharField(_("attempt key"), max_length=120, unique=True)
    outcome = models.CharField(_("outcome"), max_length=30)
    detail = models.JSONField(default=dict, blank=True)
    executed_at = models.DateTimeField(_("executed at"))
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = _("step execution")
        indexes = [models.Index(fields=["journey", "node"], name="stepexec_journey_node")]

    def __str__(self) -> str:
        return self.attempt_key
