"""Machine or human? Classify an open or a click (pure, no database).

Machines: Apple Mail Privacy Protection proxy fetches (Apple's network, or an open within
seconds of delivery with a bare user agent), image proxies (Gmail, Yahoo), security
scanners and link checkers (known user agents, HEAD requests, a click within
`click_after_delivery_seconds` of delivery, several different links of one message
clicked within `link_burst_seconds`). The networks, user agents and thresholds are in
`machine_engagement.json` next to this module, each list with its source.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

DATA_FILE = Path(__file__).with_name("machine_engagement.json")


@dataclass(frozen=True)
class Verdict:
    machine: bool
    rule: str = ""  # why: apple_mpp, image_proxy, scanner_ua, head, early, burst, no_ua


@dataclass(frozen=True)
class Rules:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    proxies: tuple[str, ...]
    scanners: tuple[str, ...]
    click_after: float
    open_after: float
    burst: float


@functools.cache
def rules() -> Rules:
    path = Path(getattr(settings, "KIZUNA_MACHINE_ENGAGEMENT_FILE", "") or DATA_FILE)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Rules(
        networks=tuple(
            ipaddress.ip_network(r, strict=False) for r in data["apple_mpp_networks"]["ranges"]
        ),
        proxies=tuple(s.lower() for s in data["proxy_user_agents"]["substrings"]),
        scanners=tuple(s.lower() for s in data["scanner_user_agents"]["substrings"]),
        click_after=float(data.get("click_after_delivery_seconds", 10)),
        open_after=float(data.get("open_after_delivery_seconds", 2)),
        burst=float(data.get("link_burst_seconds", 2)),
    )


def _in_networks(ip: str, r: Rules) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in r.networks)


def _since(sent_at: datetime | None, at: datetime) -> float | None:
    return None if sent_at is None else (at - sent_at).total_seconds()


def classify_open(*, ip: str, user_agent: str, sent_at: datetime | None, at: datetime) -> Verdict:
    r = rules()
    ua = user_agent.lower()
    if any(s in ua for s in r.proxies):
        return Verdict(True, "image_proxy")
    if _in_networks(ip, r):
        return Verdict(True, "apple_mpp")
    if any(s in ua for s in r.scanners):
        return Verdict(True, "scanner_ua")
    since = _since(sent_at, at)
    if since is not None and since < r.open_after:
        return Verdict(True, "early")
    return Verdict(False)


def classify_click(
    *,
    ip: str,
    user_agent: str,
    method: str,
    sent_at: datetime | None,
    at: datetime,
    other_links: list[tuple[str, datetime]],
    url: str,
) -> Verdict:
    """`other_links`: (url, at) of the delivery's earlier clicks."""
    r = rules()
    ua = user_agent.lower()
    if method.upper() == "HEAD":
        return Verdict(True, "head")
    if not ua.strip():
        return Verdict(True, "no_ua")
    if any(s in ua for s in r.scanners):
        return Verdict(True, "scanner_ua")
    since = _since(sent_at, at)
    if since is not None and since < r.click_after:
        return Verdict(True, "early")
    if any(u != url and abs((at - t).total_seconds()) <= r.burst for u, t in other_links):
        return Verdict(True, "burst")
    if _in_networks(ip, r) and not any(s in ua for s in ("safari", "mozilla")):
        return Verdict(True, "apple_mpp")
    return Verdict(False)
