"""The journey graph language: its shape, durations, conditions, and structural checks.

Pure functions over plain JSON (no database): `check_structure` returns errors keyed by the
part at fault (`nodes.<id>`, `trigger`, `entry`, `goal`), `references` lists what the
database must confirm (templates, channels, segments, coupons, event types).

A graph::

    {"trigger": {"type": "event", "event": "order.placed",
                 "filters": [{"property": "total", "op": "gte", "value": 5000}]},
                 # or the same as "where": {"total": {"gte": 5000}}
     "entry": {"rule": "once" | "once_per_period" | "reentry", "period_days": 365},
     "goal": {"event": "order.placed", "within_days": 14},
     "holdout_percent": 10,
     "frequency_cap": {"sends": 3, "days": 7},
     "start": "thanks",
     "nodes": [{"id": "thanks", "type": "send", "channel": "mail", "template": "thanks",
                "next": "wait"}, ...]}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from django.utils.translation import gettext as _

TRIGGER_TYPES = ("event", "segment_entered", "segment_left", "date", "inactivity", "score")
DATE_FIELDS = ("birthday", "anniversary")
SCORES = {"churn_risk": "customer.at_risk"}
ENTRY_RULES = ("once", "once_per_period", "reentry")
WAITS = ("wait", "wait_until", "wait_event")
# node type -> the keys that hold its exits (each must name a node, except optional ones)
EXITS: dict[str, tuple[str, ...]] = {
    "send": ("next",),
    "webhook": ("next",),
    "wait": ("next",),
    "wait_until": ("next",),
    "wait_event": ("next", "timeout_next"),
    "branch": ("yes", "no"),
    "split": ("a", "b"),
    "award_points": ("next",),
    "issue_coupon": ("next",),
    "set_trait": ("next",),
    "add_to_segment": ("next",),
    "remove_from_segment": ("next",),
    "support_task": ("next",),
    "exit": (),
}
REQUIRED_EXITS = {"branch": ("yes", "no"), "split": ("a", "b"), "wait_event": ("timeout_next",)}
NODE_TYPES = tuple(EXITS)
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "contains")
ORDERED_OPS = ("gt", "gte", "lt", "lte")
# wait_until "day": any day, the next business day (Japanese calendar) at the time or later,
# or a business day strictly after today.
WAIT_DAYS = ("any", "business_day", "next_business_day")
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DURATION = re.compile(r"^(\d{1,5})([smhd])$")
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=366)
MAX_NODES = 100


def parse_duration(value: Any) -> timedelta | None:
    """'30m', '12h', '3d' (or a whole number of seconds) -> timedelta; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := DURATION.match(value.strip())):
        seconds = int(match.group(1)) * UNIT[match.group(2)]
    else:
        return None
    if seconds < 0 or timedelta(seconds=seconds) > MAX_DURATION:
        return None
    return timedelta(seconds=seconds)


def parse_time(value: Any) -> time | None:
    if not isinstance(value, str) or not re.match(r"^\d{1,2}:\d{2}$", value):
        return None
    hour, minute = (int(p) for p in value.split(":"))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def nodes_by_id(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = graph.get("nodes")
    if not isinstance(nodes, list):
        return {}
    return {n["id"]: n for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)}


