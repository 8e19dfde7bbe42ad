"""REST API of journeys: list, create (from a graph or a ready-made template), validate,
edit the draft, publish, pause/resume/archive, per-step stats and results, dry run."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StrictInt

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.iam.authz import request_actor, require_perm
from kizuna.journeys import library, selectors, services
from kizuna.journeys.models import Journey

router = Router(tags=["journeys"])
VIEW = "journeys.view_journey"
CHANGE = "journeys.change_journey"


class JourneyIn(InputSchema):
    name: str = Field("", max_length=150)
    description: str = Field("", max_length=2000)
    graph: dict[str, Any] | None = Field(None, description="The journey graph (docs/journeys.md).")
    template: str | None = Field(None, description="Start from a ready-made template (key).")
    email_channel: StrictInt | None = Field(None, description="Email channel id for a template.")


class JourneyEdit(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=150)
    description: str | None = Field(None, max_length=2000)
    graph: dict[str, Any] | None = None


class GraphIn(InputSchema):
    graph: dict[str, Any]


class SimulateIn(InputSchema):
    graph: dict[str, Any]
    days: int = Field(30, ge=1, le=365)


class JourneyOut(Schema):
    id: int
    name: str
    description: str
    status: str
    template_key: str
    live_version: int | None
    graph: dict[str, Any]
    draft: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ValidationOut(Schema):
    valid: bool
    errors: dict[str, list[str]]


class TemplateOut(Schema):
    key: str
    name: str
    name_ja: str
    description: str
    graph: dict[str, Any]


def _out(journey: Journey) -> dict[str, Any]:
    return {
        "id": journey.pk,
        "name": journey.name,
        "description": journey.description,
        "status": journey.status,
        "template_key": journey.template_key,
        "live_version": journey.live_version.number if journey.live_version else None,
        "graph": selectors.journey_graph(journey),
        "draft": journey.draft,
        "created_at": journey.created_at,
        "updated_at": journey.updated_at,
    }


def _fresh(journey_id: int) -> dict[str, Any]:
    return _out(selectors.journey_get(journey_id=journey_id))


class _Lazy:
    def __init__(self, qs: Any) -> None:
        self.qs = qs

    def __getitem__(self, item: slice) -> list[dict[str, Any]]:
        return [_out(j) for j in self.qs[item]]

    def count(self) -> int:
        return int(self.qs.count())

    def __len__(self) -> int:
        return self.count()


@router.get(
    "/journeys", response=responses({200: list[JourneyOut]}, query=True), auth=require_perm(VIEW)
)
@paginate(PagePagination)
def journey_list(request: HttpRequest, status: str | None = None) -> Any:
    return _Lazy(selectors.journey_list(status=status))


@router.get(
    "/journeys/templates", response=responses({200: list[TemplateOut]}), auth=require_perm(VIEW)
)
def journey_templates(request: HttpRequest) -> list[dict[str, Any]]:
    """The ready-made journeys (`$email` stands for the email channel chosen)."""
    return [
        {
            "key": key,
            "name": spec["name"],
            "name_ja": spec.get("name_ja", ""),
            "description": spec.get("description", ""),
            "graph": spec["graph"],
        }
        for key, spec in library.templates().items()
    ]


@router.post(
    "/journeys",
    response=responses({201: JourneyOut}, body=True),
    auth=require_perm("journeys.add_journey"),
)
def journey_create(request: HttpRequest, payload: JourneyIn) -> Any:
    """Create a draft from a graph, or from a template with an email channel. A bad graph is
    a 422 naming the step at fault (`nodes.<id>`), and nothing is written."""
    actor = request_actor(request)
    if payload.template:
        from kizuna.messaging.models import Channel

        channel = Channel.objects.filter(pk=payload.email_channel or 0).first()
        journey = services.journey_from_template(
            key=payload.template, email_channel=channel, name=payload.name, actor=actor
        )
    else:
        journey = services.journey_save(
            data={"name": payload.name, "description": payload.description, "graph": payload.graph},
            actor=actor,
        )
    return Status(201, _fresh(journey.pk))


@router.post(
    "/journeys/validate",
    response=responses({200: ValidationOut}, body=True),
    auth=require_perm(VIEW),
)
def journey_validate(request: HttpRequest, payload: GraphIn) -> dict[str, Any]:
    """Check a graph without saving it: every problem, keyed by the part at fault."""
    errors = services.graph_errors(payload.graph)
    return {"valid": not errors, "errors": errors}


@router.post(
    "/journeys/simulate",
    response=responses({200: dict[str, Any]}, body=True),
    auth=require_perm(VIEW),
)
def journey_simulate(request: HttpRequest, payload: SimulateIn) -> dict[str, Any]:
    """Dry run over the last `days` of stored events and profiles: who would have entered
    and per-step counts. Nothing is written or sent. A bad graph is a 422."""
    services.graph_validate(graph=payload.graph)
    return selectors.journey_simulate(graph=payload.graph, days=payload.days)


@router.get(
    "/journeys/{journey_id}",
    response=responses({200: JourneyOut}, lookup=True),
    auth=require_perm(VIEW),
)
def journey_detail(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    return _fresh(journey_id)


@router.put(
    "/journeys/{journey_id}",
    response=responses({200: JourneyOut}, lookup=True, body=True),
    auth=require_perm(CHANGE),
)
def journey_edit(request: HttpRequest, journey_id: int, payload: JourneyEdit) -> dict[str, Any]:
    """Edit the name, description or draft graph (a live journey keeps running its
    published version until the draft is published)."""
    journey = selectors.journey_get(journey_id=journey_id)
    services.journey_save(
        journey=journey, data=payload.model_dump(exclude_none=True), actor=request_actor(request)
    )
    return _fresh(journey_id)


def _act(request: HttpRequest, journey_id: int, action: Any) -> dict[str, Any]:
    action(journey=selectors.journey_get(journey_id=journey_id), actor=request_actor(request))
    return _fresh(journey_id)


@router.post(
    "/journeys/{journey_id}/publish",
    response=responses({200: JourneyOut}, lookup=True, body=True),
    auth=require_perm(CHANGE),
)
def journey_publish(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    """Publish the draft as a new version and go live; enrolled customers move to it by
    step id (at a removed step they leave the journey)."""
    return _act(request, journey_id, services.journey_publish)


@router.post(
    "/journeys/{journey_id}/pause",
    response=responses({200: JourneyOut}, lookup=True, body=True),
    auth=require_perm(CHANGE),
)
def journey_pause(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    return _act(request, journey_id, services.journey_pause)


@router.post(
    "/journeys/{journey_id}/resume",
    response=responses({200: JourneyOut}, lookup=True, body=True),
    auth=require_perm(CHANGE),
)
def journey_resume(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    return _act(request, journey_id, services.journey_resume)


@router.post(
    "/journeys/{journey_id}/archive",
    response=responses({200: JourneyOut}, lookup=True, body=True),
    auth=require_perm(CHANGE),
)
def journey_archive(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    return _act(request, journey_id, services.journey_archive)


@router.get(
    "/journeys/{journey_id}/stats",
    response=responses({200: dict[str, Any]}, lookup=True),
    auth=require_perm(VIEW),
)
def journey_stats(request: HttpRequest, journey_id: int) -> dict[str, Any]:
    """Per-step counts (entered, waiting, completed, exited, conversions, drop-off), goal
    conversion against the holdout (z-test) and the revenue attributed."""
    return selectors.journey_results(journey=selectors.journey_get(journey_id=journey_id))
