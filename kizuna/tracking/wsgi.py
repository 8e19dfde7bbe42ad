"""A lean WSGI handler for the ingestion endpoints (`/v1/...`).

The Segment-compatible views authenticate by write key and need none of the staff site's
middleware (sessions, CSRF, locale, messages, CSP, audit, htmx): on the hottest path of the
installation each of them is per-request work for nothing. `kizuna.wsgi` sends `/v1/` here;
Django's request signals still run (connection hygiene), and the URL resolution and views
are the very same as through the full handler.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils import translation

from kizuna.core.memory import settle_loaded_objects

PREFIX = "/v1/"


class IngestHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # Built once the project is loaded: from here on the cyclic garbage collector leaves
        # the loaded modules' objects alone, and a batch's thousands of parsed objects too
        # (`core.memory`: about a third of the CPU per accepted message otherwise).
        settle_loaded_objects()

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._ingest_response)

    def _ingest_response(self, request: HttpRequest) -> HttpResponseBase:
        # Error messages in the client's language, as LocaleMiddleware would choose it.
        translation.activate(translation.get_language_from_request(request))
        try:
            return self._get_response(request)  # type: ignore[attr-defined]
        finally:
            translation.deactivate()


def dispatch(full: Any, lean: Any) -> Any:
    """A WSGI application sending `/v1/...` to `lean` and everything else to `full`."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return lean(environ, start_response)
        return full(environ, start_response)

    return application
