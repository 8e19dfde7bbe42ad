"""Lanes, circuit breakers and token buckets against real servers on loopback: a
transactional message overtakes a bulk backlog; a failing SMTP server (421 / 451 / hung), a
LINE API answering 500 or garbage and a webhook that times out back off alone while the
other channels keep sending; deferred deliveries resume when the breaker closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from kizuna.core.timeutil import now
from kizuna.messaging import breaker, lanes, services
from kizuna.messaging.channels.email import EmailSession
from kizuna.messaging.models import Breaker, Delivery, SendHold
from kizuna.messaging.tests.conftest import (
    SinkHandler,
    drain_queue,
    follow,
    free_port,
    make_customer,
    make_email_channel,
)

pytestmark = pytest.mark.django_db


class FlakySMTP(SinkHandler):
    """A sink that can refuse the session (421 on MAIL, 451 on DATA) or hang in DATA."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_reply: str | None = None
        self.data_reply: str | None = None
        self.hang: float = 0.0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.data_reply:
            return self.data_reply
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp() -> Iterator[tuple[Controller, FlakySMTP]]:
    handler = FlakySMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def _transactional_template():
    return services.template_save(
        slug="receipt",
        name="Receipt",
        channel_kind="email",
        body_format="html",
        purpose="transactional",
        variants={
            "ja": {"subject": "ご注文ありがとうございます", "body": "<p>{{ customer.name }}様</p>"}
        },
    )


def _customers(n: int, prefix: str = "c") -> list[int]:
    return [make_customer(f"{prefix}{i}@example.jp").pk for i in range(n)]


def test_lane_follows_the_origin() -> None:
    assert lanes.lane_for("campaign:3:a", "marketing") == "bulk"
    assert lanes.lane_for("journey:7:step:2", "marketing") == "journey"
    assert lanes.lane_for("order:12", "transactional") == "transactional"
    assert lanes.lane_for("password_reset:5", "marketing") == "transactional"
    assert lanes.lane_for("api:x", "marketing") == "bulk"


@pytest.fixture
def queued_lanes() -> Iterator[dict[str, Any]]:
    """The lane queues with real (SQLite) storage instead of running tasks at once."""
    hueys = {lane: lanes.huey_for(lane) for lane in lanes.LANES}
    for huey in hueys.values():
        huey.immediate = False
        huey.flush()
    yield hueys
    for huey in hueys.values():
        huey.flush()
        huey.immediate = True


def test_a_transactional_message_overtakes_a_bulk_backlog(
    commit, smtp_server, email_channel, newsletter, queued_lanes
) -> None:
    ids = _customers(300)
    queued = commit(
        services.delivery_enqueue_many,
        source="campaign:9:a",
        customer_ids=ids,
        channel=email_channel,
        template=newsletter,
    )
    assert queued == 300
    buyer = make_customer("buyer@example.jp", opt_in=False)
    receipt, _created = commit(
        services.delivery_enqueue,
        source="order:1",
        customer=buyer,
        channel=email_channel,
        template=_transactional_template(),
    )
    assert receipt.lane == "transactional"
    bulk, transactional = queued_lanes["bulk"], queued_lanes["transactional"]
    assert bulk.pending_count() == 2 and transactional.pending_count() == 1  # 200 per task
    # The transactional lane's worker runs while the whole bulk backlog is still queued.
    assert drain_queue(transactional) == 1
    received = smtp_server[1].messages
    assert [m.recipients for m in received] == [["buyer@example.jp"]]
    assert bulk.pending_count() == 2
    assert Delivery.objects.filter(lane="bulk", status="queued").count() == 300
    assert drain_queue(bulk) == 2
    assert len(received) == 301 and received[0].recipients == ["buyer@example.jp"]
    assert Delivery.objects.filter(status="sent").count() == 301


def _enqueue_all(commit, template, channel, ids, source="campaign:1:a") -> list[int]:
    commit(
        services.delivery_enqueue_many,
        source=source,
        customer_ids=ids,
        channel=channel,
        template=template,
    )
    return list(
        Delivery.objects.filter(source=source, channel=channel)
        .order_by("id")
        .values_list("pk", flat=True)
    )


