"""Bus subscriptions of journeys (registered in `JourneysConfig.ready`)."""

from __future__ import annotations

from kizuna.core.events import WILDCARD, subscribe
from kizuna.journeys import services


def register() -> None:
    # After commit, every type: triggers, goals and wait-for-event steps; the index of
    # the types live journeys care about keeps this cheap for the others.
    subscribe(WILDCARD, services.on_event)
