"""Every API error as `{"detail": [{"field": ..., "message": ...}]}`.

Services raise Django's ValidationError keyed by field (`email`, `traits.favourite_drink`,
`lines[0].sku`); ninja raises its own ValidationError for request schemas (pydantic); both
become 422 with the same field paths. NotFound is 404, missing or bad credentials 401,
missing permissions or CSRF 403, malformed JSON 400, oversize bodies 413.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as SchemaValidationError

from kizuna.core.api import MalformedBody, PayloadTooLarge
from kizuna.core.errors import NotFound

Problem = tuple[str | None, str]


def error_body(problems: Iterable[Problem]) -> dict[str, Any]:
    return {"detail": [{"field": field, "message": str(message)} for field, message in problems]}


def field_path(parts: Sequence[Any]) -> str:
    """('lines', 0, 'sku') -> 'lines[0].sku', the form services use."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def schema_problems(errors: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        source = loc[0] if loc else ""
        # Body locations start with the parameter name ninja wraps the body in.
        parts = loc[2:] if source == "body" else loc[1:]
        kind = error.get("type", "")
        field = field_path(parts)
        if source == "body" and not parts:
            field = "body"
            message = _("A JSON object body is required.") if kind == "missing" else error["msg"]
        elif kind == "missing":
            message = _("This field is required.")
        elif kind == "extra_forbidden":
            message = _("Unknown field %(field)s.") % {"field": parts[-1] if parts else field}
        else:
            message = error.get("msg", _("Invalid value."))
        problems.append((field or None, message))
    return problems


def django_problems(exc: DjangoValidationError) -> list[Problem]:
    if hasattr(exc, "error_dict"):
        return [
            (None if field == NON_FIELD_ERRORS else field, message)
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [(None, message) for message in exc.messages]


def install(api: NinjaAPI) -> None:
    """Register the handlers on `api` (after ninja's defaults, which they override)."""

    def respond(request: HttpRequest, status: int, problems: Iterable[Problem]) -> HttpResponse:
        return api.create_response(request, error_body(problems), status=status)

    def on_django_validation(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 422, django_problems(exc))

    def on_schema_validation(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 422, schema_problems(exc.errors))

    def on_not_found(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 404, [(None, _("Not found."))])

    def on_unauthenticated(request: HttpRequest, exc: Any) -> HttpResponse:
        message = (
            exc.message
            if exc.message != "Unauthorized"
            else _(
                "Authentication required: send 'Authorization: Bearer <API key>' or log in to "
                "the console."
            )
        )
        response = respond(request, 401, [("Authorization", message)])
        response["WWW-Authenticate"] = 'Bearer realm="kizuna"'
        return response

    def on_http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        cause = exc.__cause__
        if isinstance(cause, MalformedBody):
            return respond(request, exc.status_code, [("body", str(cause))])
        return respond(request, exc.status_code, [(None, exc.message)])

    def on_too_large(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 413, [("body", str(exc))])

    api.add_exception_handler(DjangoValidationError, on_django_validation)
    api.add_exception_handler(SchemaValidationError, on_schema_validation)
    api.add_exception_handler(NotFound, on_not_found)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(AuthenticationError, on_unauthenticated)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(PayloadTooLarge, on_too_large)
