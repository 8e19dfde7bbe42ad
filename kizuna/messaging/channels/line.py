"""LINE through line-bot-sdk v3: push (one user) and multicast (up to 500), text, image and
Flex messages, each request with an `X-Line-Retry-Key` derived from the delivery, so a retry
after a crash is answered 409 (already accepted) instead of sending twice."""

from __future__ import annotations

import uuid
from typing import Any

from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
)
from linebot.v3.messaging.models import Message

from kizuna.messaging import crypto
from kizuna.messaging.channels import ChannelConfigError, OutboundMessage, Outcome
from kizuna.messaging.models import Channel

DEFAULT_HOST = "https://api.line.me"
MAX_MESSAGES = 5
MAX_MULTICAST = 500
RETRY_NAMESPACE = uuid.UUID("6f1c1f1e-3d0a-4c55-9a3e-6b1f0c0e7a11")


def retry_key(idempotency_key: str) -> str:
    """A stable UUID per delivery: the same key on every attempt."""
    return str(uuid.uuid5(RETRY_NAMESPACE, idempotency_key))


def to_sdk(messages: list[dict[str, Any]]) -> list[Message]:
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValueError(f"LINE accepts 1 to {MAX_MESSAGES} messages per request")
    return [Message.from_dict(m) for m in messages]


class LineSession:
    def __init__(self, channel: Channel) -> None:
        secrets = crypto.decrypt(channel.credentials_encrypted)
        token = secrets.get("access_token")
        if not token:
            raise ChannelConfigError("the LINE channel has no access token")
        host = str(channel.settings.get("host") or DEFAULT_HOST).rstrip("/")
        self.client = ApiClient(Configuration(host=host, access_token=str(token)))
        self.api = MessagingApi(self.client)
        self.timeout = (5.0, float(channel.settings.get("timeout") or 20))

    def send(self, message: OutboundMessage) -> Outcome:
        key = retry_key(message.idempotency_key)
        try:
            request = PushMessageRequest(
                to=message.to, messages=to_sdk(message.rendered.get("line_messages", []))
            )
        except ValueError as exc:  # refused before anything was sent
            return Outcome(ok=False, reason=f"invalid message: {exc}"[:300])
        try:
            response = self.api.push_message_with_http_info(
                request, x_line_retry_key=key, _request_timeout=self.timeout
            )
        except ApiException as exc:
            return _failure(exc, key)
        except Exception as exc:
            # Sent again later with the same retry key: LINE answers 409 if it had accepted.
            return Outcome(
                ok=False,
                temporary=True,
                reason=f"{type(exc).__name__}: {exc}"[:300],
                channel_fault=True,
            )
        request_id = (response.headers or {}).get("x-line-request-id", "")
        return Outcome(ok=True, provider_id=str(request_id or key))

    def multicast(
        self, *, user_ids: list[str], messages: list[dict[str, Any]], key: str
    ) -> Outcome:
        """One message to many users (no personalisation); `key` makes it retry-safe."""
        if not 1 <= len(user_ids) <= MAX_MULTICAST:
            return Outcome(ok=False, reason=f"multicast takes 1 to {MAX_MULTICAST} user ids")
        try:
            request = MulticastRequest(to=user_ids, messages=to_sdk(messages))
        except ValueError as exc:
            return Outcome(ok=False, reason=f"invalid message: {exc}"[:300])
        try:
            response = self.api.multicast_with_http_info(request, x_line_retry_key=key)
        except ApiException as exc:
            return _failure(exc, key)
        except OSError as exc:
            return Outcome(ok=False, temporary=True, reason=f"{type(exc).__name__}: {exc}"[:300])
        return Outcome(
            ok=True, provider_id=str((response.headers or {}).get("x-line-request-id", key))
        )

    def close(self) -> None:
        self.client.close()


def _failure(exc: ApiException, key: str) -> Outcome:
    status = int(exc.status or 0)
    if status == 409:  # the retry key was accepted before: it was sent
        request_id = (exc.headers or {}).get("x-line-accepted-request-id", "")
        return Outcome(ok=True, provider_id=str(request_id or key), detail={"duplicate": True})
    temporary = status == 429 or status >= 500 or status == 0
    return Outcome(
        ok=False,
        temporary=temporary,
        reason=f"LINE {status}: {exc.body!r}"[:300],
        channel_fault=temporary,
    )
