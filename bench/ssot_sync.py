"""SSOT sync costs: full resync of 10,000 tasks + 20,000 messages, the no-op resync, and GitHub API calls.

Run: .venv/bin/python -m bench.ssot_sync [--tasks 10000 --messages 20000]
"""

from __future__ import annotations

import argparse
import resource
import time

from bench.setup import django_for_bench


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _content(tasks: int, messages: int) -> dict[str, bytes]:
    from ssot.documents import dump_json
    from testing.content import dispatch, task_doc

    files = {f"tasks/T-{n:05d}.json": dump_json(task_doc(f"T-{n:05d}", extra={"n": n})) for n in range(tasks)}
    for n in range(messages):
        message = dispatch(f"T-{n % tasks:05d}", n=n)
        files[f"messages/{message['msg_id']}.json"] = dump_json(message)
    return files


class _Counting:
    """Counts blob reads of a store."""

    def __init__(self, store) -> None:
        self.store, self.reads = store, 0
        real = store.read

        def read(sha: str) -> bytes:
            self.reads += 1
            return real(sha)

        store.read = read


def _writes(queries) -> int:
    """Row writes, not counting the sync state's own bookkeeping (when it last looked)."""
    return sum(
        1
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "ssot_syncstate" not in q["sql"]
    )


def local(tasks: int, messages: int) -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ssot.stores.factory import get_store
    from ssot.stores.local import LocalStore
    from ssot.sync import sync

    LocalStore.create(settings.SSOT_LOCAL_PATH)
    store = get_store()
    files = _content(tasks, messages)
    store.commit(parent=None, writes=files, message="bench content", author="coordinator")
    del files
    counting = _Counting(store)
    base_rss = _rss_mb()
    started = time.perf_counter()
    report = sync(full=True)
    seconds = time.perf_counter() - started
    print(
        f"local full resync: {report.files_read} files, {report.rows_written} rows in {seconds:.2f}s "
        f"= {report.rows_written / seconds:,.0f} rows/s; peak RSS {_rss_mb():.0f} MB "
        f"(before sync {base_rss:.0f} MB)"
    )
    counting.reads = 0
    for full in (False, True):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            report = sync(full=full)
            seconds = time.perf_counter() - started
        print(
            f"local no-op resync ({'full' if full else 'incremental'}): {counting.reads} blob reads, "
            f"{_writes(queries.captured_queries)} row writes besides the sync state, {seconds * 1000:.0f} ms"
        )


def github(tasks: int, changed: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ssot import services
    from ssot.documents import dump_json
    from ssot.stores.factory import reset_store
    from ssot.sync import sync
    from testing.content import task_doc
    from testing.github_fixture import github_emulator, github_store

    call_command("flush", interactive=False, verbosity=0)
    # The decisions below are alice's: a superuser decides at every level of the approval policy.
    get_user_model().objects.create_superuser("alice", "alice@example.com", None)
    with github_emulator(settings.VAR_DIR) as emulator:
        settings.SSOT_BACKEND = "github"
        settings.GITHUB_TOKEN = emulator.token
        settings.GITHUB_SSOT_REPO = f"{emulator.owner}/{emulator.name}"
        settings.GITHUB_API_URL = emulator.base_url
        # The agents write through their own client; the control plane's store starts cold before each
        # measurement, so no figure below leans on a cache warmed by the writer.
        agent = github_store(emulator)
        writes = {f"tasks/T-{n:05d}.json": dump_json(task_doc(f"T-{n:05d}")) for n in range(tasks)}
        writes["tasks/T-00000.json"] = dump_json(task_doc("T-00000", status="awaiting_approval"))
        writes["tasks/T-00001.json"] = dump_json(task_doc("T-00001", status="awaiting_approval"))
        agent.commit(parent=None, writes=writes, message="bench", author="coordinator")
        reset_store()
        sync(full=True)

        def measure(label: str, action, target: int) -> None:
            reset_store()
            emulator.reset_counts()
            action()
            commits = sum(
                n
                for route, n in emulator.requests.items()
                if route.startswith("POST /repos/{owner}/{repo}/git/commits")
            )
            calls = emulator.total_requests()
            print(f"github {label}: {calls} API calls (target <= {target}), {commits} commits")

        measure(f"no-op resync ({tasks} tasks)", sync, 3)
        updates = {
            f"tasks/T-{n:05d}.json": dump_json(task_doc(f"T-{n:05d}", status="done"))
            for n in range(2, changed + 2)
        }
        agent.commit(parent=agent.head(), writes=updates, message="k changes", author="coordinator")
        measure(f"resync with k={changed} changed files", sync, 3 + changed)
        measure(
            "admin decision (first of the day)",
            lambda: services.task_approve(task_id="T-00000", actor="alice", reason="bench"),
            5,
        )
        measure(
            "admin decision (day file exists)",
            lambda: services.task_reject(task_id="T-00001", actor="alice", reason="bench"),
            5,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--github-tasks", type=int, default=2_000)
    parser.add_argument("--changed", type=int, default=5)
    args = parser.parse_args()
    django_for_bench("ssot-sync")
    local(args.tasks, args.messages)
    github(args.github_tasks, args.changed)


if __name__ == "__main__":
    main()
