"""Fixtures: a real SMTP server (aiosmtpd) and a real HTTP server shaped like LINE's
Messaging API, both on loopback; channels, templates and customers made through services."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kizuna.customers import services as customer_services
from kizuna.customers.models import Customer
from kizuna.messaging import services
from kizuna.messaging.models import Channel, Template

ADDRESS = "〒150-0001 東京都渋谷区神宮前1-2-3 絆商店"


@pytest.fixture(autouse=True)
def _daytime(settings) -> None:
    """Tests do not depend on the hour they run at: quiet hours are off unless a test
    sets them."""
    settings.KIZUNA_QUIET_HOURS = "off"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        message = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


class SinkHandler:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.reject: dict[str, str] = {}  # recipient → SMTP reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, SinkHandler]]:
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@dataclass
class LineRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class LineApi:
    """A local server answering like api.line.me, checking what LINE documents: bearer auth,
    a UUID retry key, JSON bodies of 1-5 messages, 409 for a retry key seen before."""

    host: str
    token: str
    requests: list[LineRequest] = field(default_factory=list)
    accepted_keys: dict[str, str] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)


def _line_handler(api: LineApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append(
                LineRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                return self._reply(401, {"message": "Authentication failed"}, {})
            if self.path not in ("/v2/bot/message/push", "/v2/bot/message/multicast"):
                return self._reply(404, {"message": "Not found"}, {})
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                return self._reply(415, {"message": "Unsupported"}, {})
            key = self.headers.get("X-Line-Retry-Key")
            if key is not None:
                try:
                    uuid.UUID(key)
                except ValueError:
                    return self._reply(400, {"message": "The retry key is not a UUID"}, {})
            messages = body.get("messages")
            if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
                return self._reply(400, {"message": "messages: 1 to 5"}, {})
            target = body.get("to")
            if self.path.endswith("push") and not isinstance(target, str):
                return self._reply(400, {"message": "to must be a user id"}, {})
            if self.path.endswith("multicast") and not (
                isinstance(target, list) and 1 <= len(target) <= 500
            ):
                return self._reply(400, {"message": "to: 1 to 500 user ids"}, {})
            if api.fail_next:
                return self._reply(api.fail_next.pop(0), {"message": "try later"}, {})
            if key and key in api.accepted_keys:
                return self._reply(
                    409,
                    {"message": "The retry key is already accepted"},
                    {"x-line-accepted-request-id": api.accepted_keys[key]},
                )
            request_id = uuid.uuid4().hex
            if key:
                api.accepted_keys[key] = request_id
            if self.path.endswith("multicast"):
                return self._reply(200, {}, {"x-line-request-id": request_id})
            sent = [
                {"id": str(461230966842064897 + i), "quoteToken": "q"} for i in range(len(messages))
            ]
            return self._reply(200, {"sentMessages": sent}, {"x-line-request-id": request_id})

    return Handler


@pytest.fixture
def line_api() -> Iterator[LineApi]:
    port = free_port()
    api = LineApi(host=f"http://127.0.0.1:{port}", token="line-token-" + uuid.uuid4().hex[:8])
    server = ThreadingHTTPServer(("127.0.0.1", port), _line_handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def dkim_key() -> tuple[str, bytes]:
    """(private key PEM, the DNS TXT record publishing its public half)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def make_email_channel(port: int, **extra: Any) -> Channel:
    credentials = extra.pop("credentials", {})
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "from_address": "news@kizuna.example",
        "from_name": "絆商店",
        "physical_address": ADDRESS,
        "bounce_domain": "bounce.kizuna.example",
        **extra,
    }
    return services.channel_save(
        kind="email",
        name=f"mail-{port}-{uuid.uuid4().hex[:4]}",
        settings=settings,
        credentials=credentials,
    )


@pytest.fixture
def email_channel(
    smtp_server: tuple[Controller, SinkHandler], dkim_key: tuple[str, bytes]
) -> Channel:
    return make_email_channel(
        smtp_server[0].port,
        dkim_selector="kz1",
        credentials={"dkim_private_key": dkim_key[0], "inbound_token": "bounce-secret"},
    )


@pytest.fixture
def line_channel(line_api: LineApi) -> Channel:
    return services.channel_save(
        kind="line",
        name="LINE公式",
        settings={"host": line_api.host},
        credentials={"access_token": line_api.token, "channel_secret": "line-secret"},
    )


def drain_queue(huey: Any) -> int:
    """Run every task waiting in a lane's queue (tasks may enqueue more); how many ran."""
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        done += 1
    return done


def make_customer(
    email: str = "hanako@example.jp", *, opt_in: bool = True, **data: Any
) -> Customer:
    customer = customer_services.customer_create(
        data={"family_name": "山田", "given_name": "花子", "email": email, **data}
    )
    if opt_in:
        customer_services.consent_record(
            customer=customer, purpose="marketing", channel="email", status="granted", source="test"
        )
    return customer


@pytest.fixture
def customer(db: None) -> Customer:
    return make_customer()


NEWSLETTER_MJML = """<mjml>
  <mj-head><mj-style inline="inline">.lead { color: #7c4a2d; }</mj-style></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text css-class="lead">{{ customer.name }}様、こんにちは。</mj-text>
      <mj-button href="https://shop.example.jp/sale?utm=mail&amp;x=1">セールを見る</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""


@pytest.fixture
def newsletter(db: None) -> Template:
    return services.template_save(
        slug="newsletter",
        name="Newsletter",
        channel_kind="email",
        body_format="mjml",
        topic="sale",
        variants={
            "ja": {
                "subject": "{{ customer.name }}様へ 秋のセールのお知らせ",
                "body": NEWSLETTER_MJML,
            },
            "en": {
                "subject": "Autumn sale for {{ customer.given_name }}",
                "body": NEWSLETTER_MJML.replace("様、こんにちは。", ", hello."),
            },
        },
    )


@pytest.fixture
def line_template(db: None) -> Template:
    return services.template_save(
        slug="line-hello",
        name="LINE hello",
        channel_kind="line",
        body_format="text",
        variants={"ja": {"subject": "", "body": "{{ customer.name }}さん、新商品のお知らせです。"}},
    )


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run what would happen on commit (the queued task, bus subscribers) right away."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def follow(channel: Channel, customer: Customer, user_id: str) -> None:
    from kizuna.messaging.models import LineContact

    LineContact.objects.update_or_create(
        channel=channel, line_user_id=user_id, defaults={"customer": customer, "following": True}
    )
