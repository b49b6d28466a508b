"""The GitHub emulator answers with the shapes GitHub's OpenAPI description requires (issue 16).

Its answers to the GitHub store doing everything it does, and to the error cases, are validated against
a trimmed copy of @octokit/openapi's description (testing/openapi/github.json).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ssot.stores.base import StoreConflict, StoreNotFound, StoreRefused, git_blob_sha
from testing import openapi
from testing.content import commit_gitlink
from testing.github_emulator import GitHubEmulator
from testing.github_fixture import github_emulator, github_store


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GitHubEmulator]:
    with github_emulator(tmp_path) as emulator:
        emulator.answers = []
        yield emulator


def _assert_conform(emulator: GitHubEmulator) -> None:
    assert emulator.answers, "nothing was answered"
    errors = [
        error
        for route, status, payload in emulator.answers
        for error in openapi.validate(route, status, payload)
    ]
    assert errors == [], "\n".join(errors)


def test_the_stores_whole_conversation_conforms(emulator: GitHubEmulator) -> None:
    store = github_store(emulator, max_rate_wait=5)
    first = store.commit(parent=None, writes={"tasks/T-1.json": b"{}"}, message="first", author="admin")
    second = store.commit(
        parent=first,
        writes={"tasks/T-2.json": b"{}", "bin/x.dat": b"\x00\xff"},
        deletes=["tasks/T-1.json"],
        message="second",
        author="admin",
    )
    fresh = github_store(emulator, max_rate_wait=5)
    assert fresh.head() == second
    assert fresh.head() == second  # 304
    assert {entry.path for entry in fresh.list(second)} == {"tasks/T-2.json", "bin/x.dat"}
    assert fresh.read(git_blob_sha(b"\x00\xff")) == b"\x00\xff"
    fresh.changed(first, second)
    assert [revision.commit for revision in fresh.history("tasks/T-2.json")] == [second]
    assert github_store(emulator).file_at(first, "tasks/T-1.json") == (git_blob_sha(b"{}"), b"{}")
    assert github_store(emulator).file_at(second, "tasks") is None  # a directory: an array
    linked = commit_gitlink(emulator.git.path, "tasks/T-9.json", "1" * 40)
    assert github_store(emulator).file_at(linked, "tasks/T-9.json") is None  # a submodule
    assert github_store(emulator).file_at(linked, "tasks") is None  # a directory listing one
    assert github_store(emulator).file_at(second, "tasks/T-1.json") is None  # 404
    with pytest.raises(StoreNotFound):
        github_store(emulator).file_at("0" * 40, "tasks/T-2.json")  # 404, no such commit
    emulator.push({"tasks/T-3.json": b"{}"})
    with pytest.raises(StoreConflict):
        store.commit(parent=second, writes={"tasks/T-4.json": b"{}"}, message="late", author="admin")
    emulator.refuse_ref_updates("main")
    with pytest.raises(StoreRefused):
        store.commit(parent=emulator.head(), writes={"tasks/T-4.json": b"{}"}, message="m", author="admin")

    _assert_conform(emulator)


def test_error_answers_conform(emulator: GitHubEmulator) -> None:
    head = emulator.push({"tasks/T-1.json": b"{}"})
    api = f"{emulator.base_url}/repos/{emulator.owner}/{emulator.name}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emulator.token}"
    session.get(f"{api}/git/blobs/{'0' * 40}", timeout=5)  # 404
    session.get(f"{api}/git/commits/{'0' * 40}", timeout=5)  # 404
    session.get(f"{api}/git/ref/heads/nope", timeout=5)  # 404
    session.post(f"{api}/git/refs", json={"ref": "refs/heads/main", "sha": head}, timeout=5)  # 422
    session.patch(f"{api}/git/refs/heads/main", json={"sha": "0" * 40}, timeout=5)  # 422
    session.post(f"{api}/git/trees", json={"tree": [{"path": "x"}]}, timeout=5)  # 422
    session.get(f"{api}/git/trees/{'0' * 40}", timeout=5)  # 404
    emulator.blob_limit = 1
    session.get(f"{api}/git/blobs/{git_blob_sha(b'{}')}", timeout=5)  # 403 too_large

    assert {status for _, status, _ in emulator.answers} >= {403, 404, 422}
    _assert_conform(emulator)


def test_one_file_of_an_older_commit_costs_one_request(emulator: GitHubEmulator) -> None:
    """The contents API: one request where listing the commit's tree and reading the blob took two or
    more; a file over 1 MB, which it refuses (403 too_large), is read from the blob API instead."""
    big = b"x" * (1024 * 1024 + 1)
    first = emulator.push({"tasks/T-1.json": b"v1", "bin/big.dat": big})
    emulator.push({"tasks/T-1.json": b"v2"})
    store = github_store(emulator)
    emulator.reset_counts()

    assert store.file_at(first, "tasks/T-1.json") == (git_blob_sha(b"v1"), b"v1")
    assert dict(emulator.requests) == {"GET /repos/{owner}/{repo}/contents/{path}": 1}
    assert store.file_at(first, "bin/big.dat") == (git_blob_sha(big), big)
    assert emulator.statuses[403] == 1
    _assert_conform(emulator)
