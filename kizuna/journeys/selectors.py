"""Reads of journeys: lists, per-step counts, results against the holdout (conversion with
a two-proportion z-test, revenue attributed, drop-off per step), and the dry-run
simulation of a graph over past data (no writes)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import JST, now
from kizuna.customers.models import Customer, Event
from kizuna.customers.selectors import last_seen_between
from kizuna.journeys import graph as g
from kizuna.journeys.choices import OPEN_STATES, EnrolmentState
from kizuna.journeys.models import Enrolment, Journey, StepExecution


def journey_list(*, status: str | None = None) -> QuerySet[Journey]:
    qs = Journey.objects.select_related("live_version")
    return qs.filter(status=status) if status else qs


def journey_get(*, journey_id: Any) -> Journey:
    try:
        return Journey.objects.select_related("live_version").get(pk=int(journey_id))
    except (Journey.DoesNotExist, TypeError, ValueError) as exc:
        raise NotFound("journey", journey_id) from exc


def journey_graph(journey: Journey) -> dict[str, Any]:
    """The graph shown: the live version's, else the draft."""
    return journey.live_version.graph if journey.live_version else journey.draft


def step_counts(*, journey: Journey) -> list[dict[str, Any]]:
    """Per step of the shown graph: entered (enrolments that ran it), waiting/active there
    now, completed (moved on), exited there (their path ended or they left), conversions
    (converted enrolments that passed through it) and the drop-off rate (left there
    without converting, of those who entered)."""
    entered = dict(
        StepExecution.objects.filter(journey=journey)
        .values("node")
        .annotate(n=Count("enrolment", distinct=True))
        .values_list("node", "n")
    )
    converted = dict(
        StepExecution.objects.filter(journey=journey, enrolment__converted_at__isnull=False)
        .values("node")
        .annotate(n=Count("enrolment", distinct=True))
        .values_list("node", "n")
    )
    here: dict[tuple[str, str], int] = {
        (node, state): n
        for node, state, n in Enrolment.objects.filter(journey=journey)
        .values("node", "state")
        .annotate(n=Count("id"))
        .values_list("node", "state", "n")
    }
    rows = []
    for nid, node in g.nodes_by_id(journey_graph(journey)).items():
        n_in = entered.get(nid, 0)
        waiting = here.get((nid, EnrolmentState.WAITING), 0)
        active = here.get((nid, EnrolmentState.ACTIVE), 0)
        ended = sum(
            here.get((nid, s), 0)
            for s in (EnrolmentState.COMPLETED, EnrolmentState.EXITED, EnrolmentState.CONVERTED)
        )
        dropped = here.get((nid, EnrolmentState.EXITED), 0) + (
            here.get((nid, EnrolmentState.COMPLETED), 0) if node.get("type") != "exit" else 0
        )
        rows.append(
            {
                "node": nid,
                "type": node.get("type"),
                "entered": n_in,
                "waiting": waiting,
                "active": active,
                "completed": max(0, n_in - waiting - active - ended),
                "exited": ended,
                "conversions": converted.get(nid, 0),
                "drop_off_rate": round(dropped / n_in, 4) if n_in else 0.0,
            }
        )
    return rows


