"""Django's SQLite backend with a per-process pool of open connections (ENGINE "agentos_site.sqlite").

Under ASGI, Django opens a database connection for every request and closes it at the end (a
persistent connection would belong to the request's context and leak with it), and Django pools
only PostgreSQL connections. For SQLite an open and a close cost more than the work of a small
request: the connection registers Django's SQL functions and runs its PRAGMAs, and the close of
the process's last connection checkpoints the write-ahead log. This backend keeps closed
connections open in a small pool and hands them out again instead.

A connection goes back to the pool only when it is healthy and idle: not closed inside an atomic
block, no error seen, its transaction (if any) rolled back. A pooled connection is reused only for
the same database file (path and inode: a file deleted and created again gets new connections),
only in the process that opened it (a forked child forgets the parent's pool without touching it,
as SQLite requires: `agentos_site.forking`), and comes back with foreign keys enforced and
autocommit reset by `connect()`.
In-memory databases are never pooled. `SQLITE_POOL_SIZE` (default 8) bounds the idle connections.

Within a process, transactions (`BEGIN IMMEDIATE` takes the write lock at once) queue on a lock of their
own per database file, so that threads of one process wait for each other without polling. Across
processes it waits for SQLite's write lock itself. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20,
25 ... 100 ms between attempts, so under steady contention (daphne storing webhook deliveries while the
worker processes them) a writer kept missing the moments the lock was free and a 1 ms insert waited tens
of milliseconds. Here a statement that finds the lock taken outside a transaction (`BEGIN IMMEDIATE`, or
a write in autocommit: it has done nothing yet) is tried again every 0.2 to 2 ms, until the `timeout`
option (30 s) is spent; then it fails as it would have.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base

_lock = threading.Lock()
_pools: dict[tuple[str, int, int], list[sqlite3.Connection]] = {}
_write_locks: dict[str, threading.Lock] = {}


def forget_pools() -> dict[tuple[str, int, int], list[sqlite3.Connection]]:
    """Empty the pools without closing anything and return what they held (after a fork: see forking).

    The write locks are made anew too: one held by another thread of the parent would never be released.
    """
    global _lock, _pools, _write_locks
    held, _pools, _lock, _write_locks = _pools, {}, threading.Lock(), {}
    return held


def write_lock(name: str) -> threading.Lock:
    """The lock this process's transactions on database file `name` queue on."""
    with _lock:
        return _write_locks.setdefault(name, threading.Lock())


BUSY_SLEEPS_SEC = (0.0002, 0.0005, 0.001, 0.002)
DEFAULT_TIMEOUT_SEC = 5.0  # Python's and Django's, when OPTIONS gives no `timeout`


def _locked(error: sqlite3.OperationalError) -> bool:
    return "database is locked" in str(error)


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, retrying a statement that could not start for SQLite's write lock."""

    busy_timeout_sec = DEFAULT_TIMEOUT_SEC  # set by create_cursor from the connection's `timeout`

    def execute(self, query: str, params: Any = None) -> Any:
        return self._when_unlocked(super().execute, query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if not self.connection.in_transaction:
            # In autocommit each row would be a transaction of its own, and a retry after a lock on
            # row k would repeat rows before it: run them as one transaction instead.
            self._when_unlocked(super().execute, "BEGIN IMMEDIATE")
            try:
                result = super().executemany(query, param_list)
            except BaseException:
                self.connection.rollback()
                raise
            self.connection.commit()
            return result
        return super().executemany(query, param_list)

    def _when_unlocked(self, run: Callable[..., Any], *args: Any) -> Any:
        deadline = None
        attempt = 0
        while True:
            in_transaction = self.connection.in_transaction
            try:
                return run(*args)
            except sqlite3.OperationalError as error:
                if in_transaction or not _locked(error):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout_sec
                if now >= deadline:
                    raise
                time.sleep(BUSY_SLEEPS_SEC[min(attempt, len(BUSY_SLEEPS_SEC) - 1)])
                attempt += 1


# The overridden underscore methods and `transaction_mode` are Django's internals (fenced: the tripwire
# tests); django-stubs leaves them out, hence the `type: ignore`s on their uses.
class DatabaseWrapper(base.DatabaseWrapper):
    _held_write_lock: threading.Lock | None = None
    busy_timeout_sec = DEFAULT_TIMEOUT_SEC

    def _start_transaction_under_autocommit(self) -> None:
        mode = self.transaction_mode  # type: ignore[attr-defined]  # Django 5.1+, absent from the stubs
        if mode not in ("IMMEDIATE", "EXCLUSIVE") or self.is_in_memory_db():
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        lock = write_lock(str(self.settings_dict["NAME"]))
        if not lock.acquire(timeout=self.busy_timeout_sec):
            with self.wrap_database_errors:
                raise sqlite3.OperationalError("database is locked (by another thread of this process)")
        self._held_write_lock = lock
        # A wrapper dropped in the middle of a transaction (its context or thread gone without a
        # close) lets go of SQLite's lock as its connection is freed: the process's lock goes with it.
        self._write_lock_finalizer = weakref.finalize(self, lock.release)
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        lock, self._held_write_lock = self._held_write_lock, None
        if lock is not None:
            self._write_lock_finalizer.detach()
            lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.busy_timeout_sec = self.busy_timeout_sec
        return cursor

    def _pool_key(self) -> tuple[str, int, int] | None:
        if self.is_in_memory_db():
            return None
        name = str(self.settings_dict["NAME"])
        try:
            stat = os.stat(name)
        except OSError:
            return None
        return (name, stat.st_dev, stat.st_ino)

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        self.busy_timeout_sec = float(conn_params.get("timeout", DEFAULT_TIMEOUT_SEC))
        key = self._pool_key()
        if key is not None:
            with _lock:
                pool = _pools.get(key)
                conn = pool.pop() if pool else None
            if conn is not None:
                conn.execute("PRAGMA foreign_keys = ON")
                self._pooled_key: tuple[str, int, int] | None = key
                return conn
        # Set up with SQLite's busy handler (the PRAGMAs may wait for a lock); then without it: the
        # cursor waits for the write lock itself.
        conn = super().get_new_connection(conn_params)
        conn.execute("PRAGMA busy_timeout = 0")
        self._pooled_key = self._pool_key() if key is None else key
        return conn

    def _close(self) -> None:
        conn, key = self.connection, getattr(self, "_pooled_key", None)
        if conn is None:
            return
        try:
            self._close_or_pool(conn, key)
        finally:
            self._release_write_lock()  # closing ends the transaction, if one was open

    def _close_or_pool(self, conn: sqlite3.Connection, key: tuple[str, int, int] | None) -> None:
        if key is None or self.in_atomic_block or self.errors_occurred or not self._reusable(conn):
            super()._close()  # type: ignore[misc]
            return
        with _lock:
            pool = _pools.setdefault(key, [])
            if len(pool) < settings.SQLITE_POOL_SIZE:
                pool.append(conn)
                return
        super()._close()  # type: ignore[misc]

    def _reusable(self, conn: sqlite3.Connection) -> bool:
        """Roll back what is left open; a connection that cannot be is not reused."""
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error:
            return False
        return True
