"""Model fields of the mirror."""

from __future__ import annotations

from typing import Any

from django.db import models

from core.bounded import load_bounded


class MirroredJSONField(models.JSONField):
    """A JSONField for what agents and peers wrote: a stored value always loads (core/bounded.py).

    Django's JSONField raises when Python's decoder refuses the stored text (nested deeper than the
    recursion limit allows, an integer past 4,300 digits), and one such row made every query that read
    it fail. Such a text is read with its depth cut instead; the row itself is left as it is.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        try:
            return super().from_db_value(value, expression, connection)
        except (RecursionError, ValueError):
            return load_bounded(value)
