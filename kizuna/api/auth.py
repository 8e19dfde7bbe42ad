"""Authentication of the API as a whole; per-route permissions are in kizuna.iam.authz."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required

from kizuna.iam.authz import ApiKeyAuth, StaffSessionAuth, request_actor, require_perm

# Any authenticated caller; every route narrows this with the permission it needs.
AUTHENTICATED = require_perm(None)


def docs_guard(view: Callable[..., Any]) -> Callable[..., Any]:
    """The interactive docs page is for staff logged in to the console."""
    return staff_member_required(view)


__all__ = [
    "AUTHENTICATED",
    "ApiKeyAuth",
    "StaffSessionAuth",
    "docs_guard",
    "request_actor",
    "require_perm",
]
