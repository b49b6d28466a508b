"""The store contract (SPEC section 4): every store answers the same way, whatever its backend."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest

from ssot.stores.base import Change, Store, StoreConflict, StoreNotFound, git_blob_sha
from ssot.stores.local import LocalStore


def commit(
    store: Store,
    parent: str | None,
    writes: Mapping[str, bytes] | None = None,
    deletes: Iterable[str] = (),
) -> str:
    return store.commit(parent=parent, writes=writes or {}, deletes=deletes, message="test", author="tester")


def files(store: Store, sha: str, prefix: str = "") -> dict[str, bytes]:
    return {entry.path: store.read(entry.sha) for entry in store.list(sha, prefix)}


def test_an_empty_repository_has_no_head(contract_store: Store) -> None:
    assert contract_store.head() is None


def test_the_first_commit_has_no_parent_and_becomes_the_head(contract_store: Store) -> None:
    first = commit(contract_store, None, {"tasks/T-1.json": b'{"task_id": "T-1"}'})

    assert contract_store.head() == first
    assert files(contract_store, first) == {"tasks/T-1.json": b'{"task_id": "T-1"}'}


def test_list_entry_and_read_round_trip(contract_store: Store) -> None:
    content = {"tasks/T-1.json": b'{"status": "new"}', "messages/m-T-1-1.json": b"{}\n", "README": b"ssot"}
    head = commit(contract_store, None, content)

    listed = {entry.path: entry.sha for entry in contract_store.list(head)}
    assert listed == {path: git_blob_sha(data) for path, data in content.items()}
    assert contract_store.entry(head, "tasks/T-1.json").sha == git_blob_sha(b'{"status": "new"}')
    assert contract_store.read(listed["README"]) == b"ssot"
    assert contract_store.entry(head, "tasks/T-2.json") is None


def test_nested_paths_are_listed_by_folder(contract_store: Store) -> None:
    head = commit(
        contract_store,
        None,
        {
            "audit/2026/11/21.jsonl": b'{"action": "approve"}\n',
            "audit/2026/12/01.jsonl": b'{"action": "reject"}\n',
            "tasks/T-1.json": b"{}",
            "tasks2/other.json": b"{}",
        },
    )

    assert sorted(entry.path for entry in contract_store.list(head, "audit/2026")) == [
        "audit/2026/11/21.jsonl",
        "audit/2026/12/01.jsonl",
    ]
    assert [entry.path for entry in contract_store.list(head, "tasks/")] == ["tasks/T-1.json"]
    assert [entry.path for entry in contract_store.list(head, "tasks")] == ["tasks/T-1.json"]
    assert contract_store.list(head, "missing") == []
    assert contract_store.entry(head, "audit/2026/11/21.jsonl").sha == git_blob_sha(
        b'{"action": "approve"}\n'
    )
    assert contract_store.entry(head, "audit/2026") is None


def test_deletes_remove_files_and_a_missing_path_is_ignored(contract_store: Store) -> None:
    first = commit(
        contract_store, None, {"acks/a.json": b"1", "acks/b.json": b"2", "audit/2026/11/21.jsonl": b"x"}
    )

    second = commit(
        contract_store, first, deletes=["acks/a.json", "audit/2026/11/21.jsonl", "tasks/none.json"]
    )

    assert files(contract_store, second) == {"acks/b.json": b"2"}
    assert contract_store.list(second, "audit") == []
    assert files(contract_store, first)["acks/a.json"] == b"1"


def test_writes_and_deletes_go_in_one_commit(contract_store: Store) -> None:
    first = commit(contract_store, None, {"tasks/T-1.json": b"old", "acks/a.json": b"1"})

    second = commit(
        contract_store,
        first,
        {"tasks/T-1.json": b"new", "audit/2026/11/21.jsonl": b"line\n"},
        ["acks/a.json"],
    )

    assert contract_store.head() == second
    assert files(contract_store, second) == {"tasks/T-1.json": b"new", "audit/2026/11/21.jsonl": b"line\n"}


def test_changed_reports_added_modified_and_deleted_files(contract_store: Store) -> None:
    first = commit(
        contract_store, None, {"tasks/keep.json": b"same", "tasks/edit.json": b"v1", "acks/gone.json": b"x"}
    )
    second = commit(
        contract_store,
        first,
        {"tasks/edit.json": b"v2", "audit/2026/11/21.jsonl": b"new"},
        ["acks/gone.json"],
    )

    changes = sorted(contract_store.changed(first, second), key=lambda change: change.path)

    assert changes == [
        Change("acks/gone.json", git_blob_sha(b"x"), None),
        Change("audit/2026/11/21.jsonl", None, git_blob_sha(b"new")),
        Change("tasks/edit.json", git_blob_sha(b"v1"), git_blob_sha(b"v2")),
    ]
    assert changes[0].deleted
    assert contract_store.changed(second, second) == []


def test_changed_from_nothing_lists_every_file(contract_store: Store) -> None:
    head = commit(contract_store, None, {"tasks/T-1.json": b"a", "heartbeats/executor.json": b"b"})

    changes = sorted(contract_store.changed(None, head), key=lambda change: change.path)

    assert changes == [
        Change("heartbeats/executor.json", None, git_blob_sha(b"b")),
        Change("tasks/T-1.json", None, git_blob_sha(b"a")),
    ]


def test_a_commit_on_a_stale_parent_conflicts_and_changes_nothing(contract_store: Store) -> None:
    first = commit(contract_store, None, {"tasks/T-1.json": b"v1"})
    second = commit(contract_store, first, {"tasks/T-1.json": b"v2"})

    with pytest.raises(StoreConflict):
        commit(contract_store, first, {"tasks/T-1.json": b"v3"})
    with pytest.raises(StoreConflict):
        commit(contract_store, None, {"tasks/T-1.json": b"v3"})

    assert contract_store.head() == second
    assert files(contract_store, second) == {"tasks/T-1.json": b"v2"}


def test_unknown_blobs_and_commits_are_not_found(contract_store: Store) -> None:
    head = commit(contract_store, None, {"tasks/T-1.json": b"v1"})

    with pytest.raises(StoreNotFound):
        contract_store.read(git_blob_sha(b"never written"))
    with pytest.raises(StoreNotFound):
        contract_store.list("f" * 40)
    assert contract_store.head() == head


def test_a_commits_author_is_read_back(contract_store: Store) -> None:
    first = contract_store.commit(parent=None, writes={"a.txt": b"1"}, message="one", author="executor")
    second = commit(contract_store, first, {"a.txt": b"2"})

    assert contract_store.author(first) == "executor"
    assert contract_store.author(second) == "tester"
    with pytest.raises(StoreNotFound):
        contract_store.author("f" * 40)


def test_a_folder_of_1200_files_is_listed_completely(contract_store: Store) -> None:
    writes = {f"messages/m-T-{n}-1.json": f'{{"n": {n}}}'.encode() for n in range(1200)}

    head = commit(contract_store, None, writes)

    listed = contract_store.list(head, "messages")
    assert len(listed) == 1200
    assert {entry.path: entry.sha for entry in listed} == {
        path: git_blob_sha(data) for path, data in writes.items()
    }


def test_concurrent_committers_never_lose_a_commit(contract_store: Store) -> None:
    workers = 20
    start = threading.Barrier(workers)

    def add_own_file(worker: int) -> str:
        start.wait()
        for _ in range(500):
            try:
                return commit(
                    contract_store, contract_store.head(), {f"workers/{worker}.txt": b"%d" % worker}
                )
            except StoreConflict:
                continue
        raise AssertionError(f"worker {worker} never committed")

    with ThreadPoolExecutor(workers) as pool:
        commits = list(pool.map(add_own_file, range(workers)))

    head = contract_store.head()
    assert files(contract_store, head) == {f"workers/{n}.txt": b"%d" % n for n in range(workers)}
    # Each commit adds one file to its parent: one commit per size from 1 to 20 means a chain, none lost.
    assert sorted(len(contract_store.list(sha)) for sha in commits) == list(range(1, workers + 1))


def test_a_submodule_entry_is_listed_as_a_gitlink_and_is_no_file(contract_store: Store) -> None:
    from testing.content import commit_gitlink

    first = commit(contract_store, None, {"tasks/T-1.json": b"{}"})
    emulator = getattr(contract_store, "emulator", None)
    repository = emulator.git.path if emulator else cast(LocalStore, contract_store).path
    target = "1" * 40
    head = commit_gitlink(repository, "tasks/T-2.json", target)

    listed = {entry.path: entry for entry in contract_store.list(head)}
    assert (listed["tasks/T-2.json"].sha, listed["tasks/T-2.json"].gitlink) == (target, True)
    assert listed["tasks/T-1.json"].gitlink is False
    assert contract_store.entry(head, "tasks/T-2.json") is None
    assert contract_store.changed(first, head) == [Change("tasks/T-2.json", None, target, gitlink=True)]
    with pytest.raises(StoreNotFound):
        contract_store.read(target)


def test_history_lists_the_commits_that_changed_a_path_newest_first(contract_store: Store) -> None:
    assert contract_store.history("tasks/T-1.json") == []
    first = contract_store.commit(
        parent=None, writes={"tasks/T-1.json": b"1"}, message="create T-1", author="executor"
    )
    other = contract_store.commit(
        parent=first, writes={"tasks/T-2.json": b"x"}, message="create T-2", author="coordinator"
    )
    second = contract_store.commit(
        parent=other, writes={"tasks/T-1.json": b"2"}, message="approve T-1 by admin", author="admin"
    )
    gone = contract_store.commit(
        parent=second, writes={}, deletes=["tasks/T-1.json"], message="rm", author="a"
    )

    history = contract_store.history("tasks/T-1.json")

    assert [(r.commit, r.author, r.message) for r in history] == [
        (gone, "a", "rm"),
        (second, "admin", "approve T-1 by admin"),
        (first, "executor", "create T-1"),
    ]
    assert all(r.at.tzinfo is not None for r in history)
    assert [r.commit for r in contract_store.history("tasks/T-1.json", limit=2)] == [gone, second]
    assert [r.commit for r in contract_store.history("tasks/T-2.json")] == [other]
    assert contract_store.history("tasks/none.json") == []
    # From an older commit back: what came after it is not listed.
    assert [r.commit for r in contract_store.history("tasks/T-1.json", start=other)] == [first]
    assert [r.commit for r in contract_store.history("tasks/T-1.json", start=second)] == [second, first]
    with pytest.raises(StoreNotFound):
        contract_store.history("tasks/T-1.json", start="f" * 40)


def test_file_at_reads_one_file_of_an_older_commit(contract_store: Store) -> None:
    from testing.content import commit_gitlink

    big = bytes(range(256)) * 4200  # over 1 MB, binary: GitHub's contents API refuses it; the blob API not
    first = commit(contract_store, None, {"tasks/T-1.json": b"v1", "bin/big.dat": big})
    second = commit(contract_store, first, {"tasks/T-1.json": b"v2"})
    emulator = getattr(contract_store, "emulator", None)
    repository = emulator.git.path if emulator else cast(LocalStore, contract_store).path
    linked = commit_gitlink(repository, "tasks/T-2.json", "1" * 40)

    assert contract_store.file_at(first, "tasks/T-1.json") == (git_blob_sha(b"v1"), b"v1")
    assert contract_store.file_at(second, "/tasks/T-1.json") == (git_blob_sha(b"v2"), b"v2")
    assert contract_store.file_at(second, "bin/big.dat") == (git_blob_sha(big), big)
    assert contract_store.file_at(second, "tasks/T-9.json") is None
    assert contract_store.file_at(second, "tasks") is None  # a folder is no file
    assert contract_store.file_at(linked, "tasks/T-2.json") is None  # nor a submodule
    with pytest.raises(StoreNotFound):
        contract_store.file_at("f" * 40, "tasks/T-1.json")
