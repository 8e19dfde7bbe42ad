"""Journey enrolments and step records for data-subject export and erasure
(kizuna/core/personal_data.py). An enrolment's `context` holds the entering event's
properties (which may be personal), a step record's `detail` what the step did: erasure
empties both and keeps the rows, so journey counts and conversions do not change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.journeys.models import Enrolment, StepExecution


def _export_enrolments(customer_id: int) -> Iterable[dict[str, Any]]:
    for row in Enrolment.objects.filter(customer_id=customer_id).select_related("journey"):
        yield {**row_dict(row), "journey_name": row.journey.name}


def _erase_enrolments(customer_id: int, *, pseudonym: str) -> int:
    return Enrolment.objects.filter(customer_id=customer_id).update(context={})


def _export_steps(customer_id: int) -> Iterable[dict[str, Any]]:
    return [
        row_dict(r) for r in StepExecution.objects.filter(customer_id=customer_id).order_by("pk")
    ]


def _erase_steps(customer_id: int, *, pseudonym: str) -> int:
    return StepExecution.objects.filter(customer_id=customer_id).update(detail={})


register(
    "journeys.enrolment",
    export=_export_enrolments,
    erase=_erase_enrolments,
    label=_("Journey enrolments"),
)
register(
    "journeys.stepexecution", export=_export_steps, erase=_erase_steps, label=_("Journey steps")
)
