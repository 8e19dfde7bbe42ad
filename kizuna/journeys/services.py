"""Writes of journeys: save and validate a graph, publish a version (migrating enrolled
customers), pause/resume/archive, enrol customers, and run due steps.

The runner (`journeys_run_due`) claims due enrolments in one transaction (`SELECT ... FOR
UPDATE SKIP LOCKED` on PostgreSQL, so two workers take disjoint batches; SQLite serialises
writers), executes each enrolment's current node, and in the same transaction writes the
node's `StepExecution` (unique attempt key) and the enrolment's advance. A crash before the
commit leaves nothing behind; after it, the enrolment is already at its next node. Every
side effect is itself keyed by the attempt key (the delivery's idempotency key, the points
award's and the coupon issue's keys), so even a step run twice would not send or award twice.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.timeutil import JST, now
from kizuna.customers.models import Customer, Event
from kizuna.customers.selectors import last_seen_between
from kizuna.journeys import graph as g
from kizuna.journeys import registry
from kizuna.journeys.choices import OPEN_STATES, EnrolmentState, JourneyStatus
from kizuna.journeys.models import Enrolment, Journey, JourneyVersion, StepExecution

logger = logging.getLogger(__name__)
SUPPORT_TASK_EVENT = "journey.support_task_requested"
BATCH = 200
MAX_STEPS_PER_RUN = 50  # per enrolment per claim (cycles without a wait are refused anyway)
RETRY_AFTER = timedelta(minutes=10)
MAX_FAILURES = 3
WATCHED_STATES = (*OPEN_STATES, EnrolmentState.HOLDOUT)


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


# --- validation ---------------------------------------------------------------------------


def _check_references(graph: dict[str, Any], errors: dict[str, list[str]]) -> None:
    from kizuna.loyalty.models import CouponDefinition
    from kizuna.messaging.models import Channel, Template
    from kizuna.segments.models import Segment, SegmentKind

    refs = g.references(graph)
    nodes = g.nodes_by_id(graph)
    templates = {t.slug: t for t in Template.objects.filter(slug__in=refs.templates.values())}
    channels = {c.name: c for c in Channel.objects.filter(name__in=refs.channels.values())}
    for nid, slug in refs.templates.items():
        key = f"nodes.{nid}"
        template = templates.get(slug)
        channel = channels.get(refs.channels.get(nid, ""))
        if template is None:
            errors.setdefault(key, []).append(
                _("There is no message template %(slug)s.") % {"slug": slug}
            )
        if nid in refs.channels and channel is None:
            errors.setdefault(key, []).append(
                _("There is no channel %(name)s.") % {"name": refs.channels[nid]}
            )
        if template is None or channel is None:
            continue
        webhook = nodes[nid]["type"] == "webhook"
        if webhook != (channel.kind == "webhook"):
            errors.setdefault(key, []).append(
                _("A webhook step uses a webhook channel; a send step an email or LINE one.")
            )
        elif template.channel_kind != channel.kind:
            errors.setdefault(key, []).append(_("This template is for another kind of channel."))
    segments = {s.slug: s for s in Segment.objects.filter(slug__in=refs.segments.values())}
    for part, slug in refs.segments.items():
        key = part if part == "trigger" else f"nodes.{part}"
        segment = segments.get(slug)
        if segment is None:
            errors.setdefault(key, []).append(_("There is no segment %(slug)s.") % {"slug": slug})
        elif part != "trigger" and segment.kind != SegmentKind.STATIC:
            errors.setdefault(key, []).append(_("Only a static segment takes members from a step."))
    for nid, ref in refs.coupons.items():
        found = CouponDefinition.objects.filter(
            Q(pk=ref) if isinstance(ref, int) else Q(name=str(ref))
        ).first()
        if found is None:
            errors.setdefault(f"nodes.{nid}", []).append(
                _("There is no coupon %(ref)s.") % {"ref": ref}
            )
        elif not found.active:
            errors.setdefault(f"nodes.{nid}", []).append(_("This coupon is not active."))
    for part, event_type in refs.events.items():
        if event_type and not registry.is_known(event_type):
            key = part if part in ("trigger", "goal") else f"nodes.{part}"
            errors.setdefault(key, []).append(
                _("Unknown event type %(type)s (not built in and never seen in the stream).")
                % {"type": event_type}
            )


def graph_errors(graph: Any) -> dict[str, list[str]]:
    """Every problem of a graph, keyed by the part at fault (`nodes.<id>` for a step)."""
    errors = g.check_structure(graph)
    if isinstance(graph, dict) and "graph" not in errors:
        _check_references(graph, errors)
    return errors


def graph_validate(*, graph: Any) -> None:
    _raise(graph_errors(graph))


# --- journeys -----------------------------------------------------------------------------


@transaction.atomic
def journey_save(
    *,
    data: dict[str, Any],
    journey: Journey | None = None,
    actor: AbstractBaseUser | None = None,
) -> Journey:
    """Create or edit a journey's name, description and draft graph (validated: a bad graph
    is refused with the step at fault named, and nothing is written)."""
    errors: dict[str, list[str]] = {}
    unknown = set(data) - {"name", "description", "graph", "template_key"}
    for key in sorted(unknown):
        errors[key] = [_("Unknown field %(f)s.") % {"f": key}]
    name = str(data.get("name", journey.name if journey else "") or "").strip()
    if not name or len(name) > 150:
        errors["name"] = [_("A name of 1 to 150 characters is required.")]
    graph = data.get("graph", journey.draft if journey else None)
    errors.update(graph_errors(graph))
    if journey is not None and journey.status == JourneyStatus.ARCHIVED:
        errors["status"] = [_("An archived journey cannot be edited.")]
    _raise(errors)
    with acting_as(actor):
        if journey is None:
            journey = Journey.objects.create(
                name=name,
                description=str(data.get("description", "")),
                draft=graph,
                template_key=str(data.get("template_key", ""))[:50],
            )
        else:
            journey.name = name
            journey.description = str(data.get("description", journey.description))
            journey.draft = graph
            journey.save()
    return journey


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return JST


@transaction.atomic
def journey_publish(*, journey: Journey, actor: AbstractBaseUser | None = None) -> JourneyVersion:
    """Freeze the draft into a new version and make it live. Customers enrolled in earlier
    versions move to it by step id: a customer at a step that still exists continues there
    (waiting out a wait that is still a wait of the same type, otherwise due now); a customer
    at a step that no longer exists leaves the journey (`exit_reason` "step_removed"), so
    nobody is sent an earlier message a second time."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == JourneyStatus.ARCHIVED:
        _raise({"status": [_("An archived journey cannot be published.")]})
    graph_validate(graph=journey.draft)
    last = journey.versions.order_by("-number").first()
    at = now()
    with acting_as(actor):
        version = JourneyVersion.objects.create(
            journey=journey,
            number=(last.number + 1) if last else 1,
            graph=journey.draft,
            published_at=at,
        )
        journey.live_version = version
        journey.status = JourneyStatus.LIVE
        if not journey.event_cursor:  # the stream catch-up starts now, no backfill
            journey.event_cursor = Event.objects.aggregate(top=Max("pk"))["top"] or 0
        journey.save(update_fields=["live_version", "status", "event_cursor", "updated_at"])
    migrated = _migrate(journey, version, at)
    logger.info(
        "journey %s v%s published, %s enrolments migrated", journey.pk, version.number, migrated
    )
    _forget_index()
    _wake()
    return version


def _migrate(journey: Journey, version: JourneyVersion, at: datetime) -> dict[str, int]:
    nodes = g.nodes_by_id(version.graph)
    old = Enrolment.objects.filter(journey=journey, state__in=WATCHED_STATES).exclude(
        version=version
    )
    counts = {"kept": 0, "restarted": 0, "removed": 0}
    types = {
        v.pk: {nid: n.get("type") for nid, n in g.nodes_by_id(v.graph).items()}
        for v in journey.versions.exclude(pk=version.pk)
    }
    for enrolment in old.select_for_update().iterator(chunk_size=2000):
        if enrolment.state == EnrolmentState.HOLDOUT:
            enrolment.version = version
            counts["kept"] += 1
        elif enrolment.node not in nodes:
            enrolment.state = EnrolmentState.EXITED
            enrolment.exit_reason = "step_removed"
            enrolment.finished_at = at
            enrolment.next_due_at = None
            counts["removed"] += 1
        else:
            was = types.get(enrolment.version_id, {}).get(enrolment.node)
            enrolment.version = version
            if (
                enrolment.state == EnrolmentState.WAITING
                and nodes[enrolment.node].get("type") != was
            ):
                enrolment.state = EnrolmentState.ACTIVE
                enrolment.waiting_for = ""
                enrolment.event_seen = False
                enrolment.next_due_at = at
                counts["restarted"] += 1
            else:
                counts["kept"] += 1
        enrolment.save(
            update_fields=[
                "version",
                "state",
                "exit_reason",
                "finished_at",
                "next_due_at",
                "waiting_for",
                "event_seen",
            ]
        )
    return counts


def _set_status(journey: Journey, status: str, allowed: Sequence[str], actor: Any) -> Journey:
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status not in allowed:
        _raise(
            {
                "status": [
                    _("A %(status)s journey cannot be changed to %(new)s.")
                    % {"status": journey.status, "new": status}
                ]
            }
        )
    with acting_as(actor):
        journey.status = status
        journey.save(update_fields=["status", "updated_at"])
    _forget_index()
    return journey


@transaction.atomic
def journey_pause(*, journey: Journey, actor: AbstractBaseUser | None = None) -> Journey:
    """Stop entering and running: enrolled customers keep their place and wait."""
    return _set_status(journey, JourneyStatus.PAUSED, [JourneyStatus.LIVE], actor)


@transaction.atomic
def journey_resume(*, journey: Journey, actor: AbstractBaseUser | None = None) -> Journey:
    """Run again: steps that fell due while paused run now."""
    journey = _set_status(journey, JourneyStatus.LIVE, [JourneyStatus.PAUSED], actor)
    _wake()
    return journey


@transaction.atomic
def journey_archive(*, journey: Journey, actor: AbstractBaseUser | None = None) -> Journey:
    """End the journey: every enrolled customer leaves it (`exit_reason` "archived")."""
    journey = _set_status(
        journey,
        JourneyStatus.ARCHIVED,
        [JourneyStatus.DRAFT, JourneyStatus.LIVE, JourneyStatus.PAUSED],
        actor,
    )
    Enrolment.objects.filter(journey=journey, state__in=WATCHED_STATES).update(
        state=EnrolmentState.EXITED, exit_reason="archived", finished_at=now(), next_due_at=None
    )
    return journey


# --- enrolment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entrant:
    customer_id: int
    ref: str = ""  # what made them enter (event id, date): keys re-entry
    context: dict[str, Any] = field(default_factory=dict)


def _wake() -> None:
    def run() -> None:
        from kizuna.journeys import tasks

        tasks.run_due()

    transaction.on_commit(run)


def entry_key(journey_id: int, graph: dict[str, Any], entrant: Entrant, at: datetime) -> str:
    base = f"{journey_id}:{entrant.customer_id}"
    rule = (graph.get("entry") or {}).get("rule", "once")
    if rule == "once_per_period":
        return f"{base}:d{at.astimezone(JST):%Y%m%d}"
    if rule == "reentry":
        return f"{base}:e{(entrant.ref or f'{at.timestamp():.6f}')[:60]}"
    return base


@transaction.atomic
def enrol_many(*, journey: Journey, entrants: Iterable[Entrant], at: datetime | None = None) -> int:
    """Enter customers into a live journey under its entry rule (once ever, once per
    period, or re-entry when not already inside); a random `holdout_percent` of them is
    held out (they get no steps; their goal conversions are the comparison). Returns how
    many entered."""
    version = journey.live_version
    if journey.status != JourneyStatus.LIVE or version is None:
        return 0
    at = at or now()
    graph = version.graph
    entry = graph.get("entry") or {}
    rule = entry.get("rule", "once")
    holdout_percent = int(graph.get("holdout_percent", 0))
    goal_days = int((graph.get("goal") or {}).get("within_days", 30))
    wanted = {e.customer_id: e for e in entrants}  # one entry per customer per call
    if not wanted:
        return 0
    ids = list(wanted)
    skip: set[int] = set()
    if rule == "once_per_period":
        since = at - timedelta(days=int(entry["period_days"]))
        skip = set(
            Enrolment.objects.filter(
                journey=journey, customer_id__in=ids, entered_at__gt=since
            ).values_list("customer_id", flat=True)
        )
    elif rule == "reentry":
        skip = set(
            Enrolment.objects.filter(
                journey=journey, customer_id__in=ids, state__in=WATCHED_STATES
            ).values_list("customer_id", flat=True)
        )
    live = set(
        Customer.objects.filter(pk__in=ids, merged_into__isnull=True).values_list("pk", flat=True)
    )
    rows = []
    for cid, entrant in wanted.items():
        if cid in skip or cid not in live:
            continue
        key = entry_key(journey.pk, graph, entrant, at)
        holdout = holdout_percent > 0 and g.bucket("holdout", key) < holdout_percent
        rows.append(
            Enrolment(
                journey=journey,
                version=version,
                customer_id=cid,
                entry_key=key,
                node="" if holdout else graph["start"],
                state=EnrolmentState.HOLDOUT if holdout else EnrolmentState.ACTIVE,
                holdout=holdout,
                next_due_at=at + timedelta(days=goal_days) if holdout else at,
                context=entrant.context,
                entered_at=at,
            )
        )
    keys = [r.entry_key for r in rows]
    before = set(Enrolment.objects.filter(entry_key__in=keys).values_list("entry_key", flat=True))
    Enrolment.objects.bulk_create(
        [r for r in rows if r.entry_key not in before], batch_size=1000, ignore_conflicts=True
    )
    entered = Enrolment.objects.filter(entry_key__in=keys).count() - len(before)
    if entered:
        _wake()
    return entered


# --- the event index: which live journeys care about an event type -------------------------


@dataclass
class _Index:
    triggers: dict[str, list[int]]  # event type -> journey ids
    goals: dict[str, list[int]]
    waits: set[str]
    built_at: datetime


_index: _Index | None = None
INDEX_TTL = timedelta(seconds=30)


def _forget_index() -> None:
    global _index
    _index = None

    def later() -> None:
        global _index
        _index = None

    transaction.on_commit(later)


def trigger_event_type(trigger: dict[str, Any]) -> str | None:
    kind = trigger.get("type")
    if kind == "event":
        return str(trigger.get("event"))
    if kind == "segment_entered":
        return "segment.entered"
    if kind == "segment_left":
        return "segment.left"
    if kind == "score":
        return g.SCORES.get(str(trigger.get("score")))
    return None


def event_index() -> _Index:
    """Built from live journeys (and every version with customers still in it), cached
    for 30 s in each process (a change is seen at once in the process that made it)."""
    global _index
    at = now()
    if _index is not None and at - _index.built_at < INDEX_TTL:
        return _index
    triggers: dict[str, list[int]] = {}
    goals: dict[str, list[int]] = {}
    waits: set[str] = set()
    live = Journey.objects.filter(status=JourneyStatus.LIVE).select_related("live_version")
    for journey in live:
        graph = journey.live_version.graph if journey.live_version else {}
        event_type = trigger_event_type(graph.get("trigger") or {})
        if event_type:
            triggers.setdefault(event_type, []).append(journey.pk)
        if isinstance(graph.get("goal"), dict):
            goals.setdefault(graph["goal"]["event"], []).append(journey.pk)
    for version in JourneyVersion.objects.filter(
        journey__status__in=[JourneyStatus.LIVE, JourneyStatus.PAUSED]
    ).only("graph"):
        for node in g.nodes_by_id(version.graph).values():
            if node.get("type") == "wait_event":
                waits.add(str(node.get("event")))
    _index = _Index(triggers=triggers, goals=goals, waits=waits, built_at=at)
    return _index


def _trigger_matches(trigger: dict[str, Any], event: bus.DomainEvent) -> bool:
    kind = trigger.get("type")
    if kind == "event":
        return g.spec_matches(trigger, event.properties)
    if kind in ("segment_entered", "segment_left"):
        return event.properties.get("segment") == trigger.get("segment")
    if kind == "score":
        risk = event.properties.get("churn_risk")
        return isinstance(risk, int | float) and risk >= float(trigger["threshold"])
    return False


def on_events(events: Sequence[bus.DomainEvent]) -> None:
    """Bus subscriber of lists (every type, after commit): `on_event` for the events of a
    type some journey triggers on, converts on or waits for (one look at the index)."""
    index = event_index()
    wanted = index.triggers.keys() | index.goals.keys() | index.waits
    if wanted:
        bus.each(bus.of_types(events, wanted), on_event)


def on_event(event: bus.DomainEvent) -> None:
    """Bus subscriber (every type, after commit): enter journeys this event triggers, record
    goal conversions, and wake customers waiting for it."""
    if event.customer_id is None or event.type == SUPPORT_TASK_EVENT:
        return
    index = event_index()
    if not (event.type in index.triggers or event.type in index.goals or event.type in index.waits):
        return
    at = event.occurred_at or now()
    with transaction.atomic():
        if event.type in index.goals:
            goal_reached(journey_ids=index.goals[event.type], event=event)
        if event.type in index.waits and _event_arrived(event):
            _wake()
        for journey in Journey.objects.filter(
            pk__in=index.triggers.get(event.type, []), status=JourneyStatus.LIVE
        ).select_related("live_version"):
            graph = journey.live_version.graph if journey.live_version else {}
            if _trigger_matches(graph.get("trigger") or {}, event):
                ref = str(event.event_id or event.message_id or f"{at.timestamp():.6f}")
                enrol_many(
                    journey=journey,
                    entrants=[
                        Entrant(
                            customer_id=event.customer_id,
                            ref=ref,
                            context={"event": event.type, **_plain(event.properties)},
                        )
                    ],
                    at=now(),
                )


def _event_arrived(event: bus.DomainEvent) -> int:
    """Wake the customer's enrolments waiting for this event type whose wait_event step's
    property filters hold on it (the others keep waiting for a matching one)."""
    if event.customer_id is None:
        return 0
    waiting = list(
        Enrolment.objects.filter(
            customer_id=int(event.customer_id), state=EnrolmentState.WAITING, waiting_for=event.type
        ).values_list("pk", "node", "version_id")
    )
    if not waiting:
        return 0
    graphs = dict(
        JourneyVersion.objects.filter(pk__in={v for _pk, _n, v in waiting}).values_list(
            "pk", "graph"
        )
    )
    hit = []
    for pk, node_id, version_id in waiting:
        node = g.nodes_by_id(graphs.get(version_id) or {}).get(node_id) or {}
        if g.spec_matches(node, event.properties):
            hit.append(pk)
    if not hit:
        return 0
    return Enrolment.objects.filter(pk__in=hit, state=EnrolmentState.WAITING).update(
        event_seen=True, next_due_at=now()
    )


def _plain(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in list(properties.items())[:30] if isinstance(v, str | int | float | bool)
    }


def goal_reached(*, journey_ids: list[int], event: bus.DomainEvent) -> int:
    """Mark the goal met for the customer's enrolments that entered within the goal window
    (also after their path ended: the conversion is still the journey's); open ones leave."""
    at = event.occurred_at or now()
    converted = 0
    customer_id = event.customer_id
    if customer_id is None:
        return 0
    for journey in Journey.objects.filter(pk__in=journey_ids).select_related("live_version"):
        goal = (journey.live_version.graph if journey.live_version else {}).get("goal") or {}
        if not g.spec_matches(goal, event.properties):
            continue
        since = at - timedelta(days=int(goal.get("within_days", 30)))
        mine = Enrolment.objects.filter(
            journey=journey,
            customer_id=customer_id,
            converted_at__isnull=True,
            entered_at__gte=since,
            entered_at__lte=at,
        )
        converted += mine.update(converted_at=at)
        mine_open = Enrolment.objects.filter(
            journey=journey,
            customer_id=customer_id,
            state__in=WATCHED_STATES,
            converted_at=at,
        )
        mine_open.update(
            state=EnrolmentState.CONVERTED, finished_at=now(), next_due_at=None, exit_reason="goal"
        )
    return converted


def journeys_poll_stream(*, limit: int = 5000) -> dict[int, int]:
    """Catch-up for event triggers (every minute): events written to the stream without
    being published on the bus (batch writes such as loyalty's `tier.changed`), or whose
    bus delivery was lost. An event a customer already entered by (an enrolment since the
    event's time) is skipped, so the two paths never enter someone twice."""
    entered: dict[int, int] = {}
    for journey in Journey.objects.filter(status=JourneyStatus.LIVE).select_related("live_version"):
        trigger = (journey.live_version.graph if journey.live_version else {}).get("trigger") or {}
        if trigger.get("type") != "event":
            continue
        rows = list(
            Event.objects.filter(
                type=trigger["event"], pk__gt=journey.event_cursor, customer__isnull=False
            )
            .order_by("pk")
            .values_list("pk", "customer_id", "occurred_at", "properties")[:limit]
        )
        if not rows:
            continue
        with transaction.atomic():
            ids = {cid for _pk, cid, _at, _p in rows}
            latest: dict[int, datetime] = {}
            for cid, at in Enrolment.objects.filter(
                journey=journey, customer_id__in=list(ids), entered_at__gte=rows[0][2]
            ).values_list("customer_id", "entered_at"):
                latest[cid] = max(at, latest.get(cid, at))
            entrants = [
                Entrant(
                    customer_id=cid,
                    ref=str(pk),
                    context={"event": trigger["event"], **_plain(props)},
                )
                for pk, cid, at, props in rows
                if g.spec_matches(trigger, props) and not (cid in latest and latest[cid] >= at)
            ]
            entered[journey.pk] = enrol_many(journey=journey, entrants=entrants)
            Journey.objects.filter(pk=journey.pk).update(event_cursor=rows[-1][0])
    return entered


# --- daily triggers ------------------------------------------------------------------------


def journeys_daily_triggers(*, at: datetime | None = None) -> dict[int, int]:
    """Birthday / membership-anniversary and inactivity triggers, once a day (JST date)."""
    at = at or now()
    today = at.astimezone(JST).date()
    entered: dict[int, int] = {}
    for journey in Journey.objects.filter(status=JourneyStatus.LIVE).select_related("live_version"):
        trigger = (journey.live_version.graph if journey.live_version else {}).get("trigger") or {}
        kind = trigger.get("type")
        customers = Customer.objects.filter(merged_into__isnull=True)
        ref = f"{today:%Y%m%d}"
        if kind == "date":
            day = today + timedelta(days=int(trigger.get("days_before", 0)))
            if trigger["field"] == "birthday":
                customers = customers.filter(birthday__month=day.month, birthday__day=day.day)
            else:
                customers = customers.filter(
                    created_at__month=day.month,
                    created_at__day=day.day,
                    created_at__year__lt=day.year,
                )
            ids = list(customers.values_list("pk", flat=True))
            if trigger["field"] == "anniversary":  # created_at is UTC: check the JST date
                ids = [
                    pk
                    for pk, created in Customer.objects.filter(pk__in=ids).values_list(
                        "pk", "created_at"
                    )
                    if (created.astimezone(JST).month, created.astimezone(JST).day)
                    == (day.month, day.day)
                ]
            ref = f"{day.year}"
        elif kind == "inactivity":
            edge = at - timedelta(days=int(trigger["days"]))
            rows = customers.filter(last_seen_between(edge - timedelta(days=7), edge)).values_list(
                "pk", "last_seen_at"
            )
            entered[journey.pk] = enrol_many(
                journey=journey,
                entrants=[
                    Entrant(
                        customer_id=pk,
                        ref=f"{seen:%Y%m%d}",
                        context={"last_seen": seen.isoformat() if seen else ""},
                    )
                    for pk, seen in rows
                ],
                at=at,
            )
            continue
        else:
            continue
        entered[journey.pk] = enrol_many(
            journey=journey, entrants=[Entrant(customer_id=pk, ref=ref) for pk in ids], at=at
        )
    return entered


# --- the runner ----------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunResult:
    claimed: int = 0
    steps: int = 0
    finished: int = 0
    failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class _Batch:
    """Look-ups shared by the enrolments of one claimed batch."""

    def __init__(
        self, enrolments: list[Enrolment], at: datetime, worker: str, bulk: bool = True
    ) -> None:
        self.at = at
        self.worker = worker
        self.bulk = bulk
        ids = {e.customer_id for e in enrolments}
        self.customers = Customer.objects.in_bulk(list(ids))
        # one read of each version and journey for the whole batch (not one per enrolment)
        versions = JourneyVersion.objects.in_bulk(list({e.version_id for e in enrolments}))
        journeys = Journey.objects.in_bulk(list({e.journey_id for e in enrolments}))
        for enrolment in enrolments:
            enrolment.version = versions[enrolment.version_id]
            enrolment.journey = journeys[enrolment.journey_id]
        self._nodes: dict[int, dict[str, dict[str, Any]]] = {}
        # sends decided in this batch, queued with one bulk messaging call per
        # (journey, channel, template) at the end: (journey id, node, key, customer,
        # context, the step record's detail to fill in)
        self.pending: list[tuple[int, dict[str, Any], str, Customer, dict[str, Any], dict]] = []
        self.records: list[StepExecution] = []
        self._channels: dict[str, Any] = {}
        self._templates: dict[str, Any] = {}
        self._segments: dict[str, Any] = {}
        self._coupons: dict[Any, Any] = {}
        self._sends: dict[int, int] = {}
        self._caps_loaded: set[tuple[int, int]] = set()

    def nodes(self, version: JourneyVersion) -> dict[str, dict[str, Any]]:
        if version.pk not in self._nodes:
            self._nodes[version.pk] = g.nodes_by_id(version.graph)
        return self._nodes[version.pk]

    def flush_sends(self) -> None:
        """Queue this batch's sends in messaging: one keyed bulk enqueue per journey,
        channel and template (each delivery keyed by its step attempt), and fill in the
        step records' delivery ids. Same transaction as the step records."""
        from kizuna.messaging import services as messaging

        groups: dict[tuple[int, str, str], list[Any]] = {}
        for journey_id, node, key, customer, context, detail in self.pending:
            groups.setdefault((journey_id, node["channel"], node["template"]), []).append(
                (f"journey:{key}", customer, context, detail)
            )
        for (journey_id, channel, template), items in groups.items():
            queued = messaging.delivery_enqueue_keyed(
                source=f"journey:{journey_id}",
                channel=self.channel(channel),
                template=self.template(template),
                messages=[
                    messaging.QueuedMessage(
                        customer=customer, idempotency_key=key, extra_context=context
                    )
                    for key, customer, context, _detail in items
                ],
            )
            for key, _customer, _context, detail in items:
                detail["delivery_id"], detail["new"] = queued[key]
        self.pending = []

    def channel(self, name: str) -> Any:
        from kizuna.messaging.models import Channel

        if name not in self._channels:
            self._channels[name] = Channel.objects.get(name=name)
        return self._channels[name]

    def template(self, slug: str) -> Any:
        from kizuna.messaging.models import Template

        if slug not in self._templates:
            self._templates[slug] = Template.objects.get(slug=slug)
        return self._templates[slug]

    def segment(self, slug: str) -> Any:
        from kizuna.segments.models import Segment

        if slug not in self._segments:
            self._segments[slug] = Segment.objects.get(slug=slug)
        return self._segments[slug]

    def coupon(self, ref: Any) -> Any:
        from kizuna.loyalty.models import CouponDefinition

        if ref not in self._coupons:
            self._coupons[ref] = CouponDefinition.objects.get(
                Q(pk=ref) if isinstance(ref, int) else Q(name=str(ref))
            )
        return self._coupons[ref]

    def sends_within(self, customer_id: int, days: int) -> int:
        """Journey sends to the customer in the last `days` (every journey), with this
        batch's own sends counted."""
        if (customer_id, days) not in self._caps_loaded:
            self._caps_loaded.add((customer_id, days))
            self._sends[customer_id] = self._sends.get(customer_id, 0) + (
                StepExecution.objects.filter(
                    customer_id=customer_id,
                    kind="send",
                    outcome="queued",
                    executed_at__gte=self.at - timedelta(days=days),
                ).count()
            )
        return self._sends.get(customer_id, 0)

    def sent(self, customer_id: int) -> None:
        self._sends[customer_id] = self._sends.get(customer_id, 0) + 1


