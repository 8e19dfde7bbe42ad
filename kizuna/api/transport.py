"""How request and response bodies travel: a strict JSON parser, a renderer that writes
times in the installation's time zone with their offset, and the body-size guard."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from kizuna.core.api import MalformedBody, PayloadTooLarge


def _reject_constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not valid JSON.") % {"name": name})


# Integers the databases can store (64-bit signed): a larger one in a body, a query or a path
# is refused here instead of overflowing in the database (found by the schemathesis run).
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?\d+")


def _out_of_range(text: str) -> bool:
    return bool(_INTEGER.fullmatch(text.strip())) and abs(int(text)) > INT64_MAX


def _parse_int(text: str) -> int:
    if _out_of_range(text):
        raise ValueError(_("The number %(n).30s… is out of range (at most 64 bits).") % {"n": text})
    return int(text)


class JSONObjectParser(Parser):
    """Bodies are JSON objects; anything else is a 400 that says what is wrong."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body, parse_constant=_reject_constant, parse_int=_parse_int)
        except json.JSONDecodeError as exc:
            raise MalformedBody(
                _("Malformed JSON: %(msg)s (line %(line)d, column %(col)d).")
                % {"msg": exc.msg, "line": exc.lineno, "col": exc.colno}
            ) from exc
        except UnicodeDecodeError as exc:
            raise MalformedBody(_("The body is not UTF-8 text.")) from exc
        except ValueError as exc:
            raise MalformedBody(str(exc)) from exc
        if not isinstance(data, dict):
            raise MalformedBody(_("The body must be a JSON object."))
        return data


class _Encoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime) and timezone.is_aware(o):
            return timezone.localtime(o).isoformat()
        return super().default(o)


class LocalTimeJSONRenderer(JSONRenderer):
    """ISO 8601 times with the offset of TIME_ZONE (e.g. 2026-04-01T09:30:00+09:00)."""

    encoder_class = _Encoder
    json_dumps_params = {"ensure_ascii": False}


def max_body_bytes() -> int:
    return int(settings.KIZUNA_API_MAX_BODY_BYTES)


def body_size_guard(api: NinjaAPI) -> Callable[[Callable[..., HttpResponse]], Any]:
    """A view decorator refusing bodies over the limit with 413, before authentication and
    parsing: first by the declared Content-Length, then by the bytes actually read; and
    integers too large for the database in the query or the path with 422."""

    def decorator(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(run)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            limit = max_body_bytes()
            too_large = PayloadTooLarge(
                _("The request body is larger than %(n)d bytes.") % {"n": limit}
            )
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                return api.on_exception(request, too_large)
            try:
                body = request.body
            except RequestDataTooBig:
                return api.on_exception(request, too_large)
            if len(body) > limit:
                return api.on_exception(request, too_large)
            params = [*request.GET.lists(), *((k, [str(v)]) for k, v in kwargs.items())]
            for name, values in params:
                if any(_out_of_range(value) for value in values):
                    message = _("Out of range (at most 64 bits).")
                    return api.on_exception(request, ValidationError({name: [message]}))
            return run(request, *args, **kwargs)

        return guarded

    return decorator
