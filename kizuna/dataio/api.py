"""REST API of data in and out: customer list CSV export and the per-customer data export."""

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from kizuna.core.api import responses
from kizuna.core.errors import NotFound
from kizuna.customers import selectors
from kizuna.dataio.exporters import customer_csv_lines, customer_data_export, in_segment
from kizuna.iam.authz import require_perm
from kizuna.iam.masking import masked_search_q, request_masks

router = Router(tags=["data"])


class ExportFilters(Schema):
    search: str = Field("", max_length=200)
    prefecture: str = Field("", max_length=5)
    segment: int | None = Field(None, ge=1, description="only this segment's current members")


@router.get(
    "/exports/customers.csv",
    response=responses({200: str}, query=True),
    auth=require_perm("customers.view_customer"),
)
def customers_csv(request: HttpRequest, filters: ExportFilters = Query(...)) -> Any:
    if filters.search and request_masks(request):  # masked roles: id and external id only
        qs = selectors.customer_list(prefecture=filters.prefecture)
        qs = qs.filter(masked_search_q(filters.search)).distinct()
    else:
        qs = selectors.customer_list(search=filters.search, prefecture=filters.prefecture)
    try:
        qs = in_segment(qs, filters.segment)
    except NotFound as exc:  # a filter value, not the route's object: 422 naming the field
        raise ValidationError({"segment": [_("No segment %(id)s.") % {"id": exc.key}]}) from exc
    lines = customer_csv_lines(qs, masked=request_masks(request))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="customers.csv"'
    return response


@router.get(
    "/customers/{customer_id}/export",
    response=responses({200: dict[str, Any]}, lookup=True),
    auth=require_perm("customers.change_customer"),
)
def customer_export(request: HttpRequest, customer_id: int) -> dict[str, Any]:
    """Everything stored about one customer, for a privacy (access/portability) request."""
    return customer_data_export(selectors.customer_get(customer_id=customer_id))