def _claim(at: datetime, limit: int) -> list[Enrolment]:
    qs = Enrolment.objects.filter(
        state__in=WATCHED_STATES, next_due_at__lte=at, journey__status=JourneyStatus.LIVE
    ).order_by("next_due_at")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs[:limit])


def journeys_run_due(
    *, limit: int = BATCH, worker: str | None = None, at: datetime | None = None
) -> RunResult:
    """Claim up to `limit` due enrolments and run each up to its next wait (or its end), in
    one transaction: the batch's sends go to messaging in one keyed bulk call, the step
    records are one bulk insert and the enrolments one bulk update. If that batch fails as a
    whole it is run again one step at a time, where a failing step only holds back its own
    customer (retried later, given up after 3 failures). `at` is the clock (now; tests and
    the simulation pass another)."""
    worker = worker or worker_name()
    try:
        return _run_batch(limit=limit, worker=worker, at=at, bulk=True)
    except Exception:
        logger.exception("journey batch failed in bulk: running it one step at a time")
        return _run_batch(limit=limit, worker=worker, at=at, bulk=False)


_FIELDS = [
    "node",
    "state",
    "next_due_at",
    "waiting_for",
    "event_seen",
    "steps",
    "visits",
    "finished_at",
    "exit_reason",
    "context",
]


def _run_batch(*, limit: int, worker: str, at: datetime | None, bulk: bool) -> RunResult:
    result = RunResult()
    with transaction.atomic():
        at = at or now()
        batch = _claim(at, limit)
        result.claimed = len(batch)
        if not batch:
            return result
        facts = _Batch(batch, at, worker, bulk=bulk)
        for enrolment in batch:
            _run(enrolment, facts, result)
        facts.flush_sends()
        StepExecution.objects.bulk_create(facts.records, batch_size=1000)
        Enrolment.objects.bulk_update(batch, _FIELDS, batch_size=500)
    result.steps = len(facts.records)
    return result


def _finish(enrolment: Enrolment, state: str, at: datetime, reason: str = "") -> None:
    enrolment.state = state
    enrolment.finished_at = at
    enrolment.next_due_at = None
    enrolment.waiting_for = ""
    enrolment.exit_reason = reason


