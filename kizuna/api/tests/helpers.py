"""Helpers for the API tests."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


class ApiClient:
    """A Django test client that sends an API key and JSON bodies."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self.headers)

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str] | None) -> Any:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.generic(
            method,
            path,
            data,
            content_type="application/json",
            headers={**self.headers, **(headers or {})},
        )

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._send("POST", path, {} if body is None else body, headers)

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self._send("PATCH", path, body, headers)


def fields(response: Any) -> list[str | None]:
    """The fields named by an error response (asserting the error shape on the way)."""
    body = response.json()
    assert set(body) == {"detail"}, body
    assert all(set(item) == {"field", "message"} and item["message"] for item in body["detail"])
    return [item["field"] for item in body["detail"]]
