"""A request that waits on something other than the CPU gives up its concurrency slot while it waits.

The ASGI handler runs at most SYNC_VIEW_CONCURRENCY sync views at once per process, to bound the threads
that compete for the GIL. A view blocked in the SSOT's write queue (`ssot.writing`) uses no CPU, and
group commit wants as many writers queued as arrive: `with blocked():` lets another request run meanwhile
and takes a slot back afterwards. Outside such a handler (tests, commands, workers) it does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

# Set by the handler in the thread that runs a view: a context manager that frees the view's slot.
_release: ContextVar[Callable[[], contextlib.AbstractContextManager[None]] | None] = ContextVar(
    "agentos_release_slot", default=None
)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """Free this request's concurrency slot for the block (no CPU is used in it)."""
    release = _release.get()
    if release is None:
        yield
        return
    with release():
        yield


def serve_with(release: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
    """Install the slot release of the request running in this thread (the ASGI handler calls it)."""
    _release.set(release)
