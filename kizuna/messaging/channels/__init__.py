"""The channel interface: each kind turns rendered deliveries into provider calls.

Only worker tasks call `send` (through `kizuna.messaging.services.delivery_send_batch`).
A channel answers each message with an `Outcome`: sent (with the provider's id), a temporary
failure worth retrying, or a permanent failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kizuna.messaging.models import Channel


class ChannelConfigError(Exception):
    """The channel's settings or credentials are incomplete."""


@dataclass
class Outcome:
    ok: bool
    provider_id: str = ""
    temporary: bool = False
    reason: str = ""
    detail: dict[str, Any] | None = None
    # The channel itself failed (connection refused or hung, the session refused, the
    # provider answered 5xx or garbage), not this recipient: counts towards its breaker.
    channel_fault: bool = False


@dataclass
class OutboundMessage:
    """What a channel needs to send one delivery."""

    delivery_id: int
    idempotency_key: str
    to: str
    rendered: dict[str, Any]
    marketing: bool
    customer_name: str = ""


class Session(Protocol):
    """An open connection for a batch (one SMTP session, one HTTP client)."""

    def send(self, message: OutboundMessage) -> Outcome: ...

    def close(self) -> None: ...


def open_session(channel: Channel) -> Session:
    from kizuna.messaging.channels import email, line, webhook

    kinds: dict[str, Any] = {
        "email": email.EmailSession,
        "line": line.LineSession,
        "webhook": webhook.WebhookSession,
    }
    return kinds[channel.kind](channel)
