"""Attributing writes to the staff user who made them (django-auditlog's actor)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from auditlog.context import set_actor


def acting_as(actor: Any | None) -> AbstractContextManager[Any]:
    """Record `actor` on audit log entries written inside the block (no-op for None or
    anonymous users, e.g. imports and the worker)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return nullcontext()
    return set_actor(actor)
