"""`python -m agentos_site.worker`: django-q2's `qcluster` for a supervisor that signals a process group.

qcluster runs in a process group of its own; SIGTERM, SIGINT or SIGHUP here becomes a SIGINT there.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# Why (docs/design.md, "Running it"): django-q2 1.11's cluster hangs forever when its whole group gets
# SIGTERM, as honcho sends it; it stops in order on a Ctrl-C (SIGINT to its main process, which its
# children ignore). If this process is killed, the kernel sends the cluster that SIGINT itself.


def _stop_with_parent(parent: int) -> None:
    """In the child, before qcluster starts: a SIGINT when this process dies, even by SIGKILL."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT) != 0:
        os._exit(1)
    if os.getppid() != parent:  # died before the request took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    """Run qcluster (with `argv`) until it exits; relay a stop request to it as a Ctrl-C."""
    parent = os.getpid()
    cluster = subprocess.Popen(
        [sys.executable, str(MANAGE), "qcluster", *argv],
        process_group=0,
        preexec_fn=lambda: _stop_with_parent(parent),  # one thread here: safe
    )

    def relay(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):  # the cluster has exited already
            os.killpg(cluster.pid, signal.SIGINT)

    for stop in STOP_SIGNALS:
        signal.signal(stop, relay)
    return cluster.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
