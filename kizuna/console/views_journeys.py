"""Console pages of journeys: the list, the template gallery, the editor (the graph as JSON
with live validation and the flow chart redrawn through HTMX), and a journey's page with
its flow chart, per-step counts and results against the holdout."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from kizuna.console.views import _htmx_vary, _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.journeys import graph as g
from kizuna.journeys import library, selectors, services
from kizuna.journeys.models import Journey

BOX_W, BOX_H, GAP_X, GAP_Y = 190, 70, 60, 26
TYPE_LABELS = {
    "send": gettext_lazy("Send"),
    "webhook": gettext_lazy("Webhook"),
    "wait": gettext_lazy("Wait"),
    "wait_until": gettext_lazy("Wait until"),
    "wait_event": gettext_lazy("Wait for event"),
    "branch": gettext_lazy("Branch"),
    "split": gettext_lazy("Random split"),
    "award_points": gettext_lazy("Award points"),
    "issue_coupon": gettext_lazy("Issue coupon"),
    "set_trait": gettext_lazy("Set trait"),
    "add_to_segment": gettext_lazy("Add to segment"),
    "remove_from_segment": gettext_lazy("Remove from segment"),
    "support_task": gettext_lazy("Support task"),
    "exit": gettext_lazy("Exit"),
}
_ACTIONS = {
    "publish": (services.journey_publish, gettext_lazy("Published: the journey is live.")),
    "pause": (services.journey_pause, gettext_lazy("Paused.")),
    "resume": (services.journey_resume, gettext_lazy("Resumed.")),
    "archive": (services.journey_archive, gettext_lazy("Archived.")),
}
EMPTY_GRAPH = {
    "trigger": {"type": "event", "event": "order.placed"},
    "entry": {"rule": "once"},
    "start": "end",
    "nodes": [{"id": "end", "type": "exit"}],
}


def _journey(journey_id: int) -> Journey:
    try:
        return selectors.journey_get(journey_id=journey_id)
    except NotFound as exc:
        raise Http404 from exc


def _summary(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if kind in ("send", "webhook"):
        return str(node.get("template", ""))
    if kind == "wait":
        return str(node.get("duration", ""))
    if kind == "wait_until":
        day = node.get("day", "any")
        if day == "business_day":
            return _("%(time)s, business day") % {"time": node.get("time", "")}
        if day == "next_business_day":
            return _("%(time)s, next business day") % {"time": node.get("time", "")}
        return str(node.get("time", ""))
    if kind == "wait_event":
        where = g.filters_of(node)
        n = len(where)
        suffix = " (" + ngettext("%(n)d filter", "%(n)d filters", n) % {"n": n} + ")" if n else ""
        return f"{node.get('event', '')} / {node.get('timeout', '')}{suffix}"
    if kind == "branch":
        cond = node.get("condition") or {}
        return f"{cond.get('field', '')} {cond.get('op', 'eq')} {cond.get('value', '')}"
    if kind == "split":
        return f"{node.get('percent', 50)}%"
    if kind == "award_points":
        return f"+{node.get('points', '')}"
    if kind in ("issue_coupon", "add_to_segment", "remove_from_segment"):
        return str(node.get("coupon") or node.get("segment") or "")
    if kind == "set_trait":
        return f"{node.get('key', '')} = {node.get('value', '')}"
    if kind == "support_task":
        return str(node.get("title", ""))
    return ""


def flow_chart(
    graph: Any,
    counts: dict[str, dict[str, Any]] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A layered layout (columns by distance from the start) as boxes and arrows for SVG."""
    if not isinstance(graph, dict):
        return None
    nodes = g.nodes_by_id(graph)
    start = graph.get("start")
    if not nodes or start not in nodes:
        return None
    layer = {start: 0}
    order = [start]
    for nid in order:
        for _key, target in g.exits(nodes[nid]):
            if target in nodes and target not in layer:
                layer[target] = layer[nid] + 1
                order.append(target)
    depth = max(layer.values()) + 1
    for nid in nodes:  # unreachable steps: a last column, so they are seen (and flagged)
        if nid not in layer:
            layer[nid] = depth
            order.append(nid)
    rows: dict[int, int] = {}
    boxes: dict[str, dict[str, Any]] = {}
    for nid in order:
        column = layer[nid]
        row = rows.get(column, 0)
        rows[column] = row + 1
        node = nodes[nid]
        boxes[nid] = {
            "id": nid,
            "x": 10 + column * (BOX_W + GAP_X),
            "y": 10 + row * (BOX_H + GAP_Y),
            "label": TYPE_LABELS.get(str(node.get("type")), str(node.get("type"))),
            "summary": _summary(node)[:28],
            "counts": (counts or {}).get(nid),
            "error": bool(errors and f"nodes.{nid}" in errors),
            "start": nid == start,
        }
    arrows = []
    for nid in order:
        for key, target in g.exits(nodes[nid]):
            if target not in boxes:
                continue
            a, b = boxes[nid], boxes[target]
            x1, y1 = a["x"] + BOX_W, a["y"] + BOX_H // 2
            x2, y2 = b["x"], b["y"] + BOX_H // 2
            if b["x"] <= a["x"]:  # back edge (a loop through a wait): route below
                x2, y2 = b["x"] + BOX_W // 2, b["y"] + BOX_H
                x1, y1 = a["x"] + BOX_W // 2, a["y"] + BOX_H
            arrows.append(
                {
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "label": "" if key == "next" else key,
                    "lx": (x1 + x2) // 2,
                    "ly": (y1 + y2) // 2 - 4,
                }
            )
    width = max(b["x"] for b in boxes.values()) + BOX_W + 20
    height = max(b["y"] for b in boxes.values()) + BOX_H + 30
    return {
        "boxes": list(boxes.values()),
        "arrows": arrows,
        "width": width,
        "height": height,
        "box_w": BOX_W,
        "box_h": BOX_H,
    }


