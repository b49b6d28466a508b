"""One prepared `INSERT ... ON CONFLICT DO UPDATE` run with executemany, for the sync's hot tables.

`QuerySet.bulk_create(update_conflicts=True)` compiles SQL and prepares every value through the ORM
(several microseconds a value); a full resync writes hundreds of thousands of values. `Upsert`
prepares the statement once and converts values with the same database operations Django uses, as
each row is added: what the row came from (parsed files) can then be freed at once instead of
living, and being walked by the garbage collector, until the batch is written.
It supports exactly what the mirror needs: text, integers, booleans, JSON and datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import ForeignObjectRel

BATCH = 1000
# json.dumps(value, ensure_ascii=False), without building an encoder for every value.
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False).encode


def _column(field: models.Field[Any, Any] | ForeignObjectRel) -> str:
    """The column a field is stored in; a reverse relation or a virtual field has none."""
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{field!r} is not stored in a column")
    return field.column


def _converter(field: models.Field[Any, Any] | ForeignObjectRel) -> Callable[[Any], Any] | None:
    """How a value of this field becomes a query parameter; None when it goes as it is."""
    if isinstance(field, models.JSONField):
        return _JSON_TEXT
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
    # The rows of one pass share their observed_at: the last value converted is converted once.
    last: tuple[Any, Any] = (object(), None)

    def convert(value: Any) -> Any:
        nonlocal last
        if value is last[0]:
            return last[1]
        if value.__class__ is datetime and value.utcoffset() is not None:
            last = (value, str(value.astimezone(zone).replace(tzinfo=None)))
            return last[1]
        return adapt(value)

    return convert


class Upsert:
    """Rows (dicts of field name -> value, all with the same keys) for one table, written on `write()`.

    On conflict on `unique`, every field the rows give is updated but those in `keep`. Fields the rows
    leave out get their defaults on insert and are never touched by the update.
    """

    def __init__(self, model: type[models.Model], *, unique: str, keep: Collection[str] = ()) -> None:
        self.model, self.unique, self.keep = model, unique, keep
        self._names: list[str] = []
        self._params: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._params)

    def add(self, row: Mapping[str, Any]) -> None:
        if not self._names:
            self._prepare(list(row))
        values = [row[name] for name in self._names]
        for i, convert in self._special:
            values[i] = convert(values[i])
        self._params.append((*values, *self._default_values))

    def write(self) -> None:
        """Run the statement for the rows added since the last write."""
        params, self._params = self._params, []
        if not params:
            return
        with connection.cursor() as cursor:
            for start in range(0, len(params), BATCH):
                cursor.executemany(self._sql, params[start : start + BATCH])

    def _prepare(self, names: list[str]) -> None:
        meta, quote = self.model._meta, connection.ops.quote_name
        defaults = [
            f for f in meta.concrete_fields if f.name not in names and not f.primary_key and f.has_default()
        ]
        fields = [meta.get_field(name) for name in names] + defaults
        json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
        placeholders = ", ".join(
            f"%s{json_cast}" if isinstance(f, models.JSONField) else "%s" for f in fields
        )
        columns = [quote(_column(meta.get_field(name))) for name in names if name not in self.keep]
        assignments = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns)
        # Every identifier comes from the model's own metadata, quoted by the backend; values are parameters.
        self._sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) "  # noqa: S608
            f"VALUES ({placeholders}) "
            f"ON CONFLICT ({quote(_column(meta.get_field(self.unique)))}) DO UPDATE SET {assignments}"
        )
        self._names = names
        self._special = [
            (i, convert) for i, name in enumerate(names) if (convert := _converter(meta.get_field(name)))
        ]
        self._default_values = tuple(
            (_converter(f) or (lambda value: value))(f.get_default()) for f in defaults
        )


def select_in(
    model: type[models.Model], key: str, keys: Sequence[Any], fields: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """(key, *fields) of the rows whose `key` is one of `keys`, as the database holds them (text fields).

    A plain `IN` query per BATCH keys: a filter on a thousand keys costs the ORM more than SQLite.
    """
    meta, quote = model._meta, connection.ops.quote_name
    columns = ", ".join(quote(_column(meta.get_field(name))) for name in (key, *fields))
    found: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(keys), BATCH):
            chunk = list(keys[start : start + BATCH])
            cursor.execute(
                f"SELECT {columns} FROM {quote(meta.db_table)} "  # noqa: S608 (identifiers from the model)
                f"WHERE {quote(_column(meta.get_field(key)))} IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            found.extend(cursor.fetchall())
    return found


def select_where(
    model: type[models.Model], where: Mapping[str, str], fields: Sequence[str]
) -> list[tuple[Any, ...]]:
    """`fields` of the rows whose text fields equal `where`, as the database holds them: a plain query
    (the ORM compiles one again on every call)."""
    meta, quote = model._meta, connection.ops.quote_name
    columns = ", ".join(quote(_column(meta.get_field(name))) for name in fields)
    conditions = " AND ".join(f"{quote(_column(meta.get_field(name)))} = %s" for name in where)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {conditions}",  # noqa: S608 (from the model)
            list(where.values()),
        )
        return cursor.fetchall()


def update_where(model: type[models.Model], where: Mapping[str, str], values: Mapping[str, str]) -> int:
    """Set text fields to `values` in the rows whose text fields equal `where`; how many rows changed.
    What `QuerySet.update` does for plain text (no signals either), without compiling it again."""
    meta, quote = model._meta, connection.ops.quote_name
    assignments = ", ".join(f"{quote(_column(meta.get_field(name)))} = %s" for name in values)
    conditions = " AND ".join(f"{quote(_column(meta.get_field(name)))} = %s" for name in where)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {conditions}",  # noqa: S608 (from the model)
            [*values.values(), *where.values()],
        )
        return cursor.rowcount


def advance(
    model: type[models.Model], *, key: str, when: str, rows: Sequence[tuple[Any, datetime, dict[str, Any]]]
) -> None:
    """For each (key value, time, other values): set the row's `when` to the time, and the other fields,
    unless it holds that time or a later one already. One prepared `UPDATE` run with executemany (an
    ORM update compiles its SQL again for every row). Every row gives the same other fields (text)."""
    if not rows:
        return
    meta, quote = model._meta, connection.ops.quote_name
    names = list(rows[0][2])
    column = quote(_column(meta.get_field(when)))
    assignments = ", ".join([f"{column} = %s", *(f"{quote(_column(meta.get_field(n)))} = %s" for n in names)])
    convert = _datetime_adapter()
    params = []
    for value, at, others in rows:
        moment = convert(at)
        params.append((moment, *(others[n] for n in names), value, moment))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608 (identifiers from the model)
            f"WHERE {quote(_column(meta.get_field(key)))} = %s AND ({column} IS NULL OR {column} < %s)",
            params,
        )
