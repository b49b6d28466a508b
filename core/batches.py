"""Deleting many rows a batch at a time, so that no statement holds SQLite's write lock for long."""

from __future__ import annotations

from django.db.models import QuerySet

BATCH = 1000


def delete_in_batches(queryset: QuerySet) -> int:
    """Delete what `queryset` selects, BATCH rows per statement; returns how many."""
    deleted = 0
    while pks := list(queryset.values_list("pk", flat=True)[:BATCH]):
        deleted += queryset.model.objects.filter(pk__in=pks).delete()[0]
    return deleted
