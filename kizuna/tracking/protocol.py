"""Segment's HTTP Tracking API, as pure functions: body decoding, message validation and
clock-skew correction. No database; the views and the worker call these.

Spec: https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.utils.translation import gettext as _

from kizuna.core import ids

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TYPES = ("identify", "track", "page", "screen", "group", "alias")
SHORT_PATHS = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group"}
SHORT_PATHS.update({"a": "alias", "b": "batch"})


class ProtocolError(Exception):
    """A whole request refused: `status` is the HTTP status, `field` what was wrong."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


@dataclass
class Accepted:
    messages: list[dict[str, Any]]
    payload: str  # JSON array of the messages' stored rows (`stored_row`), as in the inbox
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, message)
    write_key: str = ""


def decode_body(raw: bytes, content_encoding: str, *, limit: int = MAX_BATCH_BYTES) -> bytes:
    """The body, gunzipped if so declared, refused past `limit` bytes once decoded."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        body = raw
    elif encoding == "gzip":
        try:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            body = inflater.decompress(raw, limit + 1)
            if not inflater.eof and len(body) <= limit:
                raise ProtocolError(400, "body", _("Invalid gzip body: the stream is truncated."))
        except zlib.error as exc:
            raise ProtocolError(400, "body", _("Invalid gzip body: %(e)s.") % {"e": exc}) from exc
    else:
        raise ProtocolError(
            415, "Content-Encoding", _("Unsupported Content-Encoding %(e)s.") % {"e": encoding}
        )
    if len(body) > limit:
        raise ProtocolError(413, "body", _("The batch is larger than %(n)d bytes.") % {"n": limit})
    return body


def _loads(body: bytes | str) -> Any:
    """orjson (several times faster), falling back to the standard library for what orjson
    refuses but JSON allows (integers past 64 bits) and for its precise error positions."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson; the standard library for integers past 64 bits)."""
    try:
        return orjson.dumps(value, default=str)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


loads: Callable[[bytes | str], Any] = _loads  # the worker reads stored payloads with it


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = _loads(body)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            400,
            "body",
            _("Malformed JSON: %(msg)s (line %(line)d, column %(col)d).")
            % {"msg": exc.msg, "line": exc.lineno, "col": exc.colno},
        ) from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError(400, "body", _("The body is not UTF-8 text.")) from exc
    if not isinstance(data, dict):
        raise ProtocolError(400, "body", _("The body must be a JSON object."))
    return data


