"""A local HTTP server speaking the LINE API shapes line_marketing uses (audience upload,
narrowcast, rich menus and their images, per-user and bulk links), checking what LINE
documents: bearer auth, JSON bodies, retry keys (409 when seen before), limits."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kizuna.customers.services import customer_create
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Channel, LineContact
from kizuna.segments.services import segment_save


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LineServer:
    host: str
    token: str
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    audiences: dict[int, list[str]] = field(default_factory=dict)
    menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # user id -> rich menu id
    narrowcasts: list[dict[str, Any]] = field(default_factory=list)
    accepted_keys: dict[str, str] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # request id -> audience group
    progress_phase: str = "succeeded"  # what the progress API reports
    audience_status: str = "READY"
    default_menu: str = ""
    # LINE Login: authorization code -> (LINE user id, redirect uri it was issued for)
    login_channel_id: str = "1650000000"
    login_secret: str = "login-secret"
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)


def _handler(api: LineServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
            data = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _read(self) -> tuple[bytes, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.headers.get("Content-Type", "").split(";")[0]
            return raw, (json.loads(raw or b"{}") if kind == "application/json" else raw)

        def _auth(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                self._reply(401, {"message": "Authentication failed"})
                return False
            return True

        def _login(self, method: str, raw: bytes) -> bool:
            """LINE Login's token and profile endpoints; True if the path was one."""
            if method == "POST" and self.path == "/oauth2/v2.1/token":
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                issued = api.codes.pop(form.get("code", ""), None)
                if (
                    form.get("grant_type") != "authorization_code"
                    or form.get("client_id") != api.login_channel_id
                    or form.get("client_secret") != api.login_secret
                    or issued is None
                    or issued[1] != form.get("redirect_uri")
                ):
                    self._reply(400, {"error": "invalid_grant"})
                    return True
                access = "at-" + uuid.uuid4().hex
                api.access_tokens[access] = issued[0]
                self._reply(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 2592000,
                        "scope": "profile openid",
                        "id_token": "x.y.z",
                    },
                )
                return True
            if method == "GET" and self.path == "/v2/profile":
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if bearer not in api.access_tokens:
                    self._reply(401, {"message": "invalid token"})
                    return True
                self._reply(200, {"userId": api.access_tokens[bearer], "displayName": "太郎"})
                return True
            return False

        def _reads(self, path: str) -> bool:
            """GETs: an audience group's status, a narrowcast's progress."""
            parsed = urllib.parse.urlsplit(path)
            if parsed.path.startswith("/v2/bot/audienceGroup/"):
                group = int(parsed.path.rsplit("/", 1)[1])
                if group not in api.audiences:
                    self._reply(404, {"message": "audience group not found"})
                    return True
                self._reply(
                    200,
                    {
                        "audienceGroup": {
                            "audienceGroupId": group,
                            "type": "UPLOAD",
                            "description": "d",
                            "status": api.audience_status,
                            "audienceCount": len(api.audiences[group]),
                            "created": 1764547200,
                            "isIfaAudience": False,
                        },
                        "jobs": [],
                    },
                )
                return True
            if parsed.path == "/v2/bot/message/progress/narrowcast":
                request_id = urllib.parse.parse_qs(parsed.query).get("requestId", [""])[0]
                if request_id not in api.sent:
                    self._reply(404, {"message": "request not found"})
                    return True
                targets = len(api.audiences[api.sent[request_id]])
                done = api.progress_phase == "succeeded"
                body: dict[str, Any] = {
                    "phase": api.progress_phase,
                    "acceptedTime": "2026-12-01T10:00:00.000Z",
                }
                if done:
                    body.update(successCount=targets, failureCount=0, targetCount=targets)
                if api.progress_phase == "failed":
                    body.update(failedDescription="audience too small", errorCode=2)
                self._reply(200, body)
                return True
            return False

        def _handle(self, method: str) -> None:
            raw, body = self._read()
            api.requests.append((method, self.path, dict(self.headers), body))
            if self._login(method, raw):
                return
            if not self._auth():
                return
            path = self.path
            if method == "GET" and self._reads(path):
                return
            if method == "POST" and path.startswith("/v2/bot/user/all/richmenu/"):
                menu_id = path.rsplit("/", 1)[1]
                if menu_id not in api.menus:
                    return self._reply(404, {"message": "rich menu not found"})
                api.default_menu = menu_id
                return self._reply(200, {})
            if method == "POST" and path == "/v2/bot/audienceGroup/upload":
                ids = [a["id"] for a in body.get("audiences", [])]
                if not body.get("description") or len(ids) > 10_000:
                    return self._reply(400, {"message": "description; at most 10000 ids"})
                group = 4_000_000 + len(api.audiences) + 1
                api.audiences[group] = ids
                return self._reply(
                    202,
                    {
                        "audienceGroupId": group,
                        "type": "UPLOAD",
                        "description": body["description"],
                    },
                )
            if method == "PUT" and path == "/v2/bot/audienceGroup/upload":
                group = body.get("audienceGroupId")
                if group not in api.audiences:
                    return self._reply(400, {"message": "no such audience"})
                api.audiences[group] += [a["id"] for a in body.get("audiences", [])]
                return self._reply(202, {})
            if method == "POST" and path == "/v2/bot/message/narrowcast":
                key = self.headers.get("X-Line-Retry-Key")
                if key and key in api.accepted_keys:
                    return self._reply(
                        409,
                        {"message": "The retry key is already accepted"},
                        {"x-line-accepted-request-id": api.accepted_keys[key]},
                    )
                recipient = body.get("recipient") or {}
                if recipient.get("type") != "audience" or (
                    recipient.get("audienceGroupId") not in api.audiences
                ):
                    return self._reply(400, {"message": "unknown audience"})
                if not 1 <= len(body.get("messages") or []) <= 5:
                    return self._reply(400, {"message": "messages: 1 to 5"})
                request_id = uuid.uuid4().hex
                if key:
                    api.accepted_keys[key] = request_id
                api.sent[request_id] = recipient["audienceGroupId"]
                api.narrowcasts.append(body)
                return self._reply(202, {}, {"x-line-request-id": request_id})
            if method == "POST" and path == "/v2/bot/richmenu":
                if not body.get("areas") or not body.get("size"):
                    return self._reply(400, {"message": "size and areas are required"})
                menu_id = "richmenu-" + uuid.uuid4().hex
                api.menus[menu_id] = body
                return self._reply(200, {"richMenuId": menu_id})
            if (
                method == "POST"
                and path.startswith("/v2/bot/richmenu/")
                and path.endswith("/content")
            ):
                menu_id = path.split("/")[4]
                kind = self.headers.get("Content-Type", "")
                if menu_id not in api.menus or kind not in ("image/png", "image/jpeg"):
                    return self._reply(400, {"message": "unknown menu or image type"})
                api.images[menu_id] = (kind, raw)
                return self._reply(200, {})
            if method == "POST" and path == "/v2/bot/richmenu/bulk/link":
                users = body.get("userIds") or []
                if body.get("richMenuId") not in api.menus or not 1 <= len(users) <= 500:
                    return self._reply(400, {"message": "menu; 1 to 500 users"})
                for user in users:
                    api.links[user] = body["richMenuId"]
                return self._reply(202, {})
            if method == "POST" and path.startswith("/v2/bot/user/"):
                _, _, _, _, user, _, menu_id = path.split("/")
                if menu_id not in api.menus:
                    return self._reply(404, {"message": "rich menu not found"})
                api.links[user] = menu_id
                return self._reply(200, {})
            return self._reply(404, {"message": "Not found"})

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_GET(self) -> None:
            self._handle("GET")

    return Handler


