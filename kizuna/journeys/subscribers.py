"""Bus subscriptions of journeys (registered in `JourneysConfig.ready`)."""

from __future__ import annotations

from kizuna.core.events import WILDCARD, subscribe_many
from kizuna.journeys import services


def register() -> None:
    # After commit, every type: triggers, goals and wait-for-event steps; the index of
    # the types live journeys care about keeps this cheap for the others (looked at once
    # per list of events).
    subscribe_many(WILDCARD, services.on_events)