@pytest.mark.parametrize("failure", ["mail421", "data451"])
def test_smtp_refusing_the_session_opens_the_breaker_and_line_keeps_flowing(
    failure, commit, flaky_smtp, line_api, line_channel, line_template, newsletter, queued_lanes
) -> None:
    controller, handler = flaky_smtp
    channel = make_email_channel(controller.port)
    if failure == "mail421":
        handler.mail_reply = "421 4.3.2 Service not available, closing channel"
    else:
        handler.data_reply = "451 4.3.0 Temporary local problem"
    email_ids = _customers(8)
    line_ids = []
    for i in range(3):
        customer = make_customer(f"line{i}@example.jp", opt_in=False)
        follow(line_channel, customer, "U" + f"{i:x}" * 32)
        line_ids.append(customer.pk)
    emails = _enqueue_all(lambda f, **k: f(**k), newsletter, channel, email_ids)
    pushes = _enqueue_all(lambda f, **k: f(**k), line_template, line_channel, line_ids)
    result = services.delivery_send_batch(delivery_ids=emails[:4] + pushes + emails[4:])
    assert sorted(result.sent) == sorted(pushes)  # LINE was not held up
    assert len(line_api.accepted_keys) == 3
    state = Breaker.objects.get(channel=channel)
    assert state.state == "open" and state.failures == breaker.THRESHOLD
    assert state.retry_at is not None and state.retry_at > now()
    rows = {d.pk: d for d in Delivery.objects.filter(pk__in=emails)}
    tried = [pk for pk in emails if rows[pk].reason.startswith(services.CHANNEL_REASON)]
    untried = [pk for pk in emails if rows[pk].reason.startswith(services.CIRCUIT_REASON)]
    assert len(tried) == breaker.THRESHOLD and len(untried) == 3
    assert all(rows[pk].status == "deferred" for pk in emails)
    assert all(rows[pk].attempts == 0 for pk in untried)  # no attempt spent while open
    assert all(rows[pk].not_before == state.retry_at for pk in untried)
    assert all((rows[pk].not_before or now()) > now() for pk in tried)
    assert sorted(pk for pk, _delay in result.retry) == sorted(emails)
    # Still open: another batch sends nothing and asks nothing of the server.
    handler.mail_reply = handler.data_reply = None
    again = services.delivery_send_batch(delivery_ids=emails)
    assert again.sent == [] and handler.messages == []
    # The retry time comes: one probe closes the breaker; everything deferred is queued again.
    Breaker.objects.filter(channel=channel).update(retry_at=now() - timedelta(seconds=1))
    Delivery.objects.filter(pk=emails[0]).update(not_before=now() - timedelta(seconds=1))
    probe = commit(services.delivery_send_batch, delivery_ids=[emails[0]])
    assert probe.sent == [emails[0]]
    assert Breaker.objects.get(channel=channel).state == "closed"
    drain_queue(queued_lanes["bulk"])  # the resumed deliveries, queued on their lane
    assert Delivery.objects.filter(pk__in=emails, status="sent").count() == 8
    assert sorted(r for m in handler.messages for r in m.recipients) == sorted(
        f"c{i}@example.jp" for i in range(8)
    )  # each exactly once


def test_a_hung_smtp_server_times_out_and_the_webhook_and_line_still_send(
    flaky_smtp, line_api, line_channel, line_template, newsletter
) -> None:
    controller, handler = flaky_smtp
    handler.hang = 3.0
    channel = make_email_channel(controller.port, timeout=1)
    customer = make_customer("slow@example.jp")
    follow(line_channel, customer, "U" + "b" * 32)
    (email,) = _enqueue_all(lambda f, **k: f(**k), newsletter, channel, [customer.pk])
    (push,) = _enqueue_all(lambda f, **k: f(**k), line_template, line_channel, [customer.pk])
    result = services.delivery_send_batch(delivery_ids=[email, push])
    assert result.sent == [push]
    row = Delivery.objects.get(pk=email)
    assert row.status == "deferred" and "timed out" in row.reason.lower(), row.reason
    assert Breaker.objects.get(channel=channel).failures == 1  # one fault: still closed


class _Answers:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0


def _http_server(answers: _Answers) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            answers.requests += 1
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if answers.mode == "slow":
                threading.Event().wait(2.0)
            status, body = {
                "ok": (200, b'{"sentMessages": []}'),
                "500": (500, b'{"message": "internal"}'),
                "garbage": (200, b"<html>upstream proxy error"),
                "slow": (200, b"{}"),
            }[answers.mode]
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


@pytest.mark.parametrize("mode", ["500", "garbage"])
def test_line_failing_backs_off_alone_and_email_keeps_flowing(
    mode, smtp_server, email_channel, newsletter
) -> None:
    answers = _Answers()
    answers.mode = mode
    server, port = _http_server(answers)
    try:
        line = services.channel_save(
            kind="line",
            name="LINE broken",
            settings={"host": f"http://127.0.0.1:{port}"},
            credentials={"access_token": "t", "channel_secret": "s"},
        )
        template = services.template_save(
            slug="line-b",
            name="LINE b",
            channel_kind="line",
            body_format="text",
            variants={"ja": {"subject": "", "body": "こんにちは"}},
        )
        ids = []
        for i in range(7):
            customer = make_customer(f"m{i}@example.jp")
            follow(line, customer, "U" + f"{i:x}" * 32)
            ids.append(customer.pk)
        pushes = _enqueue_all(lambda f, **k: f(**k), template, line, ids)
        emails = _enqueue_all(lambda f, **k: f(**k), newsletter, email_channel, ids)
        mixed = [x for pair in zip(pushes, emails, strict=True) for x in pair]
        result = services.delivery_send_batch(delivery_ids=mixed)
        assert sorted(result.sent) == sorted(emails)
        assert len(smtp_server[1].messages) == 7
        assert answers.requests == breaker.THRESHOLD  # then the breaker stopped asking
        rows = Delivery.objects.filter(pk__in=pushes)
        assert {r.status for r in rows} == {"deferred"}
        assert Breaker.objects.get(channel=line).state == "open"
        first = rows.get(pk=pushes[0])
        assert first.reason.startswith(services.CHANNEL_REASON)
        if mode == "500":
            assert "500" in first.reason
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_that_times_out_defers_only_its_own_deliveries(
    smtp_server, email_channel, newsletter
) -> None:
    answers = _Answers()
    answers.mode = "slow"
    server, port = _http_server(answers)
    try:
        hook = services.channel_save(
            kind="webhook",
            name="crm hook",
            settings={"url": f"http://127.0.0.1:{port}/hook", "timeout": 0.5},
            credentials={"secret": "s3cret"},
        )
        template = services.template_save(
            slug="hook",
            name="hook",
            channel_kind="webhook",
            body_format="json",
            purpose="transactional",
            variants={"ja": {"subject": "", "body": '{"name": "{{ customer.name }}"}'}},
        )
        ids = _customers(2, "w")
        hooks = _enqueue_all(lambda f, **k: f(**k), template, hook, ids, source="order:2")
        emails = _enqueue_all(lambda f, **k: f(**k), newsletter, email_channel, ids)
        result = services.delivery_send_batch(delivery_ids=hooks + emails)
        assert sorted(result.sent) == sorted(emails)
        rows = Delivery.objects.filter(pk__in=hooks)
        assert {r.status for r in rows} == {"deferred"}
        assert all("timed out" in r.reason.lower() for r in rows), [r.reason for r in rows]
    finally:
        server.shutdown()
        server.server_close()


