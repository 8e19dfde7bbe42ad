"""Audiences' reactions to domain events of lower layers."""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.db import IntegrityError, transaction

from kizuna.core.events import WILDCARD, DomainEvent, subscribe, subscribe_many
from kizuna.core.timeutil import now
from kizuna.customers.merge import MERGED_EVENT, UNMERGED_EVENT, merge_note_moved
from kizuna.segments.models import Segment, SegmentMembership

# Keys of a merge's snapshot: static-list memberships moved, and lists both profiles were in.
MOVED_KEY, SHARED_KEY = "segment_memberships", "segment_lists_shared"

# Events that never change who is in a segment (or would feed back into a refresh).
IGNORED_PREFIXES = ("segment.", "email.", "line.", "message.", "webhook.")
# Until this monotonic time this process need not ask the queue again: it scheduled a
# refresh that starts after it (or, for a few seconds, found one already pending). A stream
# of ingested events then costs a call to the queue's storage now and then, not per event.
_skip_until = {"at": float("-inf")}
PENDING_RECHECK_SECONDS = 5


def refresh_on_event(event: DomainEvent) -> None:
    """Any change to a customer (profile, consent, orders, points, tracked events) can
    change a dynamic segment: ask for a debounced refresh of all of them."""
    if event.customer_id is None or event.type.startswith(IGNORED_PREFIXES):
        return
    from kizuna.segments import tasks

    moment = time.monotonic()
    if moment < _skip_until["at"]:
        return
    if tasks.request_refresh():
        # the refresh starts DEBOUNCE_SECONDS from now, after everything until then
        _skip_until["at"] = moment + tasks.DEBOUNCE_SECONDS - 1
    else:
        _skip_until["at"] = moment + PENDING_RECHECK_SECONDS


def refresh_on_events(events: Sequence[DomainEvent]) -> None:
    """`refresh_on_event` once for a list of events: one refresh covers them all (the
    events are read until the first that asks for one)."""
    for event in events:
        if event.customer_id is not None and not event.type.startswith(IGNORED_PREFIXES):
            refresh_on_event(event)
            return


def memberships_follow_merge(event: DomainEvent) -> None:
    """`customer.merged`: the merged profile's static-list memberships move to the survivor
    (inside the merge's transaction); where the survivor is already a member they go. Both are
    noted in the merge's snapshot, so an unmerge gives the lists back."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    rows = list(SegmentMembership.objects.filter(customer_id=merged, segment__kind="static"))
    moved: list[int] = []
    shared: list[int] = []  # segments both were in: the merged profile's row is deleted
    for row in rows:
        try:
            with transaction.atomic():
                SegmentMembership.objects.filter(pk=row.pk).update(customer_id=survivor)
            moved.append(row.pk)
        except IntegrityError:
            SegmentMembership.objects.filter(pk=row.pk).delete()
            shared.append(row.segment_id)
    merge_id = event.properties.get("merge_id")
    if merge_id and moved:
        merge_note_moved(merge_id=merge_id, key=MOVED_KEY, row_ids=moved)
    if merge_id and shared:
        merge_note_moved(merge_id=merge_id, key=SHARED_KEY, row_ids=shared)


def memberships_follow_unmerge(event: DomainEvent) -> None:
    """`customer.unmerged`: the static-list memberships the merge moved go back to the restored
    profile (those still with the survivor), and it is a member again of the lists both were
    in. Dynamic segments follow at the next refresh (the unmerge requests one)."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    moved = event.properties.get("moved", {})
    SegmentMembership.objects.filter(pk__in=moved.get(MOVED_KEY, []), customer_id=survivor).update(
        customer_id=merged
    )
    static = Segment.objects.filter(pk__in=moved.get(SHARED_KEY, []), kind="static")
    present = set(
        SegmentMembership.objects.filter(customer_id=merged, segment__in=static).values_list(
            "segment_id", flat=True
        )
    )
    SegmentMembership.objects.bulk_create(
        [
            SegmentMembership(segment_id=pk, customer_id=merged, entered_at=now())
            for pk in static.values_list("pk", flat=True)
            if pk not in present
        ]
    )


def register() -> None:
    subscribe_many(WILDCARD, refresh_on_events)
    subscribe(MERGED_EVENT, memberships_follow_merge, in_transaction=True)
    subscribe(UNMERGED_EVENT, memberships_follow_unmerge, in_transaction=True)
