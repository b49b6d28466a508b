"""Cross-process locks that serialise updates of the mirror (and audit flushes), on any database.

PostgreSQL: a session advisory lock. SQLite: an flock on a file beside the database, which every
process on the machine sees (SQLite is single-machine by nature).
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

_local = threading.local()


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
def exclusive(name: str) -> Iterator[None]:
    """Hold the named lock; re-entrant within a thread."""
    held = _held()
    if name in held:
        yield
        return
    held.add(name)
    try:
        if connection.vendor == "postgresql":
            key = zlib.crc32(f"agentos:{name}".encode())
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        else:
            with open(_sqlite_lock_path(name), "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        held.discard(name)


def mirror_lock() -> contextlib.AbstractContextManager[None]:
    """Serialises every writer of mirrored rows: syncs and the write path's ORM step."""
    return exclusive("mirror")


def write_lock() -> contextlib.AbstractContextManager[None]:
    """Queues this control plane's own SSOT writers, so they never conflict with one another.

    Conflicts then come only from agents pushing at the same moment, which the bounded retries absorb.
    """
    return exclusive("ssot-write")


def flush_lock() -> contextlib.AbstractContextManager[None]:
    """Serialises audit flushes, so a queued line is committed to the SSOT once."""
    return exclusive("audit-flush")
