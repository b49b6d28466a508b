"""The list endpoints' filter backend (django-filter): a bad filter value is a 400 with every error."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from core.parsers import BadRequest

# An id filter's bound: longer than the id columns (128), the value could never match; refused (400)
# rather than sent to the database.
ID_LENGTH = 128


class FilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, with invalid filter values answered like every other bad request."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            errors = [
                {"path": name, "message": str(message)}
                for name, messages in filterset.errors.items()
                for message in messages
            ]
            raise BadRequest("Invalid filter values.", errors)
        return filterset.qs