def _run(enrolment: Enrolment, facts: _Batch, result: RunResult) -> None:
    at = facts.at
    if enrolment.state == EnrolmentState.HOLDOUT:
        _finish(enrolment, EnrolmentState.COMPLETED, at, "holdout_window_ended")
        result.finished += 1
        return
    graph = enrolment.version.graph
    nodes = facts.nodes(enrolment.version)
    customer = facts.customers.get(enrolment.customer_id)
    if customer is None or customer.merged_into_id is not None:
        _finish(enrolment, EnrolmentState.EXITED, at, "customer_gone")
        return
    for _i in range(MAX_STEPS_PER_RUN):
        node = nodes.get(enrolment.node)
        if node is None:
            _finish(enrolment, EnrolmentState.EXITED, at, "step_removed")
            return
        if enrolment.state == EnrolmentState.WAITING:  # a wait is over: leave it
            if node.get("type") == "wait_event":
                nxt = node.get("next") if enrolment.event_seen else node.get("timeout_next")
            else:
                nxt = node.get("next")
            enrolment.state = EnrolmentState.ACTIVE
            enrolment.waiting_for = ""
            enrolment.event_seen = False
            if not nxt:
                _finish(enrolment, EnrolmentState.COMPLETED, at)
                result.finished += 1
                return
            enrolment.node = nxt
            continue
        visit = int(enrolment.visits.get(enrolment.node, 0)) + 1
        key = f"j{enrolment.pk}:{enrolment.node}:{visit}"
        try:
            outcome, detail, nxt = _execute(node, enrolment, customer, key, graph, facts)
        except Exception as exc:  # a failing step is retried later, then given up
            logger.exception("journey step %s failed", key)
            failures = int(enrolment.context.get("_failures", 0)) + 1
            enrolment.context = {**enrolment.context, "_failures": failures}
            result.failed += 1
            if failures >= MAX_FAILURES:
                _finish(enrolment, EnrolmentState.EXITED, at, f"failed: {exc}"[:100])
            else:
                enrolment.next_due_at = at + RETRY_AFTER
            return
        enrolment.visits = {**enrolment.visits, enrolment.node: visit}
        enrolment.steps += 1
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        facts.records.append(
            StepExecution(
                enrolment_id=enrolment.pk,
                journey_id=enrolment.journey_id,
                customer_id=enrolment.customer_id,
                node=enrolment.node,
                kind=str(node.get("type")),
                attempt_key=key,
                outcome=outcome,
                detail=detail,
                executed_at=at,
                worker=facts.worker,
            )
        )
        if outcome == "waiting":
            return
        if node.get("type") == "exit" or not nxt:
            _finish(enrolment, EnrolmentState.COMPLETED, at)
            result.finished += 1
            return
        enrolment.node = nxt
        enrolment.next_due_at = at
    enrolment.next_due_at = at  # long instant chain: continue in the next claim


def wait_until_time(customer: Customer, node: dict[str, Any], at: datetime) -> datetime:
    """When a wait_until step ends: the next `time` in the customer's zone after `at`; with
    `day` "business_day" the next such time on a Japanese business day
    (`jp_calendar.is_business_day`: weekends, national holidays and the New Year break are
    skipped); with "next_business_day" that time on the first business day after the
    customer's local today (`jp_calendar.next_business_day`)."""
    from kizuna.core import jp_calendar

    zone = _zone(customer.timezone)
    wanted = g.parse_time(node["time"])
    assert wanted is not None
    local = at.astimezone(zone)
    day = local.date()
    mode = node.get("day", "any")
    if mode == "next_business_day":
        day = jp_calendar.next_business_day(day)
    elif datetime.combine(day, wanted, tzinfo=zone) <= local:
        day += timedelta(days=1)
    if mode == "business_day":
        day = jp_calendar.next_business_day(day, include_today=True)
    return datetime.combine(day, wanted, tzinfo=zone)


def condition_value(field_name: str, customer: Customer, context: dict[str, Any]) -> Any:
    scope, _dot, name = field_name.partition(".")
    if scope == "traits":
        return customer.traits.get(name, g._MISSING)
    if scope == "trigger":
        return context.get(name, g._MISSING)
    if scope == "score":
        from kizuna.analytics.models import CustomerScore

        score = CustomerScore.objects.filter(customer_id=customer.pk).first()
        if score is None:
            return g._MISSING
        if name == "churn_risk":
            return round(1.0 - float(score.p_alive), 4)
        return getattr(score, name, g._MISSING)
    if scope == "profile" and name in {f.name for f in Customer._meta.concrete_fields}:
        value = getattr(customer, name)
        return value.isoformat() if hasattr(value, "isoformat") else value
    return g._MISSING


