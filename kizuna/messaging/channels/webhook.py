"""Outbound webhook: the rendered payload as JSON, POSTed with an HMAC-SHA256 signature of
`timestamp.body` (`X-Kizuna-Signature: t=...,v1=hex`) and an `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import urllib3

from kizuna.messaging import crypto
from kizuna.messaging.channels import ChannelConfigError, OutboundMessage, Outcome
from kizuna.messaging.models import Channel


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookSession:
    def __init__(self, channel: Channel) -> None:
        self.url = str(channel.settings.get("url") or "")
        if not self.url.startswith(("https://", "http://")):
            raise ChannelConfigError("the webhook channel has no URL")
        self.secret = str(crypto.decrypt(channel.credentials_encrypted).get("secret") or "")
        if not self.secret:
            raise ChannelConfigError("the webhook channel has no signing secret")
        read = float(channel.settings.get("timeout") or 20)
        self.http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=read), retries=False
        )

    def send(self, message: OutboundMessage) -> Outcome:
        body = json.dumps(
            {
                "delivery_id": message.delivery_id,
                "to": message.to,
                **message.rendered.get("payload", {}),
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Kizuna-Signature": signature(self.secret, timestamp, body),
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            response = self.http.request("POST", self.url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:  # refused, timed out, dropped
            return Outcome(
                ok=False,
                temporary=True,
                reason=f"{type(exc).__name__}: {exc}"[:300],
                channel_fault=True,
            )
        if 200 <= response.status < 300:
            return Outcome(ok=True, provider_id=str(response.headers.get("X-Request-Id", "")))
        temporary = response.status == 429 or response.status >= 500
        return Outcome(
            ok=False,
            temporary=temporary,
            reason=f"HTTP {response.status}",
            channel_fault=temporary,
        )

    def close(self) -> None:
        self.http.clear()
