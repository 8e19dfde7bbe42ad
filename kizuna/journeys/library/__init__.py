"""Ready-made journeys a business starts from: one JSON file per template (graph, the
message templates and coupons it needs, in Japanese and English). `$email` in a graph is
replaced by the email channel chosen when the template is instantiated."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ORDER = (
    "welcome",
    "post_purchase",
    "cart_abandonment",
    "birthday_coupon",
    "win_back",
    "nps_after_purchase",
    "tier_up",
    "re_permission",
)


@cache
def templates() -> dict[str, dict[str, Any]]:
    return {key: json.loads((HERE / f"{key}.json").read_text("utf-8")) for key in ORDER}


def with_channel(graph: dict[str, Any], channel_name: str) -> dict[str, Any]:
    text = json.dumps(graph, ensure_ascii=False).replace('"$email"', json.dumps(channel_name))
    result: dict[str, Any] = json.loads(text)
    return result
