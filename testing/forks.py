"""Run a function in a forked child (as django-q2 forks its workers) and get back what it returned."""

from __future__ import annotations

import os
from collections.abc import Callable


def in_forked_child(child: Callable[[], str]) -> str:
    """Fork, run `child` in the child and return its answer; the child never returns into the caller."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, child().encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 4096).decode()
    os.close(read)
    if status != 0:
        raise RuntimeError(f"the forked child exited with status {status}")
    return answer