def test_channel_and_domain_token_buckets_pace_the_batch(smtp_server, newsletter, dkim_key) -> None:
    channel = make_email_channel(smtp_server[0].port, rate_per_second=3)
    ids = _customers(5)
    deliveries = _enqueue_all(lambda f, **k: f(**k), newsletter, channel, ids)
    result = services.delivery_send_batch(delivery_ids=deliveries)
    assert result.sent == deliveries[:3]
    assert [pk for pk, _d in result.retry] == deliveries[3:]
    assert all(0 < delay <= 1 for _pk, delay in result.retry)
    assert Delivery.objects.filter(pk__in=deliveries[3:], status="queued").count() == 2

    by_domain = make_email_channel(smtp_server[0].port, domain_rates={"slow.example": 1, "*": 100})
    slow = [make_customer(f"s{i}@slow.example").pk for i in range(3)]
    fast = _customers(2, "f")
    deliveries = _enqueue_all(
        lambda f, **k: f(**k), newsletter, by_domain, slow + fast, source="campaign:2:a"
    )
    result = services.delivery_send_batch(delivery_ids=deliveries)
    assert len(result.sent) == 3 and len(result.retry) == 2
    sent_to = set(Delivery.objects.filter(pk__in=result.sent).values_list("to_address", flat=True))
    assert {"f0@example.jp", "f1@example.jp"} <= sent_to  # the other domain is not held up
    assert len([a for a in sent_to if a.endswith("@slow.example")]) == 1


def test_bad_rate_settings_are_refused(smtp_server) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        make_email_channel(smtp_server[0].port, rate_per_second=0, domain_rates={"x": "fast"})
    assert set(caught.value.message_dict) == {"settings.rate_per_second", "settings.domain_rates"}


def test_a_held_lane_is_left_queued_until_released(
    commit, smtp_server, email_channel, newsletter
) -> None:
    services.send_hold(key="lane:bulk")
    deliveries = _enqueue_all(commit, newsletter, email_channel, _customers(2))
    assert Delivery.objects.filter(pk__in=deliveries, status="queued").count() == 2
    assert smtp_server[1].messages == []
    commit(services.send_release, key="lane:bulk")
    assert not SendHold.objects.exists()
    assert Delivery.objects.filter(pk__in=deliveries, status="sent").count() == 2


def test_a_pause_made_while_a_bulk_task_sends_stops_it_at_the_next_group(
    commit, smtp_server, email_channel, newsletter, settings, monkeypatch
) -> None:
    """A bulk task carries up to 200 deliveries; the holds are read again before each group,
    so a campaign paused mid-task sends no more than the group in flight."""
    settings.KIZUNA_SEND_GROUP = 5
    services.send_hold(key="lane:bulk")  # queue without sending yet
    ids = _enqueue_all(commit, newsletter, email_channel, _customers(20), source="campaign:4:a")
    SendHold.objects.all().delete()
    real_send = EmailSession.send

    def send(self: EmailSession, message: Any) -> Any:
        if message.delivery_id == ids[2]:  # the 3rd message of the first group
            services.send_hold(key="source:campaign:4:")
        return real_send(self, message)

    monkeypatch.setattr(EmailSession, "send", send)
    result = services.delivery_send_batch(delivery_ids=ids)
    assert sorted(result.sent) == ids[:5]  # the group in flight finishes
    assert sorted(result.skipped) == ids[5:]
    assert Delivery.objects.filter(pk__in=ids[5:], status="queued").count() == 15
    commit(services.send_release, key="source:campaign:4:")
    assert Delivery.objects.filter(pk__in=ids, status="sent").count() == 20
    assert len(smtp_server[1].messages) == 20
