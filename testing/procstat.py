"""The processes of a session, read from /proc: which are still running and how much CPU they used.

The Procfile tests ask whether a stopped process took its whole session with it; the webhook benchmark
adds up the CPU of a server and the workers it forked. Both walk /proc the same way, here. (psutil does the
same in C; one walk over /proc is all either needs, so the dependency is not worth adding.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Fields of /proc/PID/stat after the command's closing parenthesis, counted from 0 (proc(5) minus 3).
STATE, SESSION, UTIME, CSTIME = 0, 3, 11, 14


def _stats() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        yield int(entry.name), fields


def alive_in(sessions: set[int]) -> list[int]:
    """Processes (not zombies) of the given sessions still running."""
    return [pid for pid, fields in _stats() if fields[STATE] != "Z" and int(fields[SESSION]) in sessions]


def session_cpu(leader: int) -> float:
    """CPU seconds used so far by the processes of a session (a server and the workers it forked),
    including children it has reaped."""
    ticks = sum(
        sum(int(value) for value in fields[UTIME : CSTIME + 1])  # utime, stime, cutime, cstime
        for _, fields in _stats()
        if int(fields[SESSION]) == leader
    )
    return ticks / os.sysconf("SC_CLK_TCK")