def basic_auth_user(header: str) -> str:
    """The user name of an HTTP Basic `Authorization` header ('' if none or not Basic)."""
    scheme, _sep, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _id(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def corrected_timestamp(
    *, original: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """`timestamp = receivedAt - (sentAt - originalTimestamp)` when the client said when it
    sent; its own time when it did not; receivedAt when it gave no time at all."""
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def check_message(
    message: Any,
    *,
    kind: str | None,
    sent_at: datetime | None,
    received_at: datetime,
    at: str,
    received_text: str = "",
) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Validate and normalise one message; returns (message, None) or (None, (field, error))."""
    if not isinstance(message, dict):
        return None, (at, _("A message must be a JSON object."))
    kind = kind or message.get("type")
    if kind not in TYPES:
        return None, (f"{at}.type", _("type must be one of: %(t)s.") % {"t": ", ".join(TYPES)})
    user_id, anonymous_id = _id(message.get("userId")), _id(message.get("anonymousId"))
    if not user_id and not anonymous_id:
        return None, (at, _("Either userId or anonymousId is required."))
    if len(user_id) > 255 or len(anonymous_id) > 100:
        return None, (f"{at}.userId", _("userId/anonymousId is too long."))
    out = dict(message)
    out["type"] = kind
    out["userId"], out["anonymousId"] = user_id, anonymous_id
    if kind == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip() or len(event) > 100:
            return None, (f"{at}.event", _("A track call needs an event name of 1-100 characters."))
    if kind == "alias":
        previous = _id(message.get("previousId"))
        if not previous or not user_id:
            return None, (f"{at}.previousId", _("An alias call needs previousId and userId."))
        out["previousId"] = previous
    if kind == "group" and not _id(message.get("groupId")):
        return None, (f"{at}.groupId", _("A group call needs a groupId."))
    for name in ("traits", "properties", "context"):
        value = message.get(name)
        if value is None:
            out[name] = {}
        elif not isinstance(value, dict):
            return None, (f"{at}.{name}", _("%(f)s must be a JSON object.") % {"f": name})
    context_traits = out["context"].get("traits")
    if kind == "identify" and isinstance(context_traits, dict) and context_traits:
        # rudder-sdk-python sends identify traits in context.traits.
        out["traits"] = {**context_traits, **out["traits"]}
    message_id = message.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or len(message_id) > 100):
        return None, (f"{at}.messageId", _("messageId must be text of at most 100 characters."))
    out["messageId"] = message_id or ids.message_id()
    raw_time = message.get("originalTimestamp") or message.get("timestamp")
    original = parse_time(raw_time)
    if raw_time is not None and original is None:
        return None, (f"{at}.timestamp", _("timestamp must be an ISO 8601 date-time."))
    own_sent = parse_time(message.get("sentAt")) or sent_at
    moment = corrected_timestamp(original=original, sent_at=own_sent, received_at=received_at)
    if moment > received_at + MAX_FUTURE:
        return None, (f"{at}.timestamp", _("timestamp is more than a day in the future."))
    if moment < EARLIEST:
        return None, (f"{at}.timestamp", _("timestamp is before the year 2000."))
    out["originalTimestamp"] = raw_time
    # In UTC (the instant unchanged; the client's own text is kept as originalTimestamp):
    # the worker writes SQLite's stored form from this text without parsing it.
    out["timestamp"] = moment.astimezone(UTC).isoformat()
    out["receivedAt"] = received_text or received_at.isoformat()
    return out, None


def accept(
    data: dict[str, Any], *, kind: str, received_at: datetime, write_key: str = ""
) -> Accepted:
    """Validate a request body for `kind` ("batch" or a message type). Invalid messages in a
    batch are dropped and reported; a single invalid message refuses the request (400)."""
    body_key = data.get("writeKey")
    key = write_key or (body_key if isinstance(body_key, str) else "")
    sent_at = parse_time(data.get("sentAt"))
    if kind == "batch":
        items = data.get("batch")
        if not isinstance(items, list):
            raise ProtocolError(400, "batch", _("batch must be a JSON array of messages."))
        labelled: list[tuple[Any, str | None, str]] = [
            (item, None, f"batch[{i}]") for i, item in enumerate(items)
        ]
    else:
        labelled = [(data, kind, kind)]
    kept: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    errors: list[tuple[str, str]] = []
    received_text = received_at.isoformat()
    for item, item_kind, at in labelled:
        message, error = check_message(
            item,
            kind=item_kind,
            sent_at=sent_at,
            received_at=received_at,
            at=at,
            received_text=received_text,
        )
        oversize = False
        if message is not None:
            if len(dumps(message)) > MAX_MESSAGE_BYTES:
                oversize = True
                error = (at, _("A message is larger than 32 KB."))
            else:
                kept.append(message)
                rows.append(stored_row(message))
        if error is not None:
            if kind != "batch":
                status = 413 if oversize else 400
                raise ProtocolError(status, error[0], error[1])
            errors.append(error)
    # One dump of all the rows (text only): an orjson result kept per row holds a buffer of
    # its own each, and allocating those cost several times the dumping (page faults).
    return Accepted(
        messages=kept,
        payload=dumps(rows).decode(),
        errors=errors,
        write_key=key,
    )


# --- the stored form of a message ---------------------------------------------------------

# A stored row: a list of these, in this order (JSON, in the inbox batch's payload).
ROW_MESSAGE_ID, ROW_TYPE, ROW_EVENT, ROW_USER_ID, ROW_ANONYMOUS_ID = range(5)
ROW_TIMESTAMP, ROW_RECEIVED_AT, ROW_PROPERTIES, ROW_CONTEXT = range(5, 9)
_KEPT_TOP_LEVEL = ("originalTimestamp", "sentAt", "userId", "integrations")


def event_type(message: dict[str, Any]) -> str:
    """The event stream's type of a message: a track's event name, else the call's type."""
    kind = message["type"]
    return str(message["event"]).strip() if kind == "track" else kind


def event_properties(message: dict[str, Any]) -> dict[str, Any]:
    """The event stream's properties: an identify's traits, a track's or page's properties."""
    kind = message["type"]
    if kind == "identify":
        return message.get("traits") or {}
    if kind == "group":
        return {"groupId": message.get("groupId"), "traits": message.get("traits") or {}}
    if kind == "alias":
        return {"previousId": message.get("previousId")}
    props: dict[str, Any] = message.get("properties") or {}
    if kind in ("page", "screen") and message.get("name") and "name" not in props:
        props = {**props, "name": message["name"]}
    return props


def event_context(message: dict[str, Any]) -> dict[str, Any]:
    """The message's context, with what Segment keeps at the top level (the original
    timestamp, sentAt, userId, integrations; None, "" and {} left out) under `_segment`."""
    context: dict[str, Any] = message.get("context") or {}
    extra = {key: message[key] for key in _KEPT_TOP_LEVEL if message.get(key)}
    return {**context, "_segment": extra} if extra else context


def stored_row(message: dict[str, Any]) -> list[Any]:
    """A validated message as the inbox stores it: the values of its event row, properties
    and context as JSON text. The web process writes them once; the worker then neither
    parses nor serialises a message's properties and context again (on SQLite they are
    stored as they are), only reads the identify traits (its properties) it resolves."""
    return [
        message["messageId"],
        message["type"],
        event_type(message),
        message["userId"],
        message["anonymousId"],
        message["timestamp"],
        message["receivedAt"],
        dumps(event_properties(message)).decode(),
        dumps(event_context(message)).decode(),
    ]


def stored_rows(payload: str) -> list[list[Any]]:
    """The stored rows of an inbox batch's payload; a payload of message objects (stored
    before the row form) is converted."""
    items: list[Any] = loads(payload)
    if items and isinstance(items[0], dict):
        return [stored_row(message) for message in items]
    return items


def gzip_bytes(data: bytes) -> bytes:
    """For tests and benches: what a client sends with Content-Encoding: gzip."""
    return gzip.compress(data)
