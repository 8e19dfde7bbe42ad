"""The database router for the tracking inbox: `InboxBatch` lives in the `inbox` database
when the settings define one (the SQLite default: a file of its own, so that accepting
/v1/ requests never waits for the worker's write lock on the main database), else in the
main database with everything else."""

from __future__ import annotations

from typing import Any

from django.conf import settings

INBOX = "inbox"
_INBOX_MODEL = "tracking.inboxbatch"


def inbox_database() -> str:
    return INBOX if INBOX in settings.DATABASES else "default"


class InboxRouter:
    def _route(self, model: type[Any]) -> str | None:
        if model._meta.label_lower == _INBOX_MODEL and INBOX in settings.DATABASES:
            return INBOX
        return None

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return self._route(model)

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return self._route(model)

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if db == INBOX:
            return app_label == "tracking" and model_name == "inboxbatch"
        # The main database keeps its inbox table too: batches stored there before the
        # inbox had a file of its own are still drained (tasks.drain).
        return None
