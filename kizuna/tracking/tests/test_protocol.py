"""The Segment protocol as pure functions: no database."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kizuna.tracking import protocol
from kizuna.tracking.protocol import ProtocolError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_gzip_body_is_decoded_and_capped() -> None:
    raw = json.dumps({"batch": []}).encode()
    assert protocol.decode_body(gzip.compress(raw), "gzip") == raw
    big = gzip.compress(b"[" + b"1," * 300_000 + b"1]")
    with pytest.raises(ProtocolError) as exc:
        protocol.decode_body(big, "gzip")
    assert exc.value.status == 413


def test_invalid_gzip_is_a_400_naming_gzip() -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.decode_body(b"not gzip at all", "gzip")
    assert exc.value.status == 400 and "gzip" in exc.value.message
    truncated = gzip.compress(b'{"batch": []}' * 50)[:20]
    with pytest.raises(ProtocolError) as exc:
        protocol.decode_body(truncated, "gzip")
    assert exc.value.status == 400


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.parse_json(b'{"batch": [}')
    assert exc.value.status == 400 and "column 12" in exc.value.message
    with pytest.raises(ProtocolError):
        protocol.parse_json(b"[1, 2]")


def test_basic_auth_user_name_is_the_write_key() -> None:
    header = "Basic " + base64.b64encode(b"kzw_abc:").decode()
    assert protocol.basic_auth_user(header) == "kzw_abc"
    assert protocol.basic_auth_user("Bearer x") == ""
    assert protocol.basic_auth_user("Basic !!!") == ""


def test_clock_skew_is_corrected_as_the_spec_says() -> None:
    # The device clock is 1 hour ahead: it sent at 13:00 (its time) an event of 12:50.
    sent = NOW + timedelta(hours=1)
    original = sent - timedelta(minutes=10)
    fixed = protocol.corrected_timestamp(original=original, sent_at=sent, received_at=NOW)
    assert fixed == NOW - timedelta(minutes=10)
    assert protocol.corrected_timestamp(original=None, sent_at=sent, received_at=NOW) == NOW
    assert (
        protocol.corrected_timestamp(original=original, sent_at=None, received_at=NOW) == original
    )


def _batch(*messages: dict, **extra: object) -> dict:
    return {"batch": list(messages), **extra}


def test_batch_keeps_good_messages_and_reports_bad_ones_by_index() -> None:
    data = _batch(
        {"type": "track", "event": "Viewed", "userId": "u1", "messageId": "m1"},
        {"type": "track", "event": "Viewed"},
        {"type": "identify", "anonymousId": "a1", "traits": ["not", "an", "object"]},
        {"type": "track", "event": "Later", "userId": "u1", "timestamp": "2030-01-01T00:00:00Z"},
        {"type": "nope", "userId": "u1"},
        {"type": "track", "userId": "u1", "timestamp": "yesterday", "event": "X"},
    )
    accepted = protocol.accept(data, kind="batch", received_at=NOW)
    assert [m["messageId"] for m in accepted.messages] == ["m1"]
    fields = dict(accepted.errors)
    assert "userId or anonymousId" in fields["batch[1]"]
    assert "object" in fields["batch[2].traits"]
    assert "future" in fields["batch[3].timestamp"]
    assert "type must be one of" in fields["batch[4].type"]
    assert "ISO 8601" in fields["batch[5].timestamp"]
    assert json.loads(accepted.payload) == [protocol.stored_row(m) for m in accepted.messages]


def test_single_message_errors_refuse_the_request() -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.accept({"event": "X"}, kind="track", received_at=NOW)
    assert exc.value.status == 400 and exc.value.field == "track"
    huge = {"userId": "u", "event": "X", "properties": {"blob": "x" * 40_000}}
    with pytest.raises(ProtocolError) as exc:
        protocol.accept(huge, kind="track", received_at=NOW)
    assert exc.value.status == 413


def test_message_normalisation_keeps_context_times_and_null_ids() -> None:
    sent = NOW + timedelta(hours=2)
    data = _batch(
        {
            "type": "identify",
            "userId": 42,
            "anonymousId": None,  # segment-analytics-python sends explicit nulls
            "context": {"traits": {"email": "a@example.com"}, "ip": "1.2.3.4"},
            "timestamp": (sent - timedelta(seconds=30)).isoformat(),
        },
        sentAt=sent.isoformat(),
    )
    [message] = protocol.accept(data, kind="batch", received_at=NOW).messages
    assert message["userId"] == "42" and message["anonymousId"] == ""
    assert message["traits"] == {"email": "a@example.com"}  # rudder's context.traits
    assert message["context"]["ip"] == "1.2.3.4"
    assert message["timestamp"] == (NOW - timedelta(seconds=30)).isoformat()
    assert message["receivedAt"] == NOW.isoformat()
    assert message["originalTimestamp"] == (sent - timedelta(seconds=30)).isoformat()
    assert len(message["messageId"]) == 32  # drawn when the client gave none


def test_the_inbox_stores_each_message_as_its_event_row() -> None:
    """The web process writes a message's event row (properties and context as JSON text);
    the worker reads those rows, and converts a payload of message objects (stored before
    the row form) to the same rows."""
    jst = timezone(timedelta(hours=9))
    data = _batch(
        {
            "type": "page",
            "userId": "u1",
            "name": "ホーム",
            "properties": {"path": "/"},
            "context": {"ip": "1.2.3.4"},
            "integrations": {"All": True},
            "messageId": "m-page",
            # No sentAt: the client's own time, with its offset, stored in UTC.
            "timestamp": "2026-05-01T20:30:00.250000+09:00",
        },
        {"type": "track", "anonymousId": "a1", "event": " Viewed ", "messageId": "m-track"},
        {"type": "identify", "userId": "u2", "traits": {"email": "b@example.com"}},
        {"type": "alias", "userId": "u2", "previousId": "a1", "messageId": "m-alias"},
    )
    accepted = protocol.accept(data, kind="batch", received_at=NOW)
    page, track, identify, alias = json.loads(accepted.payload)
    assert page[: protocol.ROW_TIMESTAMP] == ["m-page", "page", "page", "u1", ""]
    moment = datetime(2026, 5, 1, 20, 30, 0, 250000, tzinfo=jst)
    assert page[protocol.ROW_TIMESTAMP] == moment.astimezone(UTC).isoformat()
    assert page[protocol.ROW_RECEIVED_AT] == NOW.isoformat()
    assert json.loads(page[protocol.ROW_PROPERTIES]) == {"path": "/", "name": "ホーム"}
    assert json.loads(page[protocol.ROW_CONTEXT]) == {
        "ip": "1.2.3.4",
        "_segment": {
            "originalTimestamp": "2026-05-01T20:30:00.250000+09:00",
            "userId": "u1",
            "integrations": {"All": True},
        },
    }
    assert accepted.messages[0]["properties"] == {"path": "/"}  # the message itself unchanged
    assert track[protocol.ROW_EVENT] == "Viewed" and track[protocol.ROW_ANONYMOUS_ID] == "a1"
    assert json.loads(track[protocol.ROW_CONTEXT]) == {}  # nothing kept: no _segment
    assert json.loads(identify[protocol.ROW_PROPERTIES]) == {"email": "b@example.com"}
    assert json.loads(alias[protocol.ROW_PROPERTIES]) == {"previousId": "a1"}
    # A payload of message objects reads as the same rows.
    old_payload = json.dumps(accepted.messages)
    assert protocol.stored_rows(old_payload) == json.loads(accepted.payload)
    assert protocol.stored_rows("[]") == []


def test_alias_needs_previous_id() -> None:
    accepted = protocol.accept(
        _batch({"type": "alias", "userId": "u"}), kind="batch", received_at=NOW
    )
    assert accepted.messages == [] and accepted.errors[0][0] == "batch[0].previousId"
