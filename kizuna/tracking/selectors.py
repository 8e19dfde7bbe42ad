"""Reads of the tracking app."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import Count, QuerySet, Sum

from kizuna.core import ids
from kizuna.tracking.models import InboxBatch, Source

_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, SourceRef | None]] = {}


@dataclass(frozen=True)
class SourceRef:
    id: int
    slug: str


def source_authenticate(write_key: str) -> SourceRef | None:
    """The active source a write key belongs to (looked up by digest; a revoked key stops
    working within `_CACHE_SECONDS` in every web process)."""
    if not write_key or len(write_key) > 200:
        return None
    digest = ids.digest(write_key)
    hit = _cache.get(digest)
    clock = time.monotonic()
    if hit is not None and hit[0] > clock:
        return hit[1]
    row = (
        Source.objects.filter(write_key_digest=digest, revoked_at__isnull=True)
        .values_list("id", "slug")
        .first()
    )
    ref = SourceRef(id=row[0], slug=row[1]) if row else None
    if len(_cache) > 1000:
        _cache.clear()
    _cache[digest] = (clock + _CACHE_SECONDS, ref)
    return ref


def source_list() -> QuerySet[Source]:
    return Source.objects.select_related("created_by").order_by("name")


def inbox_stats() -> dict[str, int]:
    pending = InboxBatch.objects.filter(processed_at__isnull=True).aggregate(
        batches=Count("id"), messages=Sum("message_count")
    )
    return {"batches": pending["batches"] or 0, "messages": pending["messages"] or 0}
