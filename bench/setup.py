"""Django set up for a benchmark: its own var/ directory (so its SQLite and SSOT are fresh) and migrations;
and what several benchmarks share (percentiles, clients in threads)."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


def django_for_bench(name: str) -> Path:
    """Configure Django on a fresh var directory (unless DATABASE_URL names a server) and migrate."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    var = Path(tempfile.mkdtemp(prefix=f"agentos-bench-{name}-"))
    os.environ["AGENTOS_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if os.environ.get("DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)  # a server database may hold a former run
    return var


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def in_threads(count: int, target: Callable[[int], None]) -> float:
    """Run `target(index)` in `count` threads at once; the seconds until the last one ended."""
    started = time.monotonic()
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started