@pytest.fixture
def line_server() -> Iterator[LineServer]:
    port = free_port()
    api = LineServer(host=f"http://127.0.0.1:{port}", token="tok-" + uuid.uuid4().hex[:8])
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def channel(db: None, line_server: LineServer) -> Channel:
    return messaging.channel_save(
        kind="line",
        name="LINE公式",
        settings={"host": line_server.host},
        credentials={"access_token": line_server.token, "channel_secret": "secret"},
    )


@pytest.fixture
def login_channel(channel: Channel, line_server: LineServer) -> Channel:
    from kizuna.line_marketing.login import login_channel_save

    login_channel_save(
        channel=channel,
        login_channel_id=line_server.login_channel_id,
        secret=line_server.login_secret,
        authorize_host=line_server.host,
    )
    return channel


def line_id(n: int) -> str:
    return "U" + f"{n:032x}"


@pytest.fixture
def tokyo(db: None, channel: Channel):
    """A segment (customers in Tokyo): three follow the LINE account, one has blocked it,
    one in Osaka follows too."""
    segment = segment_save(
        data={
            "name": "東京の会員",
            "rules": {
                "version": 1,
                "match": "all",
                "conditions": [{"field": "profile.prefecture", "op": "in", "value": ["JP-13"]}],
            },
        }
    )
    for n, (pref, following) in enumerate(
        [("JP-13", True), ("JP-13", True), ("JP-13", True), ("JP-13", False), ("JP-27", True)]
    ):
        customer = customer_create(data={"family_name": f"会員{n}", "prefecture": pref})
        LineContact.objects.create(
            channel=channel, line_user_id=line_id(n), customer=customer, following=following
        )
    return segment
