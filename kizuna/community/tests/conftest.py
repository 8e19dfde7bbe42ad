from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from kizuna.community import services
from kizuna.community.models import CommunityEvent, EventStatus
from kizuna.core.timeutil import now
from kizuna.customers.services import customer_create


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


def make_event(capacity: int = 2, starts_in: timedelta = timedelta(days=3), **extra: Any):
    start = now() + starts_in
    event = services.event_create(
        data={
            "slug": extra.pop("slug", "tasting-1"),
            "title": "秋の試飲会",
            "title_en": "Autumn tasting",
            "kind": "tasting",
            "starts_at": start,
            "ends_at": start + timedelta(hours=2),
            "venue": "渋谷店",
            "capacity": capacity,
            **extra,
        }
    )
    return services.event_set_status(event=event, status=EventStatus.PUBLISHED)


@pytest.fixture
def event(db: None) -> CommunityEvent:
    return make_event()


@pytest.fixture
def people(db: None) -> list[Any]:
    return [
        customer_create(data={"email": f"p{n}@example.jp", "family_name": f"客{n}"})
        for n in range(4)
    ]
