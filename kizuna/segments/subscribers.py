"""Audiences' reactions to domain events of lower layers."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction

from kizuna.core.events import WILDCARD, DomainEvent, subscribe
from kizuna.segments.models import SegmentMembership

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


def memberships_follow_merge(event: DomainEvent) -> None:
    """`customer.merged`: the merged profile's static-list memberships move to the survivor
    (inside the merge's transaction); where the survivor is already a member they go."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    rows = list(SegmentMembership.objects.filter(customer_id=merged, segment__kind="static"))
    for row in rows:
        try:
            with transaction.atomic():
                SegmentMembership.objects.filter(pk=row.pk).update(customer_id=survivor)
        except IntegrityError:
            SegmentMembership.objects.filter(pk=row.pk).delete()


def register() -> None:
    subscribe(WILDCARD, refresh_on_event)
    subscribe("customer.merged", memberships_follow_merge, in_transaction=True)
