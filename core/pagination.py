"""Pages of the list endpoints: DRF's limit/offset, with both numbers bounded and a bad one a 400.

DRF's `LimitOffsetPagination` quietly replaces a limit it cannot read with the default and passes any
offset to the database, where one past 64 bits is a 500. Here each is read by a Django form field, so a
value out of range is refused with the parameter's name, like a bad filter value.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from core.parsers import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Far past any table this product keeps, and far inside the 64-bit integers the databases take.
MAX_OFFSET = 1_000_000_000


def _bounded(low: int, high: int) -> forms.IntegerField:
    message = f"Must be a whole number from {low} to {high:,}."
    return forms.IntegerField(
        required=False,
        min_value=low,
        max_value=high,
        error_messages={"invalid": message, "min_value": message, "max_value": message},
    )


class PageForm(forms.Form):
    limit = _bounded(1, MAX_LIMIT)
    offset = _bounded(0, MAX_OFFSET)


def page_errors(request: Request) -> list[dict[str, str]]:
    """Every problem with the `limit` and `offset` of a request, as {"path", "message"}."""
    form = PageForm({name: request.query_params.get(name) for name in ("limit", "offset")})
    if form.is_valid():
        return []
    return [
        {"path": name, "message": str(message)}
        for name, messages in form.errors.items()
        for message in messages
    ]


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` from 1 to 500 (default 50) and `?offset=` from 0 to 1,000,000,000; else a 400."""

    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        if errors := page_errors(request):
            raise BadRequest("Invalid page parameters.", errors)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters
