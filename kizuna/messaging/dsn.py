"""Parse delivery status notifications (RFC 3464, inside RFC 6522 multipart/report).

The delivery is found from the VERP address the report was sent to (`bounces+TOKEN@...` in
To / X-Original-To / Delivered-To), or else from the `X-Kizuna-Delivery` header of the
returned original message. Pure: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message

from kizuna.messaging import links

STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


class DSNError(ValueError):
    """Not a delivery status notification we can read."""


@dataclass
class Recipient:
    address: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5.")


@dataclass
class Report:
    delivery_id: int | None
    recipients: list[Recipient] = field(default_factory=list)
    feedback: bool = False  # an ARF complaint (RFC 5965), not a delivery status


def _fields(block: str) -> dict[str, str]:
    result: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name:
            result[name] += " " + line.strip()
            continue
        if ":" in line:
            name, _sep, value = line.partition(":")
            name = name.strip().lower()
            result[name] = value.strip()
    return result


def _address(value: str) -> str:
    # "rfc822; user@example.com"
    return value.split(";", 1)[-1].strip().strip("<>")


def _status_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):  # parsed into header blocks by the email package
                return "\n\n".join(
                    "\n".join(f"{k}: {v}" for k, v in block.items())
                    for block in payload
                    if isinstance(block, Message)
                )
            if isinstance(payload, str):
                return payload
    raise DSNError("no message/delivery-status part: not a delivery status notification")


def delivery_from_headers(message: Message) -> int | None:
    """The delivery an answer (auto-reply, complaint) is about, from its VERP address."""
    return _delivery_id(message)


def _delivery_id(message: Message) -> int | None:
    for header in ("X-Original-To", "Delivered-To", "To", "Envelope-To"):
        for value in message.get_all(header) or []:
            for candidate in re.findall(r"bounces\+[^@\s<>]+@[^\s<>,]+", str(value)):
                found = links.delivery_from_verp(candidate)
                if found is not None:
                    return found
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            found_header = inner.get("X-Kizuna-Delivery") if isinstance(inner, Message) else None
            value = str(found_header) if found_header is not None else ""
            if not value and isinstance(payload, str):
                match = re.search(r"^X-Kizuna-Delivery:\s*(\d+)", payload, re.MULTILINE)
                value = match.group(1) if match else ""
            if value and str(value).strip().isdigit():
                return int(str(value).strip())
    return None


def parse(raw: bytes) -> Report:
    if not raw or len(raw) > 5_000_000:
        raise DSNError("empty or oversized message")
    message = message_from_bytes(raw, policy=policy.compat32)
    if message.get_content_type() != "multipart/report":
        raise DSNError("not a multipart/report message")
    if str(message.get_param("report-type") or "").lower() == "feedback-report":
        return Report(delivery_id=_delivery_id(message), feedback=True)
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", _status_part(message).strip()) if b.strip()]
    if len(blocks) < 2:
        raise DSNError("the delivery-status part has no per-recipient fields")
    recipients = []
    for block in blocks[1:]:
        fields = _fields(block)
        action = fields.get("action", "").lower()
        status = fields.get("status", "").split()[0] if fields.get("status") else ""
        address = _address(fields.get("final-recipient") or fields.get("original-recipient", ""))
        if not action or not STATUS.match(status):
            raise DSNError(f"recipient block without a valid Action/Status: {block[:80]!r}")
        recipients.append(
            Recipient(
                address=address,
                action=action,
                status=status,
                diagnostic=fields.get("diagnostic-code", ""),
            )
        )
    return Report(delivery_id=_delivery_id(message), recipients=recipients)
