"""One prepared `INSERT ... ON CONFLICT DO UPDATE` run with executemany, for the sync's hot tables.

`QuerySet.bulk_create(update_conflicts=True)` compiles SQL and prepares every value through the ORM
(several microseconds a value); a full resync writes hundreds of thousands of values. This helper
prepares the statement once and converts values with the same database operations Django uses.
It supports exactly what the mirror needs: text, integers, booleans, JSON and datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models

BATCH = 1000


def _converter(field: models.Field) -> Callable[[Any], Any] | None:
    """How a value of this field becomes a query parameter; None when it goes as it is."""
    if isinstance(field, models.JSONField):
        return lambda value: json.dumps(value, ensure_ascii=False)
    if isinstance(field, models.DateTimeField):
        return _datetime_adapter()
    return None


def _datetime_adapter() -> Callable[[Any], Any]:
    """The backend's datetime adapter, with SQLite's usual case done without its per-value overhead.

    For an aware datetime with USE_TZ, Django's SQLite adapter stores `str()` of the value made naive
    in the connection's time zone; this does the same in three C calls instead of several Python
    functions and settings lookups (a full resync converts a hundred thousand datetimes). Anything
    else (None, naive values, subclasses, expressions) goes through Django's adapter.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite" or not settings.USE_TZ:
        return adapt
    zone = connection.timezone

    def convert(value: Any) -> Any:
        if value.__class__ is datetime and value.utcoffset() is not None:
            return str(value.astimezone(zone).replace(tzinfo=None))
        return adapt(value)

    return convert


def upsert(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, unique: str, update: Sequence[str]
) -> None:
    """Insert `rows` (dicts of field name -> value, all with the same keys), updating `update` on conflict.

    Fields the rows leave out get their defaults on insert and are never touched by the update.
    """
    if not rows:
        return
    meta, quote = model._meta, connection.ops.quote_name
    names = list(rows[0])
    defaults = [
        f for f in meta.concrete_fields if f.name not in names and not f.primary_key and f.has_default()
    ]
    fields = [meta.get_field(name) for name in names] + defaults
    default_values = tuple((_converter(f) or (lambda value: value))(f.get_default()) for f in defaults)
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    placeholders = ", ".join(f"%s{json_cast}" if isinstance(f, models.JSONField) else "%s" for f in fields)
    columns = [quote(meta.get_field(name).column) for name in update]
    assignments = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns)
    # Every identifier comes from the model's own metadata, quoted by the backend; values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({placeholders}) "
        f"ON CONFLICT ({quote(meta.get_field(unique).column)}) DO UPDATE SET {assignments}"
    )
    special = [(i, convert) for i, name in enumerate(names) if (convert := _converter(meta.get_field(name)))]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            params = []
            for row in rows[start : start + BATCH]:
                values = [row[name] for name in names]
                for i, convert in special:
                    values[i] = convert(values[i])
                params.append((*values, *default_values))
            cursor.executemany(sql, params)
