"""Building blocks shared by every app's REST API router: the error shape, the base of
input schemas, the responses each route declares, and page-number pagination.

The `kizuna.api` app assembles the routers into one NinjaAPI and maps exceptions to the
error shape; app routers import only this module (and `kizuna.iam.authz`) from outside
their own app, so the layer rules hold.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import PaginationBase
from pydantic import ConfigDict


class ErrorItem(Schema):
    field: str | None = Field(
        None,
        description="The field at fault (`email`, `traits.favourite_drink`, "
        "`lines[0].sku`, `body`, `Authorization`), or null for the request as a whole.",
    )
    message: str


class ErrorOut(Schema):
    """Every error response: a list of problems, each naming its field where it has one."""

    detail: list[ErrorItem]


class InputSchema(Schema):
    """Base of request bodies: an unknown field is an error naming that field."""

    model_config = ConfigDict(extra="forbid")


class PayloadTooLarge(Exception):
    """The request body is larger than settings.KIZUNA_API_MAX_BODY_BYTES."""


class MalformedBody(Exception):
    """The request body is not a JSON object."""


# Responses every authenticated route can give, declared so the OpenAPI document lists them.
_AUTH_ERRORS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut}


def responses(
    ok: dict[int, Any], *, lookup: bool = False, body: bool = False, query: bool = False
) -> dict[int, Any]:
    """The response map of a route: `ok` plus the errors it can return.

    lookup: the path names an object that may not exist (404);
    body: the route reads a JSON body (400 malformed, 413 too large, 422 invalid);
    query: the route validates query parameters (422).
    """
    result: dict[int, Any] = {**ok, **_AUTH_ERRORS}
    if lookup:
        result[404] = ErrorOut
    if body:
        result[400] = ErrorOut
        result[413] = ErrorOut
    if body or query or lookup:
        result[422] = ErrorOut
    return result


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PagePagination(PaginationBase):
    """`?page=1&page_size=50`; the output carries the total count and the page it shows."""

    class Input(Schema):
        page: int = Field(1, ge=1, le=1_000_000, description="1-based page number")
        page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)

    class Output(Schema):
        items: list[Any]
        count: int = Field(..., description="Items matching the filters, on all pages")
        page: int
        page_size: int

    def paginate_queryset(
        self, queryset: QuerySet, pagination: Input, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        offset = (pagination.page - 1) * pagination.page_size
        return {
            "items": list(queryset[offset : offset + pagination.page_size]),
            "count": self._items_count(queryset),
            "page": pagination.page,
            "page_size": pagination.page_size,
        }
