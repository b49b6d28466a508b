"""Real database faults for tests: a trigger that refuses some rows, a table that has gone missing.

Each is made with the database's own DDL (SQLite or PostgreSQL) inside the caller's transaction and
undone on exit, so the code under test meets the failure exactly as it would in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_NAME = re.compile(r"^[a-z_]+$")
_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")


def _check(table: str, column: str, value: str) -> None:
    # The names and the value go into DDL, which takes no parameters: test constants only.
    if not (_NAME.fullmatch(table) and _NAME.fullmatch(column) and _VALUE.fullmatch(value)):
        raise ValueError("table, column and value must be plain names")


@contextmanager
def rows_refused(
    table: str, column: str, value: str, message: str = "refused by a test trigger"
) -> Iterator[None]:
    """While inside, the database refuses to insert or update a row of `table` whose `column` is `value`
    (a constraint violation, as a CHECK or a policy trigger would raise)."""
    _check(table, column, value)
    if not re.fullmatch(r"[a-z ]+", message):
        raise ValueError("the message must be plain words")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION agentos_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.{column} = '{value}' THEN "
                f"RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation'; END IF; "
                "RETURN NEW; END $$"
            )
            for event in ("INSERT", "UPDATE"):
                cursor.execute(
                    f"CREATE TRIGGER agentos_test_refuse_{event.lower()} BEFORE {event} ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION agentos_test_refuse()"
                )
        else:
            for event in ("INSERT", "UPDATE"):
                cursor.execute(
                    f"CREATE TRIGGER agentos_test_refuse_{event.lower()} BEFORE {event} ON {table} "
                    f"WHEN NEW.{column} = '{value}' BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for event in ("insert", "update"):
                on = f" ON {table}" if connection.vendor == "postgresql" else ""
                cursor.execute(f"DROP TRIGGER agentos_test_refuse_{event}{on}")
            if connection.vendor == "postgresql":
                cursor.execute("DROP FUNCTION agentos_test_refuse()")


@contextmanager
def table_missing(table: str) -> Iterator[None]:
    """While inside, `table` is gone (renamed away), as after a deploy that skipped a migration."""
    _check(table, "x", "x")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