def two_proportion_z(conv_a: int, n_a: int, conv_b: int, n_b: int) -> dict[str, Any]:
    """Treated (a) against holdout (b): rates, absolute lift, z, two-sided p and a 95% CI of
    the difference (normal approximation)."""
    from scipy.stats import norm

    rate_a = conv_a / n_a if n_a else 0.0
    rate_b = conv_b / n_b if n_b else 0.0
    out: dict[str, Any] = {
        "treated_rate": round(rate_a, 4),
        "holdout_rate": round(rate_b, 4),
        "lift": round(rate_a - rate_b, 4),
        "z": None,
        "p_value": None,
        "ci95": None,
        "significant": False,
    }
    if not n_a or not n_b:
        return out
    pooled = (conv_a + conv_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    if se_pooled > 0:
        z = (rate_a - rate_b) / se_pooled
        p = 2 * (1 - float(norm.cdf(abs(z))))
        out.update(z=round(z, 4), p_value=round(p, 6), significant=p < 0.05)
    margin = 1.959964 * se
    out["ci95"] = [round(rate_a - rate_b - margin, 4), round(rate_a - rate_b + margin, 4)]
    return out


def _revenue(journey: Journey, holdout: bool, window: timedelta) -> tuple[int, int]:
    from kizuna.commerce.models import Order

    row = (
        Order.objects.filter(
            customer__journey_enrolments__journey=journey,
            customer__journey_enrolments__holdout=holdout,
            placed_at__gte=F("customer__journey_enrolments__entered_at"),
            placed_at__lt=F("customer__journey_enrolments__entered_at") + window,
        )
        .exclude(status="cancelled")
        .aggregate(total=Sum("total_minor"), orders=Count("id"))
    )
    return int(row["total"] or 0), int(row["orders"] or 0)


def journey_results(*, journey: Journey) -> dict[str, Any]:
    graph = journey_graph(journey)
    goal = graph.get("goal") or {}
    window = timedelta(days=int(goal.get("within_days", 30)))
    counts = {
        (holdout, converted): n
        for holdout, converted, n in Enrolment.objects.filter(journey=journey)
        .annotate(conv=Q(converted_at__isnull=False))
        .values("holdout", "conv")
        .annotate(n=Count("id"))
        .values_list("holdout", "conv", "n")
    }
    treated = counts.get((False, False), 0) + counts.get((False, True), 0)
    held = counts.get((True, False), 0) + counts.get((True, True), 0)
    conv_t, conv_h = counts.get((False, True), 0), counts.get((True, True), 0)
    revenue_t, orders_t = _revenue(journey, False, window)
    revenue_h, orders_h = _revenue(journey, True, window)
    open_now = Enrolment.objects.filter(journey=journey, state__in=OPEN_STATES).count()
    return {
        "journey_id": journey.pk,
        "goal": goal or None,
        "enrolled": treated + held,
        "treated": treated,
        "holdout": held,
        "in_progress": open_now,
        "conversions": {"treated": conv_t, "holdout": conv_h},
        "comparison": two_proportion_z(conv_t, treated, conv_h, held) if goal else None,
        "revenue": {
            "treated_minor": revenue_t,
            "treated_orders": orders_t,
            "holdout_minor": revenue_h,
            "holdout_orders": orders_h,
            "per_treated_customer": round(revenue_t / treated) if treated else 0,
            "per_holdout_customer": round(revenue_h / held) if held else 0,
            "window_days": window.days,
        },
        "steps": step_counts(journey=journey),
    }


# --- dry run -------------------------------------------------------------------------------

SIMULATION_LIMIT = 20_000


def _entrants(
    graph: dict[str, Any], since: datetime, until: datetime
) -> list[tuple[int, datetime, dict[str, Any]]]:
    trigger = graph.get("trigger") or {}
    kind = trigger.get("type")
    rule = (graph.get("entry") or {}).get("rule", "once")
    found: list[tuple[int, datetime, dict[str, Any]]] = []
    if kind in ("event", "segment_entered", "segment_left", "score"):
        event_type = {
            "event": trigger.get("event"),
            "segment_entered": "segment.entered",
            "segment_left": "segment.left",
            "score": g.SCORES.get(str(trigger.get("score"))),
        }[kind]
        rows = (
            Event.objects.filter(
                type=event_type,
                customer__isnull=False,
                occurred_at__gte=since,
                occurred_at__lt=until,
            )
            .order_by("occurred_at", "id")
            .values_list("customer_id", "occurred_at", "properties")[: SIMULATION_LIMIT * 2]
        )
        seen: set[int] = set()
        for cid, at, props in rows:
            if kind == "event" and not g.spec_matches(trigger, props):
                continue
            if kind in ("segment_entered", "segment_left") and props.get("segment") != trigger.get(
                "segment"
            ):
                continue
            if kind == "score" and not (props.get("churn_risk") or 0) >= trigger["threshold"]:
                continue
            if rule != "reentry" and cid in seen:
                continue
            seen.add(cid)
            found.append((cid, at, {"event": event_type, **props}))
    elif kind == "date":
        day = since
        customers = Customer.objects.filter(merged_into__isnull=True)
        while day < until and len(found) < SIMULATION_LIMIT:
            local = day.astimezone(JST).date() + timedelta(days=int(trigger.get("days_before", 0)))
            if trigger["field"] == "birthday":
                ids = customers.filter(birthday__month=local.month, birthday__day=local.day)
            else:
                ids = customers.filter(
                    created_at__month=local.month,
                    created_at__day=local.day,
                    created_at__year__lt=local.year,
                )
            found.extend((cid, day, {}) for cid in ids.values_list("pk", flat=True))
            day += timedelta(days=1)
    elif kind == "inactivity":
        days = timedelta(days=int(trigger["days"]))
        lapsed = Customer.objects.filter(
            last_seen_between(since - days, until - days), merged_into__isnull=True
        ).values_list("pk", "last_seen_at")
        found.extend((cid, seen_at + days, {}) for cid, seen_at in lapsed if seen_at)
    return found[:SIMULATION_LIMIT]


def _event_times(
    event_type: str, ids: list[int], since: datetime
) -> dict[int, list[tuple[datetime, dict[str, Any]]]]:
    times: dict[int, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    for start in range(0, len(ids), 900):
        for cid, at, props in Event.objects.filter(
            type=event_type, customer_id__in=ids[start : start + 900], occurred_at__gte=since
        ).values_list("customer_id", "occurred_at", "properties"):
            times[cid].append((at, props or {}))
    for values in times.values():
        values.sort(key=lambda item: item[0])
    return times


def _first_in(
    times: list[tuple[datetime, dict[str, Any]]],
    after: datetime,
    until: datetime,
    spec: dict[str, Any] | None = None,
) -> datetime | None:
    """The first event in (after, until] whose properties pass the spec's filters."""
    for at, props in times:
        if after < at <= until and (spec is None or g.spec_matches(spec, props)):
            return at
    return None


def journey_simulate(
    *, graph: dict[str, Any], days: int = 30, until: datetime | None = None
) -> dict[str, Any]:
    """Who would have entered in the last `days` and how far each would have got: per-step
    counts, the holdout, and goal conversions, from the stored events and profiles. Nothing
    is written and nothing is sent. Sends are counted as attempted (consent, quiet hours
    and caps are decided at send time); branches read today's profiles."""
    from kizuna.journeys.services import condition_value, entry_key, wait_until_time

    until = until or now()
    since = until - timedelta(days=days)
    entrants = _entrants(graph, since, until)
    nodes = g.nodes_by_id(graph)
    ids = sorted({cid for cid, _at, _ctx in entrants})
    customers = Customer.objects.in_bulk(ids)
    waits = {str(n["event"]) for n in nodes.values() if n.get("type") == "wait_event"}
    goal = graph.get("goal") if isinstance(graph.get("goal"), dict) else None
    types = waits | ({goal["event"]} if goal else set())
    times = {t: _event_times(t, ids, since) for t in types}
    holdout_percent = int(graph.get("holdout_percent", 0))
    per_node: dict[str, int] = {nid: 0 for nid in nodes}
    outcome = {
        "treated": 0,
        "holdout": 0,
        "converted_treated": 0,
        "converted_holdout": 0,
        "sends": 0,
    }
    for n, (cid, entered, ctx) in enumerate(entrants):
        from kizuna.journeys.services import Entrant

        key = entry_key(0, graph, Entrant(customer_id=cid, ref=str(n)), entered)
        holdout = holdout_percent > 0 and g.bucket("holdout", key) < holdout_percent
        converted_at = None
        if goal:
            converted_at = _first_in(
                times[goal["event"]].get(cid, []),
                entered,
                entered + timedelta(days=int(goal.get("within_days", 30))),
                goal,
            )
        group = "holdout" if holdout else "treated"
        outcome[group] += 1
        if converted_at is not None:
            outcome[f"converted_{group}"] += 1
        if holdout or cid not in customers:
            continue
        t = entered
        nid: str | None = graph["start"]
        for _step in range(g.MAX_NODES * 2):
            if nid is None or (converted_at is not None and converted_at <= t):
                break
            node = nodes[nid]
            per_node[nid] += 1
            kind = node["type"]
            nxt = node.get("next")
            if kind in ("send", "webhook"):
                outcome["sends"] += 1
            elif kind == "wait":
                t += g.parse_duration(node["duration"]) or timedelta(0)
            elif kind == "wait_until":
                t = wait_until_time(customers[cid], node, t)
            elif kind == "wait_event":
                timeout = g.parse_duration(node["timeout"]) or timedelta(0)
                hit = _first_in(times[str(node["event"])].get(cid, []), t, t + timeout, node)
                t = hit or t + timeout
                nxt = node.get("next") if hit else node.get("timeout_next")
            elif kind == "branch":
                cond = node["condition"]
                value = condition_value(cond["field"], customers[cid], ctx)
                nxt = (
                    node["yes"]
                    if g.compare(value, cond.get("op", "eq"), cond.get("value"))
                    else node["no"]
                )
            elif kind == "split":
                nxt = (
                    node["a"]
                    if g.bucket("split", key, nid) < int(node.get("percent", 50))
                    else node["b"]
                )
            elif kind == "exit":
                nxt = None
            if t > until:  # would still be waiting today
                break
            nid = nxt
    return {
        "days": days,
        "entrants": len(entrants),
        "customers": len(ids),
        "truncated": len(entrants) >= SIMULATION_LIMIT,
        **outcome,
        "steps": [{"node": nid, "count": count} for nid, count in per_node.items()],
    }
