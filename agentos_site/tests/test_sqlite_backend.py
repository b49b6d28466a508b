"""The SQLite backend: pooled connections reused only when clean, and our own wait for the write lock.

On a database file of each test's own, whatever the default database is (these run on PostgreSQL too).
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import OperationalError

from agentos_site.sqlite import base as sqlite_backend


@pytest.fixture
def database(tmp_path: Path, django_db_blocker):
    """A wrapper of our backend on a fresh database file, closed (and its pool emptied) afterwards."""
    options = {"timeout": 5, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    name = str(tmp_path / "pool.sqlite3")
    settings_dict = connections.configure_settings(
        {"default": {"ENGINE": "agentos_site.sqlite", "NAME": name, "OPTIONS": options}}
    )["default"]
    wrapper = sqlite_backend.DatabaseWrapper(settings_dict, alias="pool-test")
    with django_db_blocker.unblock():  # not the test database: a file of this test's own
        with wrapper.cursor() as cursor:
            cursor.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
        yield wrapper
        wrapper.close()
    for key in [key for key in sqlite_backend._pools if key[0] == name]:
        for conn in sqlite_backend._pools.pop(key):
            conn.close()


def _names(path: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM item ORDER BY id")]


def test_a_closed_connection_is_reused_with_foreign_keys_on(database):
    first = database.connection
    first.execute("PRAGMA foreign_keys = OFF")
    database.close()
    database.ensure_connection()

    assert database.connection is first
    assert first.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_what_a_closed_connection_left_uncommitted_is_rolled_back(database):
    database.ensure_connection()
    database.connection.execute("BEGIN")
    database.connection.execute("INSERT INTO item (name) VALUES ('half-done')")
    database.close()

    assert _names(database.settings_dict["NAME"]) == []


def test_a_connection_closed_in_an_atomic_block_or_after_an_error_is_not_reused(database):
    database.ensure_connection()
    first = database.connection
    database.in_atomic_block = True  # as inside transaction.atomic()
    database.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        first.execute("SELECT 1")
    database.connect()  # what the next use does after a close in a transaction
    second = database.connection
    database.errors_occurred = True
    database.close()
    database.ensure_connection()

    assert database.connection is not second
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        second.execute("SELECT 1")


def test_a_file_created_again_gets_new_connections(database):
    database.ensure_connection()
    first = database.connection
    database.close()
    path = Path(database.settings_dict["NAME"])
    path.unlink()
    sqlite3.connect(path).close()
    database.ensure_connection()

    assert database.connection is not first


def test_the_pool_keeps_at_most_its_size(database, settings):
    settings.SQLITE_POOL_SIZE = 2
    wrappers = [sqlite_backend.DatabaseWrapper(database.settings_dict, alias=f"w{n}") for n in range(4)]
    for wrapper in wrappers:
        wrapper.ensure_connection()
    for wrapper in wrappers:
        wrapper.close()

    key = database._pool_key()
    assert len(sqlite_backend._pools[key]) == 2 + (database.connection is None)


def test_a_write_waits_for_the_lock_and_then_succeeds(database):
    holder = sqlite3.connect(database.settings_dict["NAME"], isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.2, holder.execute, args=("COMMIT",))
    released.start()
    started = time.monotonic()
    with database.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES (%s)", ["after the wait"])
    waited = time.monotonic() - started
    released.join()

    assert 0.15 <= waited < 2
    assert _names(database.settings_dict["NAME"]) == ["after the wait"]


def test_a_write_that_cannot_get_the_lock_in_time_fails_as_sqlite_would(database):
    database.ensure_connection()
    database.busy_timeout_sec = 0.1
    holder = sqlite3.connect(database.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), database.cursor() as cursor:
            cursor.execute("INSERT INTO item (name) VALUES (%s)", ["never"])
        assert 0.1 <= time.monotonic() - started < 1
    finally:
        holder.execute("ROLLBACK")
    assert _names(database.settings_dict["NAME"]) == []


def test_executemany_outside_a_transaction_is_all_or_nothing(database):
    with database.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES (%s)", ["taken"])
        with pytest.raises(Exception, match="UNIQUE"):
            cursor.executemany("INSERT INTO item (name) VALUES (%s)", [["a"], ["b"], ["taken"]])
        cursor.executemany("INSERT INTO item (name) VALUES (%s)", [["c"], ["d"]])

    assert _names(database.settings_dict["NAME"]) == ["taken", "c", "d"]


def test_transactions_of_one_process_queue_on_its_lock_not_on_sqlites(database):
    name = database.settings_dict["NAME"]
    other = sqlite_backend.DatabaseWrapper(database.settings_dict, alias="other")
    other.ensure_connection()
    database.ensure_connection()
    database._start_transaction_under_autocommit()  # what transaction.atomic() does on SQLite
    lock = sqlite_backend.write_lock(name)
    assert lock.locked()
    done = threading.Event()

    def write_from_another_thread():
        other.inc_thread_sharing()
        other._start_transaction_under_autocommit()
        other.connection.execute("INSERT INTO item (name) VALUES ('second')")
        other.commit()
        done.set()

    writer = threading.Thread(target=write_from_another_thread)
    writer.start()
    assert not done.wait(0.2)  # waiting for this thread's transaction, on the process's lock
    database.connection.execute("INSERT INTO item (name) VALUES ('first')")
    database.commit()
    writer.join(5)

    assert done.is_set() and not lock.locked()
    assert _names(name) == ["first", "second"]
    other.dec_thread_sharing()
    other.close()


def test_a_close_inside_a_transaction_releases_the_process_lock(database):
    database.ensure_connection()
    database._start_transaction_under_autocommit()
    assert sqlite_backend.write_lock(database.settings_dict["NAME"]).locked()
    database.close()

    assert not sqlite_backend.write_lock(database.settings_dict["NAME"]).locked()


def test_a_wrapper_dropped_inside_a_transaction_lets_go_of_the_process_lock(database):
    other = sqlite_backend.DatabaseWrapper(database.settings_dict, alias="dropped")
    other.ensure_connection()
    other._start_transaction_under_autocommit()
    lock = sqlite_backend.write_lock(database.settings_dict["NAME"])
    assert lock.locked()
    del other
    gc.collect()

    assert not lock.locked()
    with database.cursor() as cursor:  # and the database takes writes again
        cursor.execute("INSERT INTO item (name) VALUES (%s)", ["after"])
    assert _names(database.settings_dict["NAME"]) == ["after"]
