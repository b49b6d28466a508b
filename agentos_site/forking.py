"""A forked child (django-q2 forks its workers) must never use, nor close, its parent's connections.

With connection pools, a connection "closed" by the parent is still open in a pool, and a child
inherits the pool with it: a child that used it, or closed it (psycopg sends a termination message
on the socket, SQLite may checkpoint), would do so on the parent's connection. After a fork the
child forgets every open connection and every pool, keeping the objects referenced so that no
finalizer closes them, and opens its own on first use.
"""

from __future__ import annotations

import os
from typing import Any

_inherited: list[Any] = []


def forget_inherited_connections() -> None:
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

    from agentos_site.sqlite import base as sqlite_pool

    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _inherited.append(wrapper.connection)
            wrapper.connection = None
    # A private class attribute of Django's (fenced by a tripwire), absent from the stubs.
    _inherited.append(dict(PostgresWrapper._connection_pools))  # type: ignore[attr-defined]
    PostgresWrapper._connection_pools.clear()  # type: ignore[attr-defined]
    _inherited.append(sqlite_pool.forget_pools())


def install() -> None:
    os.register_at_fork(after_in_child=forget_inherited_connections)
