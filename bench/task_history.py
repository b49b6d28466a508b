"""A task's history on GitHub, as its page reads it: the history request, then each version of the file.

Run: .venv/bin/python -m bench.task_history [--messages 20000] [--versions 5] [--rounds 3]

An SSOT (served by the GitHub emulator on loopback) holding --messages message files and one task written
--versions times. For each round, a cold GitHub store (nothing cached, as in a process that has read
nothing yet) lists the task's history and reads every version, two ways: through `Store.file_at`'s
generic form (`entry`, which lists the commit's whole tree, then `read`, the blob) and through the GitHub
store's own (one contents-API request a version). Prints the requests and the median time of each;
beside them, the local store (pygit2) reading the same repository.

Then the local store on a long history: --commits commits after the task's last change, each changing
one other file: `LocalStore.history` of a file changed in the newest commit and of the
task (further back than the history reads), against libgit2's own topological walk, which reads every
commit of the history before its first answer (what `history` used until 2026-12-01).
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
    parser.add_argument("--commits", type=int, default=30000)
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
    long_history(root / "long.git", args.commits)


def long_history(path: Path, commits: int) -> None:
    import pygit2

    from ssot.stores.local import LocalStore

    store = LocalStore.create(path)
    repo = pygit2.Repository(str(path))
    signature = pygit2.Signature("bench", "bench@agentos.local")
    builder = repo.TreeBuilder()
    folder = repo.TreeBuilder()
    folder.insert("T-1.json", repo.create_blob(b"{}"), pygit2.enums.FileMode.BLOB)
    builder.insert("tasks", folder.write(), pygit2.enums.FileMode.TREE)
    parent = [repo.create_commit(None, signature, signature, "task", builder.write(), [])]
    base = repo[parent[0]].peel(pygit2.Commit).tree
    for n in range(commits):
        builder = repo.TreeBuilder(base)  # the task, and one file every commit changes
        builder.insert("status.json", repo.create_blob(b"%d" % n), pygit2.enums.FileMode.BLOB)
        parent = [repo.create_commit(None, signature, signature, "message", builder.write(), parent)]
    repo.references.create("refs/heads/main", parent[0], force=True)
    print(f"local store, a history of {commits + 1} commits:")
    for label, file in (("a file of the newest commit", "status.json"), ("the task", PATH)):
        started = time.monotonic()
        found = store.history(file, limit=1)
        print(f"  history of {label}: {len(found)} found, {(time.monotonic() - started) * 1000:.1f} ms")
    started = time.monotonic()
    next(iter(repo.walk(parent[0], pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)))
    print(f"  libgit2's topological walk, to its first commit: {(time.monotonic() - started) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
