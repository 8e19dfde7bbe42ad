"""Errors that faces translate into responses (404 for NotFound, 422 for ValidationError)."""

from __future__ import annotations


class NotFound(Exception):
    """Missing, or not visible to the caller: the two are deliberately indistinguishable."""

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key} not found")
        self.what = what
        self.key = key