def _execute(
    node: dict[str, Any],
    enrolment: Enrolment,
    customer: Customer,
    key: str,
    graph: dict[str, Any],
    facts: _Batch,
) -> tuple[str, dict[str, Any], str | None]:
    """Run one node: (outcome, detail, next node id). Side effects are keyed by `key`."""
    kind = node["type"]
    at = facts.at
    nxt = node.get("next")
    if kind in ("send", "webhook"):
        from kizuna.messaging import services as messaging

        cap = graph.get("frequency_cap")
        if kind == "send" and cap and facts.sends_within(customer.pk, cap["days"]) >= cap["sends"]:
            return "capped", {"cap": cap}, nxt
        context = {"journey": enrolment.journey.name, **enrolment.context}
        if kind == "send":
            facts.sent(customer.pk)
        if facts.bulk:  # queued with the batch's other sends (flush_sends), same transaction
            detail: dict[str, Any] = {}
            facts.pending.append((enrolment.journey_id, node, key, customer, context, detail))
            return "queued", detail, nxt
        # delivery_enqueue, points_award and coupons_issue are atomic themselves (a savepoint
        # here): a failing step rolls back only its own writes.
        delivery, created = messaging.delivery_enqueue(
            source=f"journey:{enrolment.journey_id}",
            customer=customer,
            channel=facts.channel(node["channel"]),
            template=facts.template(node["template"]),
            extra_context=context,
            idempotency_key=f"journey:{key}",
        )
        return "queued", {"delivery_id": delivery.pk, "new": created}, nxt
    if kind == "wait":
        duration = g.parse_duration(node["duration"])
        assert duration is not None
        enrolment.state = EnrolmentState.WAITING
        enrolment.next_due_at = at + duration
        return "waiting", {"until": enrolment.next_due_at.isoformat()}, nxt
    if kind == "wait_until":
        enrolment.state = EnrolmentState.WAITING
        enrolment.next_due_at = wait_until_time(customer, node, at)
        return "waiting", {"until": enrolment.next_due_at.isoformat()}, nxt
    if kind == "wait_event":
        timeout = g.parse_duration(node["timeout"])
        assert timeout is not None
        enrolment.state = EnrolmentState.WAITING
        enrolment.waiting_for = str(node["event"])
        enrolment.event_seen = False
        enrolment.next_due_at = at + timeout
        return "waiting", {"event": node["event"], "until": enrolment.next_due_at.isoformat()}, nxt
    if kind == "branch":
        cond = node["condition"]
        value = condition_value(cond["field"], customer, enrolment.context)
        yes = g.compare(value, cond.get("op", "eq"), cond.get("value"))
        return ("yes" if yes else "no"), {}, node["yes"] if yes else node["no"]
    if kind == "split":
        side_a = g.bucket("split", enrolment.pk, node["id"]) < int(node.get("percent", 50))
        return ("a" if side_a else "b"), {}, node["a"] if side_a else node["b"]
    if kind == "award_points":
        from kizuna.loyalty import services as loyalty

        entry = loyalty.points_award(
            customer=customer,
            points=int(node["points"]),
            idempotency_key=f"journey:{key}",
            reason=str(node.get("reason") or enrolment.journey.name)[:200],
            source_ref=f"journey:{enrolment.journey_id}",
            occurred_at=at,
        )
        return "awarded", {"entry_id": entry.pk, "points": int(node["points"])}, nxt
    if kind == "issue_coupon":
        from kizuna.loyalty import services as loyalty

        with transaction.atomic():
            coupons = loyalty.coupons_issue(
                definition=facts.coupon(node["coupon"]),
                idempotency_key=f"journey:{key}",
                customers=[customer],
                at=at,
            )
        return "issued", {"coupon_id": coupons[0].pk if coupons else None}, nxt
    if kind == "set_trait":
        from kizuna.customers.services import customer_update

        with transaction.atomic():
            customer_update(
                customer=customer, data={"traits": {node["key"]: node["value"]}}, source="journey"
            )
        return "set", {"key": node["key"]}, nxt
    if kind in ("add_to_segment", "remove_from_segment"):
        from kizuna.segments.models import SegmentMembership
        from kizuna.segments.services import segment_upload_static

        segment = facts.segment(node["segment"])
        with transaction.atomic():
            if kind == "add_to_segment":
                segment_upload_static(
                    segment=segment, text=f"customer_id\n{customer.pk}\n", replace=False
                )
            else:
                others = SegmentMembership.objects.filter(segment=segment).exclude(
                    customer_id=customer.pk
                )
                rest = "\n".join(str(c) for c in others.values_list("customer_id", flat=True))
                segment_upload_static(segment=segment, text=f"customer_id\n{rest}\n", replace=True)
        return ("added" if kind == "add_to_segment" else "removed"), {}, nxt
    if kind == "support_task":
        bus.publish(
            bus.DomainEvent(
                type=SUPPORT_TASK_EVENT,
                occurred_at=at,
                customer_id=customer.pk,
                message_id=f"journey:{key}",
                source="journeys",
                properties={
                    "journey_id": enrolment.journey_id,
                    "journey": enrolment.journey.name,
                    "step": node["id"],
                    "title": node["title"],
                },
            )
        )
        return "requested", {"title": node["title"]}, nxt
    if kind == "exit":
        return "exited", {}, None
    raise ValueError(f"unknown step type {kind}")


# --- templates -----------------------------------------------------------------------------


@transaction.atomic
def journey_from_template(
    *, key: str, email_channel: Any, name: str = "", actor: AbstractBaseUser | None = None
) -> Journey:
    """A draft journey from a ready-made template: the message templates, coupons and traits
    it needs are created when missing (existing ones with the same key are used as they
    are), and its sends go out on `email_channel`."""
    from kizuna.customers.models import TraitDefinition
    from kizuna.customers.services import trait_definition_create
    from kizuna.journeys import library
    from kizuna.loyalty.models import CouponDefinition
    from kizuna.loyalty.services import coupon_definition_create
    from kizuna.messaging import services as messaging
    from kizuna.messaging.models import Template

    spec = library.templates().get(key)
    if spec is None:
        _raise({"template": [_("There is no journey template %(key)s.") % {"key": key}]})
        raise AssertionError  # unreachable: for the type checker
    if email_channel is None or email_channel.kind != "email":
        _raise({"email_channel": [_("Choose an email channel.")]})
    for slug, variants in spec.get("messages", {}).items():
        if not Template.objects.filter(slug=slug).exists():
            messaging.template_save(
                slug=slug,
                name=f"{spec['name']}: {slug}",
                channel_kind="email",
                body_format="html",
                variants=variants,
                actor=actor,
            )
    for coupon_name, data in spec.get("coupons", {}).items():
        if not CouponDefinition.objects.filter(name=coupon_name).exists():
            coupon_definition_create(data={"name": coupon_name, **data}, actor=actor)
    for trait, trait_type in spec.get("traits", {}).items():
        if not TraitDefinition.objects.filter(key=trait).exists():
            trait_definition_create(key=trait, label=trait, type=trait_type)
    return journey_save(
        data={
            "name": name or spec["name"],
            "description": spec.get("description", ""),
            "graph": library.with_channel(spec["graph"], email_channel.name),
            "template_key": key,
        },
        actor=actor,
    )