@staff_required("journeys.view_journey")
def journey_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    return render(
        request,
        "console/journeys/list.html",
        {
            "section": "journeys",
            "page": _page(request, selectors.journey_list(status=status)),
            "status": status,
        },
    )


@staff_required("journeys.view_journey")
def journey_gallery(request: HttpRequest) -> HttpResponse:
    from kizuna.messaging.models import Channel

    language = getattr(request, "LANGUAGE_CODE", "ja")
    items = [
        {
            "key": key,
            "name": spec.get("name_ja")
            if language == "ja" and spec.get("name_ja")
            else spec["name"],
            "description": spec.get("description", ""),
            "chart": flow_chart(spec["graph"]),
        }
        for key, spec in library.templates().items()
    ]
    channels = Channel.objects.filter(kind="email", active=True).order_by("name")
    return render(
        request,
        "console/journeys/gallery.html",
        {"section": "journeys", "templates": items, "channels": channels},
    )


@staff_required("journeys.view_journey", "journeys.add_journey")
@require_POST
def journey_from_template(request: HttpRequest) -> HttpResponse:
    from kizuna.messaging.models import Channel

    channel = Channel.objects.filter(pk=request.POST.get("email_channel") or 0).first()
    try:
        journey = services.journey_from_template(
            key=str(request.POST.get("template", "")), email_channel=channel, actor=_staff(request)
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
        return redirect("console:journey_gallery")
    messages.success(request, _("Draft created from the template: review and publish it."))
    return redirect("console:journey_detail", journey_id=journey.pk)


def _parse(text: str) -> tuple[Any, dict[str, list[str]]]:
    try:
        return json.loads(text), {}
    except json.JSONDecodeError as exc:
        return None, {"graph": [_("Not valid JSON: %(error)s") % {"error": str(exc)}]}


@staff_required("journeys.view_journey", "journeys.change_journey")
def journey_edit(request: HttpRequest, journey_id: int | None = None) -> HttpResponse:
    journey = _journey(journey_id) if journey_id else None
    if journey is None and not request.user.has_perm("journeys.add_journey"):
        return HttpResponse(status=403)
    name = journey.name if journey else ""
    description = journey.description if journey else ""
    text = json.dumps(journey.draft if journey else EMPTY_GRAPH, ensure_ascii=False, indent=2)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        name = str(request.POST.get("name", "")).strip()
        description = str(request.POST.get("description", ""))
        text = str(request.POST.get("graph", ""))
        graph, errors = _parse(text)
        if not errors:
            try:
                saved = services.journey_save(
                    journey=journey,
                    data={"name": name, "description": description, "graph": graph},
                    actor=_staff(request),
                )
            except ValidationError as exc:
                errors = exc.message_dict
            else:
                messages.success(request, _("Journey saved."))
                return redirect("console:journey_detail", journey_id=saved.pk)
    graph, parse_errors = _parse(text)
    return render(
        request,
        "console/journeys/edit.html",
        {
            "section": "journeys",
            "journey": journey,
            "name": name,
            "description": description,
            "graph_text": text,
            "errors": errors,
            "chart": flow_chart(graph, errors=errors) if not parse_errors else None,
        },
        status=422 if errors else 200,
    )


@staff_required("journeys.view_journey")
@require_POST
def journey_check(request: HttpRequest) -> HttpResponse:
    """HTMX: validate the graph being edited and redraw its chart."""
    graph, errors = _parse(str(request.POST.get("graph", "")))
    if not errors:
        errors = services.graph_errors(graph)
    return _htmx_vary(
        render(
            request,
            "console/journeys/_check.html",
            {"errors": errors, "chart": flow_chart(graph, errors=errors) if graph else None},
        )
    )


@staff_required("journeys.view_journey")
def journey_detail(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = _journey(journey_id)
    results = selectors.journey_results(journey=journey)
    counts = {row["node"]: row for row in results["steps"]}
    simulation = None
    if request.GET.get("simulate"):
        simulation = selectors.journey_simulate(
            graph=selectors.journey_graph(journey),
            days=min(365, max(1, int(request.GET.get("days") or 30))),
        )
    return render(
        request,
        "console/journeys/detail.html",
        {
            "section": "journeys",
            "journey": journey,
            "results": results,
            "chart": flow_chart(selectors.journey_graph(journey), counts=counts),
            "versions": journey.versions.order_by("-number")[:10],
            "draft_differs": journey.live_version is not None
            and journey.live_version.graph != journey.draft,
            "simulation": simulation,
        },
    )


@staff_required("journeys.view_journey", "journeys.change_journey")
@require_POST
def journey_action(request: HttpRequest, journey_id: int, action: str) -> HttpResponse:
    journey = _journey(journey_id)
    if action not in _ACTIONS:
        raise Http404
    service, done = _ACTIONS[action]
    try:
        service(journey=journey, actor=_staff(request))
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, str(done))
    return redirect("console:journey_detail", journey_id=journey.pk)
