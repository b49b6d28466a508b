"""A task's history on GitHub, as its page reads it: the history request, then each version of the file.

Run: .venv/bin/python -m bench.task_history [--messages 20000] [--versions 5] [--rounds 3]

An SSOT (served by the GitHub emulator on loopback) holding --messages message files and one task written
--versions times. For each round, a cold GitHub store (nothing cached, as in a process that has read
nothing yet) lists the task's history and reads every version, two ways: through `Store.file_at`'s
generic form (`entry`, which lists the commit's whole tree, then `read`, the blob) and through the GitHub
store's own (one contents-API request a version). Prints the requests and the median time of each;
beside them, the local store (pygit2) reading the same repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.setup import django_for_bench

PATH = "tasks/T-1.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django_for_bench("task-history")

    from ssot.stores.base import Store
    from ssot.stores.local import LocalStore
    from testing.github_emulator import GitHubEmulator
    from testing.github_fixture import github_store

    root = Path(tempfile.mkdtemp(prefix="agentos-bench-history-"))
    emulator = GitHubEmulator(root / "github.git")
    emulator.start()
    messages = {
        f"messages/m-{n}.json": json.dumps({"msg_id": f"m-{n}", "payload": "x" * 200}).encode()
        for n in range(args.messages)
    }
    emulator.push(messages)
    for version in range(args.versions):
        document = {"task_id": "T-1", "status": "awaiting_approval", "version": version}
        emulator.push({PATH: json.dumps(document).encode()})
    print(
        f"task history on GitHub (emulator on loopback): {args.messages} messages beside one task of "
        f"{args.versions} versions; cold store each round, {args.rounds} rounds"
    )
    ways: dict[str, Callable[[Store, str], object]] = {
        "tree + blob (Store.file_at, generic)": lambda store, commit: Store.file_at(store, commit, PATH),
        "contents API (GitHubStore.file_at)": lambda store, commit: store.file_at(commit, PATH),
    }
    for label, read in ways.items():
        seconds, requests = [], 0
        for _ in range(args.rounds):
            store = github_store(emulator)
            emulator.reset_counts()
            started = time.monotonic()
            for revision in store.history(PATH):
                read(store, revision.commit)
            seconds.append(time.monotonic() - started)
            requests = sum(emulator.requests.values())
        print(f"  {label}: {requests} requests, median {statistics.median(seconds) * 1000:.1f} ms")

    local = LocalStore(emulator.git.path)
    started = time.monotonic()
    for revision in local.history(PATH):
        local.file_at(revision.commit, PATH)
    print(f"  floor (local store, pygit2, same repository): {(time.monotonic() - started) * 1000:.1f} ms")
    emulator.stop()


if __name__ == "__main__":
    main()
