"""Background work of privacy: the nightly retention run (docs/privacy.md)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.privacy import retention


@db_periodic_task(crontab(hour="3", minute="40"))
def nightly_retention() -> None:
    retention.run(trigger="worker")
