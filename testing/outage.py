"""A real database outage for tests: the configured database stops accepting connections, then comes back.

PostgreSQL: the database is closed to new connections (`ALLOW_CONNECTIONS false`, which binds superusers
too) and every open one is ended with `pg_terminate_backend`, as a failover or a restart does. SQLite:
the connection settings point at a path SQLite cannot open (a directory), as a lost volume does. Nothing
is mocked: every query meets the database driver's own error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from django.db import connections

# How long a request waits for a pooled PostgreSQL connection during the outage (10 s in settings):
# every request of a test would wait that long before its answer.
OUTAGE_POOL_TIMEOUT_SEC = 0.5


def _admin_connection(settings_dict: dict):
    import psycopg

    return psycopg.connect(
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def _allow_connections(admin, name: str, allowed: bool) -> None:
    from psycopg import sql

    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")
        )
    )


@contextlib.contextmanager
def _postgresql_down(alias: str) -> Iterator[None]:
    connection = connections[alias]
    settings_dict = connection.settings_dict
    name = settings_dict["NAME"]
    options = settings_dict["OPTIONS"]
    pool = options.get("pool")
    with _admin_connection(settings_dict) as admin:
        _allow_connections(admin, name, False)
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            connection.close()
            if pool:
                connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper (a pool is set)
                options["pool"] = {**pool, "timeout": OUTAGE_POOL_TIMEOUT_SEC}
            yield
        finally:
            _allow_connections(admin, name, True)
            connection.close()
            if pool:
                connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper (a pool is set)
                options["pool"] = pool


@contextlib.contextmanager
def _sqlite_down(alias: str, unreachable: Path) -> Iterator[None]:
    connection = connections[alias]
    name = connection.settings_dict["NAME"]
    unreachable.mkdir(parents=True, exist_ok=True)
    connection.close()
    # The settings dict is shared by this alias's connection in every thread.
    connection.settings_dict["NAME"] = str(unreachable)
    try:
        yield
    finally:
        connection.settings_dict["NAME"] = name
        connection.close()


@contextlib.contextmanager
def database_down(unreachable: Path, alias: str = "default") -> Iterator[None]:
    """While inside, no query on `alias` succeeds; `unreachable` is a scratch path for SQLite."""
    if connections[alias].vendor == "postgresql":
        with _postgresql_down(alias):
            yield
    else:
        with _sqlite_down(alias, unreachable):
            yield
