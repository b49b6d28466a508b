"""`python -m agentos_site.worker`: django-q2's `qcluster` under a supervisor that signals a process group.

honcho (like foreman) stops a Procfile process by sending SIGTERM to its process group. django-q2 1.11's
cluster does not survive that: its sentinel and workers die of the SIGTERM, and the main process, told to
stop by the same signal, waits forever for the dead sentinel to wake up (measured: `Q Cluster ... stopping.`
and nothing more, until honcho kills everything 5 s later). A Ctrl-C in a terminal is what it is built for:
SIGINT to the main process, which its children ignore, and the main stops them in order. So qcluster runs in
a process group of its own, and a SIGTERM, SIGINT or SIGHUP here becomes a SIGINT there. If this process is
killed, the cluster gets the same SIGINT from the kernel (PR_SET_PDEATHSIG), so it never outlives it.
"""

from __future__ import annotations

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
        os.killpg(cluster.pid, signal.SIGINT)

    for stop in STOP_SIGNALS:
        signal.signal(stop, relay)
    return cluster.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
