"""Background runs: a long job over the whole business (a scoring of every customer, a training
of every recommendation model) recorded as a row that is queued, claimed by one worker, and
finished with its timings and a message.

Each app keeps its own run model (its statuses and results differ) on the abstract base here,
and claims a run with `claim_run`. At most one run of a kind is running at a time: the model
declares a unique constraint on `status` where it is "running", and `claim_run` turns a second
claim into a failed run instead of a second job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext_lazy as _

from kizuna.core.timeutil import now

QUEUED, RUNNING, FAILED = "queued", "running", "failed"
# A run still marked running after this long lost its worker.
STALE_AFTER = timedelta(hours=6)


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Nightly schedule")
    CONSOLE = "console", _("Console")
    CLI = "cli", _("Command line")
    API = "api", _("API")
    DEMO = "demo", _("Demo load")


class BackgroundRun(models.Model):
    """What every run records; the subclass adds `status` (with its own choices) and results."""

    trigger = models.CharField(_("trigger"), max_length=10, choices=RunTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    as_of = models.DateTimeField(_("as of"), null=True, blank=True)
    timings = models.JSONField(_("timings"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)

    status: str

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def claim_run(run: BackgroundRun, *, refused_message: str) -> bool:
    """Mark a queued run running; False (and the run marked failed with `refused_message`) if
    another run of its kind is running. Runs abandoned by a stopped worker are failed first."""
    # Any: the subclass declares `status`, which the abstract base's manager does not know.
    runs: Any = type(run)._default_manager
    runs.filter(status=RUNNING, started_at__lt=now() - STALE_AFTER).update(
        status=FAILED,
        finished_at=now(),
        message="abandoned: still marked running after 6 hours (its worker stopped)",
    )
    started = now()
    try:
        with transaction.atomic():
            claimed = runs.filter(pk=run.pk, status=QUEUED).update(
                status=RUNNING, started_at=started
            )
    except IntegrityError:
        runs.filter(pk=run.pk).update(status=FAILED, finished_at=now(), message=refused_message)
        return False
    run.status, run.started_at = RUNNING, started
    return bool(claimed)
