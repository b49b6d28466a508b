"""Cross-process locks that serialise updates of the mirror (and audit flushes), on any database.

PostgreSQL: a session advisory lock. SQLite: an flock on a file beside the database, which every
process on the machine sees (SQLite is single-machine by nature).
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

_local = threading.local()
# How often a lock with a timeout is tried again while another process holds it.
_POLL_SEC = (0.002, 0.05)


class LockTimeout(TimeoutError):
    """The lock stayed held by another process for the whole timeout."""


def _held() -> set[str]:
    if not hasattr(_local, "held"):
        _local.held = set()
    return _local.held


def _sqlite_lock_path(name: str) -> Path:
    db_name = str(connection.settings_dict["NAME"])
    base = Path(db_name) if db_name and not db_name.startswith(("file:", ":memory:")) else settings.VAR_DIR
    directory = base.parent if base.suffix else base
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f".{base.name}.{name}.lock"


@contextlib.contextmanager
def exclusive(name: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the named lock; re-entrant within a thread. With a timeout, raise LockTimeout if another
    process holds it that long (polled: neither database nor flock waits with a bound of its own)."""
    held = _held()
    if name in held:
        yield
        return
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    held.add(name)
    try:
        if connection.vendor == "postgresql":
            key = zlib.crc32(f"agentos:{name}".encode())
            _acquire(lambda: _pg_lock(key, wait=deadline is None), deadline, name)
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        else:
            with open(_sqlite_lock_path(name), "a+") as handle:
                _acquire(lambda: _flock(handle, wait=deadline is None), deadline, name)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        held.discard(name)


def _pg_lock(key: int, *, wait: bool) -> bool:
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            return True
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def _flock(handle: IO[str], *, wait: bool) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(attempt: Callable[[], bool], deadline: float | None, name: str) -> None:
    delay = _POLL_SEC[0]
    while not attempt():
        if deadline is not None and time.monotonic() >= deadline:
            raise LockTimeout(f"the {name} lock stayed held by another process")
        time.sleep(delay)
        delay = min(delay * 2, _POLL_SEC[1])


def mirror_lock() -> contextlib.AbstractContextManager[None]:
    """Serialises every writer of mirrored rows: syncs and the write path's ORM step."""
    return exclusive("mirror")


def write_lock(timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Queues this control plane's own SSOT writers, so they never conflict with one another.

    Conflicts then come only from agents pushing at the same moment, which the bounded retries absorb.
    """
    return exclusive("ssot-write", timeout)


def flush_lock() -> contextlib.AbstractContextManager[None]:
    """Serialises audit flushes, so a queued line is committed to the SSOT once."""
    return exclusive("audit-flush")
