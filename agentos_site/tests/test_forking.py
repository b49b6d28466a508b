"""A forked child (django-q2's workers) opens its own connection and leaves its parent's pool alone."""

from __future__ import annotations

import os

import pytest
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

from agentos_site import forking
from agentos_site.sqlite import base as sqlite_backend
from ssot.models import SyncState


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone():
    connection = connections["default"]
    SyncState.objects.count()
    connection.close()  # pooled on both databases: still open, in the pool a child inherits
    connection.ensure_connection()
    parent_connection = connection.connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            forgot = (
                connection.connection is None
                and not any(sqlite_backend._pools.values())
                and not PostgresWrapper._connection_pools
            )
            count = SyncState.objects.count()
            fresh = connection.connection is not parent_connection
            os.write(write, f"{forgot} {fresh} {count}".encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)

    assert status == 0 and answer == "True True 0"
    # The parent's connection, and those in its pool, still work after the child used its own and exited.
    assert connection.connection is parent_connection
    for _ in range(3):
        assert SyncState.objects.count() == 0
        connection.close()
    assert forking._inherited == []  # the parent itself forgot nothing
