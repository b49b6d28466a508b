"""A forked child (django-q2's workers) opens its own connection and leaves its parent's pool alone."""

from __future__ import annotations

import pytest
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

from agentos_site import forking
from agentos_site.sqlite import base as sqlite_backend
from ssot.models import SyncState
from testing.forks import in_forked_child


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone():
    connection = connections["default"]
    SyncState.objects.count()
    connection.close()  # pooled on both databases: still open, in the pool a child inherits
    connection.ensure_connection()
    parent_connection = connection.connection

    def child() -> str:
        forgot = (
            connection.connection is None
            and not any(sqlite_backend._pools.values())
            and not PostgresWrapper._connection_pools  # type: ignore[attr-defined]  # Django's private pools
        )
        count = SyncState.objects.count()
        fresh = connection.connection is not parent_connection
        return f"{forgot} {fresh} {count}"

    assert in_forked_child(child) == "True True 0"
    # The parent's connection, and those in its pool, still work after the child used its own and exited.
    assert connection.connection is parent_connection
    for _ in range(3):
        assert SyncState.objects.count() == 0
        connection.close()
    assert forking._inherited == []  # the parent itself forgot nothing