def exits(node: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in EXITS.get(node.get("type", ""), ()):
        target = node.get(key)
        if isinstance(target, str) and target:
            yield key, target


def bucket(*parts: object) -> int:
    """A stable number 0-99 from the parts (random split, holdout): the same enrolment
    always lands in the same bucket, on every worker and every re-run."""
    raw = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") % 100


@dataclass(frozen=True)
class References:
    templates: dict[str, str]  # node id -> template slug
    channels: dict[str, str]  # node id -> channel name
    segments: dict[str, str]  # part ("trigger" or node id) -> segment slug
    coupons: dict[str, Any]  # node id -> coupon definition id or name
    events: dict[str, str]  # part ("trigger", "goal", node id) -> event type


def filters_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The property filters of a trigger, goal or wait_event: the `filters` list
    (`[{"property": "total", "op": "gte", "value": 5000}]`) and/or the `where` object
    (`{"total": {"gte": 5000}, "channel": "web"}`: a plain value means eq), as one list."""
    filters = spec.get("filters")
    out = [f for f in filters if isinstance(f, dict)] if isinstance(filters, list) else []
    where = spec.get("where")
    if isinstance(where, dict):
        for prop, test in where.items():
            if isinstance(test, dict) and test:
                out.extend({"property": prop, "op": op, "value": v} for op, v in test.items())
            else:
                out.append({"property": prop, "op": "eq", "value": test})
    return out


def _filter_problem(f: Any) -> str | None:
    if not isinstance(f, dict) or not isinstance(f.get("property"), str) or not f["property"]:
        return _("Each filter needs a property.")
    op, value, prop = f.get("op", "eq"), f.get("value"), f["property"]
    if op not in OPS:
        return _("Unknown operator %(op)s on %(property)s (use %(ops)s).") % {
            "op": op,
            "property": prop,
            "ops": ", ".join(OPS),
        }
    if op == "in" and not isinstance(value, list):
        return _("The operator in on %(property)s needs a list of values.") % {"property": prop}
    if op in ORDERED_OPS and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        return _("The operator %(op)s on %(property)s needs a number or a text.") % {
            "op": op,
            "property": prop,
        }
    if op == "exists" and value is not None and not isinstance(value, bool):
        return _("The operator exists on %(property)s takes true or false.") % {"property": prop}
    return None


def filter_problems(spec: dict[str, Any]) -> list[str]:
    """What is wrong with a trigger's, goal's or wait_event's property filters."""
    problems: list[str] = []
    filters = spec.get("filters")
    if filters is not None and not isinstance(filters, list):
        problems.append(_("Filters must be a list."))
        filters = []
    where = spec.get("where")
    if where is not None and not isinstance(where, dict):
        problems.append(_("where must be an object of property: {operator: value}."))
    items = list(filters or [])
    if isinstance(where, dict):
        items += filters_of({"where": where})
    for f in items:
        problem = _filter_problem(f)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


def _check_filters(spec: dict[str, Any], where: str, errors: dict[str, list[str]]) -> None:
    problems = filter_problems(spec)
    if problems:
        errors.setdefault(where, []).extend(problems)


def _check_condition(condition: Any, where: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(condition, dict) or not isinstance(condition.get("field"), str):
        errors[where] = [_("A condition needs a field (profile.*, traits.*, trigger.*, score.*).")]
        return
    if condition.get("op", "eq") not in OPS:
        errors[where] = [_("Unknown operator %(op)s.") % {"op": condition.get("op")}]
    if condition["field"].split(".", 1)[0] not in ("profile", "traits", "trigger", "score"):
        errors[where] = [_("A condition field starts with profile., traits., trigger. or score.")]


def _check_trigger(trigger: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGER_TYPES:
        errors["trigger"] = [_("Choose a trigger type: %(t)s.") % {"t": ", ".join(TRIGGER_TYPES)}]
        return
    kind = trigger["type"]
    if kind == "event":
        if not isinstance(trigger.get("event"), str) or not trigger["event"]:
            errors["trigger"] = [_("An event trigger names its event type.")]
        _check_filters(trigger, "trigger", errors)
    elif kind in ("segment_entered", "segment_left"):
        if not isinstance(trigger.get("segment"), str) or not trigger["segment"]:
            errors["trigger"] = [_("A segment trigger names its segment.")]
    elif kind == "date":
        if trigger.get("field") not in DATE_FIELDS:
            errors["trigger"] = [_("A date trigger uses birthday or anniversary.")]
        days = trigger.get("days_before", 0)
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 60:
            errors["trigger"] = [_("days_before is a whole number from 0 to 60.")]
    elif kind == "inactivity":
        days = trigger.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            errors["trigger"] = [_("Inactivity needs days: a whole number from 1 to 3650.")]
    elif kind == "score":
        threshold = trigger.get("threshold")
        if trigger.get("score") not in SCORES:
            errors["trigger"] = [_("Scores: %(s)s.") % {"s": ", ".join(SCORES)}]
        elif not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            errors["trigger"] = [_("A score threshold is a number from 0 to 1.")]


def _check_node(node: dict[str, Any], known: set[str], errors: dict[str, list[str]]) -> None:
    nid = node["id"]
    key = f"nodes.{nid}"
    kind = node.get("type")
    problems: list[str] = []
    if kind not in EXITS:
        errors[key] = [_("Unknown step type %(t)s.") % {"t": kind}]
        return
    for exit_key in REQUIRED_EXITS.get(kind, ()):
        if not node.get(exit_key):
            problems.append(_("This step needs its %(exit)s exit.") % {"exit": exit_key})
    for exit_key, target in exits(node):
        if target not in known:
            problems.append(
                _("%(exit)s leads to %(target)s, which is not a step.")
                % {"exit": exit_key, "target": target}
            )
        elif target == nid and kind not in WAITS:
            problems.append(_("This step leads to itself."))
    if kind in ("send", "webhook"):
        if not node.get("template"):
            problems.append(_("Choose a message template."))
        if not node.get("channel"):
            problems.append(_("Choose a channel."))
    elif kind == "wait":
        if parse_duration(node.get("duration")) is None:
            problems.append(_("A duration like 30m, 12h or 3d (at most 366 days) is required."))
    elif kind == "wait_until":
        if parse_time(node.get("time")) is None:
            problems.append(_("A time of day like 10:00 is required."))
        if node.get("day", "any") not in WAIT_DAYS:
            problems.append(
                _("Unknown day %(day)s (use %(days)s).")
                % {"day": node.get("day"), "days": ", ".join(WAIT_DAYS)}
            )
    elif kind == "wait_event":
        if not isinstance(node.get("event"), str) or not node.get("event"):
            problems.append(_("Name the event to wait for."))
        if parse_duration(node.get("timeout")) is None:
            problems.append(_("A timeout like 12h or 3d (at most 366 days) is required."))
        problems.extend(filter_problems(node))
    elif kind == "branch":
        sub: dict[str, list[str]] = {}
        _check_condition(node.get("condition"), key, sub)
        problems.extend(sub.get(key, []))
    elif kind == "split":
        percent = node.get("percent", 50)
        if not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 99:
            problems.append(_("The split percent is a whole number from 1 to 99."))
    elif kind == "award_points":
        points = node.get("points")
        if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
            problems.append(_("Points must be a positive whole number."))
    elif kind == "issue_coupon":
        if not node.get("coupon"):
            problems.append(_("Choose a coupon."))
    elif kind == "set_trait":
        if not isinstance(node.get("key"), str) or not node.get("key"):
            problems.append(_("Name the trait to set."))
        if "value" not in node:
            problems.append(_("Give the trait's value."))
    elif kind in ("add_to_segment", "remove_from_segment"):
        if not node.get("segment"):
            problems.append(_("Choose a static segment."))
    elif kind == "support_task":
        title = node.get("title")
        if not isinstance(title, str) or not 0 < len(title) <= 200:
            problems.append(_("A task title of 1 to 200 characters is required."))
    if problems:
        errors[key] = problems


def _unreachable(nodes: dict[str, dict[str, Any]], start: str) -> list[str]:
    seen = {start}
    todo = [start]
    while todo:
        for _key, target in exits(nodes[todo.pop()]):
            if target in nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    return [nid for nid in nodes if nid not in seen]


def _cycle_without_wait(nodes: dict[str, dict[str, Any]]) -> str | None:
    """A node on a cycle that passes no wait step (it would run forever in one go)."""
    instant = {nid for nid, n in nodes.items() if n.get("type") not in WAITS}
    colour: dict[str, int] = {}
    for root in sorted(instant):
        if colour.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter([]))]
        colour[root] = 1
        stack[-1] = (root, (t for _k, t in exits(nodes[root]) if t in instant))
        while stack:
            nid, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[nid] = 2
                stack.pop()
            elif colour.get(child) == 1:
                return child
            elif not colour.get(child):
                colour[child] = 1
                stack.append((child, (t for _k, t in exits(nodes[child]) if t in instant)))
    return None


def check_structure(graph: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(graph, dict):
        return {"graph": [_("A journey graph is a JSON object.")]}
    _check_trigger(graph.get("trigger"), errors)
    entry = graph.get("entry", {"rule": "once"})
    if not isinstance(entry, dict) or entry.get("rule", "once") not in ENTRY_RULES:
        errors["entry"] = [_("Entry rule: %(r)s.") % {"r": ", ".join(ENTRY_RULES)}]
    elif entry.get("rule") == "once_per_period":
        days = entry.get("period_days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            errors["entry"] = [_("A period of 1 to 3650 days is required.")]
    goal = graph.get("goal")
    if goal is not None:
        if not isinstance(goal, dict) or not isinstance(goal.get("event"), str):
            errors["goal"] = [_("A goal names an event type, e.g. order.placed.")]
        else:
            days = goal.get("within_days", 30)
            if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
                errors["goal"] = [_("within_days is a whole number from 1 to 365.")]
            _check_filters(goal, "goal", errors)
    holdout = graph.get("holdout_percent", 0)
    if not isinstance(holdout, int) or isinstance(holdout, bool) or not 0 <= holdout <= 50:
        errors["holdout_percent"] = [_("A whole number from 0 to 50.")]
    elif holdout and goal is None:
        errors["holdout_percent"] = [_("A holdout needs a goal to compare against.")]
    cap = graph.get("frequency_cap")
    if cap is not None and not (
        isinstance(cap, dict)
        and isinstance(cap.get("sends"), int)
        and isinstance(cap.get("days"), int)
        and cap["sends"] >= 1
        and 1 <= cap["days"] <= 90
    ):
        errors["frequency_cap"] = [_("A cap is sends (1 or more) per days (1 to 90).")]
    raw_nodes = graph.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        errors["nodes"] = [_("A journey needs at least one step.")]
        return errors
    if len(raw_nodes) > MAX_NODES:
        errors["nodes"] = [_("At most %(n)d steps.") % {"n": MAX_NODES}]
        return errors
    nodes: dict[str, dict[str, Any]] = {}
    for i, node in enumerate(raw_nodes):
        nid = node.get("id") if isinstance(node, dict) else None
        if not isinstance(nid, str) or not ID.match(nid):
            errors[f"nodes[{i}]"] = [_("Each step needs an id of letters, digits, - or _.")]
        elif nid in nodes:
            errors[f"nodes.{nid}"] = [_("Two steps share this id.")]
        else:
            nodes[nid] = node
    for node in nodes.values():
        _check_node(node, set(nodes), errors)
    start = graph.get("start")
    if start not in nodes:
        errors["start"] = [_("start must name a step.")]
        return errors
    for nid in _unreachable(nodes, start):
        errors.setdefault(f"nodes.{nid}", []).append(
            _("This step cannot be reached from the start.")
        )
    looping = _cycle_without_wait(nodes)
    if looping is not None:
        errors.setdefault(f"nodes.{looping}", []).append(
            _("This step is on a loop without a wait step.")
        )
    return errors


def references(graph: dict[str, Any]) -> References:
    nodes = nodes_by_id(graph)
    trigger = graph.get("trigger") or {}
    segments = {}
    events = {}
    if trigger.get("type") in ("segment_entered", "segment_left"):
        segments["trigger"] = trigger["segment"]
    if trigger.get("type") == "event":
        events["trigger"] = trigger["event"]
    if isinstance(graph.get("goal"), dict):
        events["goal"] = graph["goal"].get("event", "")
    for nid, node in nodes.items():
        if node.get("type") in ("add_to_segment", "remove_from_segment"):
            segments[nid] = node.get("segment", "")
        if node.get("type") == "wait_event":
            events[nid] = node.get("event", "")
    return References(
        templates={
            nid: str(n["template"])
            for nid, n in nodes.items()
            if n.get("type") in ("send", "webhook") and n.get("template")
        },
        channels={
            nid: str(n["channel"])
            for nid, n in nodes.items()
            if n.get("type") in ("send", "webhook") and n.get("channel")
        },
        segments=segments,
        coupons={nid: n["coupon"] for nid, n in nodes.items() if n.get("type") == "issue_coupon"},
        events=events,
    )


def spec_matches(spec: dict[str, Any], values: dict[str, Any]) -> bool:
    """The trigger's, goal's or wait_event's filters (both forms) hold on the properties."""
    return matches(filters_of(spec), values)


def matches(filters: list[dict[str, Any]] | None, values: dict[str, Any]) -> bool:
    """Every filter holds on the properties (a missing property fails all but `exists`
    false)."""
    for f in filters or []:
        if not compare(values.get(f["property"], _MISSING), f.get("op", "eq"), f.get("value")):
            return False
    return True


class _Missing:
    pass


_MISSING: Any = _Missing()


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return (actual is not _MISSING and actual is not None) == bool(
            True if expected is None else expected
        )
    if actual is _MISSING:
        return False
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op == "in":
            return isinstance(expected, list) and actual in expected
        if op == "contains":
            return expected in actual
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
    except TypeError:
        return False
    return False
