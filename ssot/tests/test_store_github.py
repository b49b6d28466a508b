"""The GitHub store over real HTTP: PyGithub against the GitHub emulator on loopback (no database).

The behaviour every store shares is in test_store_contract.py; these tests hold the GitHub store to its
API-call budgets and to GitHub's failure modes: truncated trees, conflicts, rate limits, errors, bad tokens.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
import requests

from ssot.stores.base import StoreConflict, StoreRefused, StoreUnavailable, git_blob_sha
from ssot.stores.github import SEED_PATH, SEED_TREE, GitHubStore
from testing.github_emulator import GitHubEmulator, node_id
from testing.github_fixture import github_emulator, github_store, make_github_store

TREES = "GET /repos/{owner}/{repo}/git/trees/{sha}"
BLOBS = "GET /repos/{owner}/{repo}/git/blobs/{sha}"
REF = "GET /repos/{owner}/{repo}/branches/{branch}"
COMMIT_REQUESTS = {
    "POST /repos/{owner}/{repo}/git/trees": 1,
    "POST /repos/{owner}/{repo}/git/commits": 1,
    "PATCH /repos/{owner}/{repo}/git/refs/{ref}": 1,
}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GitHubEmulator]:
    with github_emulator(tmp_path) as emulator:
        yield emulator


@pytest.fixture
def store(emulator: GitHubEmulator) -> Iterator[GitHubStore]:
    store = github_store(emulator, max_rate_wait=5)
    yield store
    store.close()


def tasks(count: int, version: int = 1) -> dict[str, bytes]:
    return {f"tasks/T-{n}.json": b'{"task_id": "T-%d", "v": %d}' % (n, version) for n in range(count)}


class Client:
    """Raw HTTP to the emulator, as GitHub's documentation describes the exchanges."""

    def __init__(self, emulator: GitHubEmulator, token: str | None = None) -> None:
        self.api = f"{emulator.base_url}/repos/{emulator.owner}/{emulator.name}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or emulator.token}"

    def __call__(self, method: str, path: str, **kwargs: object) -> requests.Response:
        # Any keyword of requests passes through, which one object type cannot say.
        return self.session.request(method, self.api + path, timeout=5, **kwargs)  # type: ignore[arg-type]


# API-call budgets


def test_an_unchanged_head_costs_one_request_answered_304(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    head = emulator.push(tasks(3))
    assert store.head() == head
    emulator.reset_counts()
    calls = store.api_calls

    assert store.head() == head

    assert store.api_calls - calls == 1
    assert emulator.requests == {REF: 1}
    assert emulator.statuses == {304: 1}


def test_a_moved_head_is_seen_by_the_next_conditional_request(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    emulator.push(tasks(3))
    store.head()
    moved = emulator.push({"acks/m-1.json": b"{}"})
    emulator.reset_counts()

    assert store.head() == moved
    assert emulator.statuses == {200: 1}


def test_an_incremental_change_of_k_files_costs_two_trees_and_one_blob_each(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    old = emulator.push(tasks(50))
    new = emulator.push({**tasks(2, version=2), "acks/m-1.json": b"{}"}, deletes=["tasks/T-49.json"])
    emulator.reset_counts()
    calls = store.api_calls

    changes = store.changed(old, new)
    contents = {change.path: store.read(change.new_sha) for change in changes if not change.deleted}

    assert [change.path for change in changes] == [
        "acks/m-1.json",
        "tasks/T-0.json",
        "tasks/T-1.json",
        "tasks/T-49.json",
    ]
    assert contents["tasks/T-0.json"] == b'{"task_id": "T-0", "v": 2}'
    assert store.api_calls - calls == 2 + 3
    assert emulator.requests == {TREES: 2, BLOBS: 3}


def test_trees_and_blobs_are_read_once(emulator: GitHubEmulator, store: GitHubStore) -> None:
    old = emulator.push(tasks(5))
    new = emulator.push(tasks(1, version=2))
    store.changed(old, new)
    store.read(git_blob_sha(b'{"task_id": "T-0", "v": 2}'))
    calls = store.api_calls

    store.changed(old, new)
    store.list(new, "tasks")
    store.entry(old, "tasks/T-4.json")
    store.read(git_blob_sha(b'{"task_id": "T-0", "v": 2}'))

    assert store.api_calls == calls


def test_a_commit_on_a_known_parent_costs_exactly_three_requests(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    parent = emulator.push(tasks(10))
    store.list(parent)
    emulator.reset_counts()
    calls = store.api_calls

    sha = store.commit(
        parent=parent,
        writes={
            "tasks/T-0.json": b'{"status": "approved"}',
            "audit/2026/11/21.jsonl": b'{"action": "approve"}\n',
        },
        deletes=["tasks/T-9.json"],
        message="approve T-0",
        author="admin",
    )

    assert store.api_calls - calls == 3
    assert emulator.requests == COMMIT_REQUESTS
    assert emulator.head() == sha
    assert store.read(store.entry(sha, "tasks/T-0.json").sha) == b'{"status": "approved"}'
    assert store.entry(sha, "tasks/T-9.json") is None
    assert store.api_calls - calls == 3  # what the store committed, it reads back from its caches


def test_a_decision_after_a_sync_takes_at_most_five_requests(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    head = emulator.push(tasks(20))
    for entry in store.list(store.head()):  # the sync
        store.read(entry.sha)
    calls = store.api_calls

    parent = store.head()
    task = store.read(store.entry(parent, "tasks/T-7.json").sha)
    store.commit(
        parent=parent,
        writes={"tasks/T-7.json": task.replace(b"}", b', "status": "approved"}')},
        message="approve T-7",
        author="admin",
    )

    assert parent == head
    assert store.api_calls - calls == 4  # head (304), tree, commit, ref update


def test_a_commit_on_an_unknown_parent_reads_its_tree_once(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    parent = emulator.push(tasks(3))
    emulator.reset_counts()

    store.commit(parent=parent, writes={"acks/m-1.json": b"{}"}, message="ack", author="executor")

    assert emulator.requests == {"GET /repos/{owner}/{repo}/git/commits/{sha}": 1, **COMMIT_REQUESTS}


def test_thirty_thousand_files_are_listed_in_one_request(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    folders = ("tasks", "messages", "acks", "audit/2026/11")
    # Ten distinct contents keep the setup fast: git stores each blob once, whatever the number of paths.
    head = emulator.push({f"{folders[n % 4]}/f-{n}.json": b"%d" % (n % 10) for n in range(30_000)})
    emulator.reset_counts()

    listed = store.list(head)

    assert len(listed) == 30_000
    assert emulator.requests == {TREES: 1}


# Truncated trees


def test_a_truncated_recursive_tree_is_walked_folder_by_folder(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    writes = {f"messages/m-T-{n}-1.json": b'{"n": %d}' % n for n in range(1200)}
    head = emulator.push({**writes, "tasks/T-1.json": b"{}", "README.md": b"ssot"})
    emulator.truncate_trees_over(1000)
    emulator.reset_counts()

    listed = {entry.path: entry.sha for entry in store.list(head)}

    assert listed == {
        path: git_blob_sha(data)
        for path, data in {**writes, "tasks/T-1.json": b"{}", "README.md": b"ssot"}.items()
    }
    # root (truncated), root alone, messages/ (truncated), messages/ alone, tasks/
    assert emulator.requests == {TREES: 5}


# Conflicts and the first commit


def test_a_branch_moved_before_the_update_is_a_conflict_and_keeps_the_other_commit(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    parent = emulator.push(tasks(2))
    store.list(parent)
    moved: list[str] = []

    def another_client_pushes() -> None:
        emulator.before_ref_update = None
        moved.append(emulator.push({"tasks/T-0.json": b'{"by": "another client"}'}))

    emulator.before_ref_update = another_client_pushes

    with pytest.raises(StoreConflict, match="Update is not a fast forward"):
        store.commit(parent=parent, writes={"tasks/T-0.json": b"mine"}, message="mine", author="admin")

    assert emulator.head() == moved[0]
    assert store.head() == moved[0]


def test_the_first_commit_of_an_empty_repository_replaces_its_seed(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    first = store.commit(parent=None, writes={"tasks/T-1.json": b"{}"}, message="first", author="admin")

    seed = emulator.git[first].peel(pygit2.Commit).parents[0]
    assert [entry.name for entry in seed.tree] == [SEED_PATH]
    assert str(seed.tree_id) == SEED_TREE
    assert emulator.git[first].peel(pygit2.Commit).parents[0].parents == []
    assert [entry.path for entry in github_store(emulator).list(first)] == ["tasks/T-1.json"]
    assert emulator.requests["PUT /repos/{owner}/{repo}/contents/{path}"] == 1


def test_a_commit_on_another_clients_seed_drops_it(emulator: GitHubEmulator, store: GitHubStore) -> None:
    seeded = Client(emulator)("PUT", f"/contents/{SEED_PATH}", json={"message": "Initialise", "content": ""})
    assert seeded.status_code == 201

    sha = store.commit(parent=store.head(), writes={"tasks/T-1.json": b"{}"}, message="first", author="admin")

    assert [entry.path for entry in github_store(emulator).list(sha)] == ["tasks/T-1.json"]


def test_binary_content_is_uploaded_as_a_blob(emulator: GitHubEmulator, store: GitHubStore) -> None:
    data = bytes(range(256))
    sha = store.commit(parent=None, writes={"attachments/raw.bin": data}, message="bin", author="admin")

    assert github_store(emulator).read(store.entry(sha, "attachments/raw.bin").sha) == data
    assert emulator.requests["POST /repos/{owner}/{repo}/git/blobs"] >= 1


def test_a_missing_branch_has_no_head_but_a_missing_repository_is_unavailable(
    emulator: GitHubEmulator,
) -> None:
    emulator.push(tasks(1))

    assert github_store(emulator, branch="ssot").head() is None
    with pytest.raises(StoreUnavailable, match="agentos/elsewhere not found"):
        GitHubStore(token=emulator.token, repo="agentos/elsewhere", api_url=emulator.base_url).head()


# Rate limits and failures


def test_a_secondary_rate_limit_is_waited_out_then_retried(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    head = emulator.push(tasks(1))
    emulator.rate_limit_next(1, kind="secondary", retry_after=1)
    started = time.monotonic()

    assert store.head() == head

    assert time.monotonic() - started >= 1
    assert emulator.statuses == {429: 1, 200: 1}


def test_a_primary_rate_limit_waits_until_the_reset(emulator: GitHubEmulator, store: GitHubStore) -> None:
    head = emulator.push(tasks(1))
    emulator.rate_limit_next(1, kind="primary", retry_after=2)
    started = time.monotonic()

    assert store.head() == head

    assert 1 <= time.monotonic() - started < 4
    assert emulator.statuses == {403: 1, 200: 1}


def test_a_primary_rate_limit_reset_in_the_past_still_waits_a_second(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    head = emulator.push(tasks(1))
    emulator.rate_limit_next(1, kind="primary", retry_after=-30)
    started = time.monotonic()

    assert store.head() == head

    assert 1 <= time.monotonic() - started < 3


def test_a_rate_limit_beyond_max_rate_wait_fails_at_once(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    emulator.push(tasks(1))
    emulator.rate_limit_next(1, kind="secondary", retry_after=120)
    started = time.monotonic()

    with pytest.raises(
        StoreUnavailable, match=r"GitHub rate limited reading the branch until \d{4}-\d\d-\d\d"
    ):
        store.head()

    assert time.monotonic() - started < 1
    assert emulator.total_requests() == 1


def test_repeated_rate_limits_back_off_and_give_up_within_max_rate_wait(emulator: GitHubEmulator) -> None:
    emulator.push(tasks(1))
    store = github_store(emulator, max_rate_wait=2)
    emulator.rate_limit_next(10, kind="secondary", retry_after=1)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable, match="rate limited"):
        store.head()

    # Waited 1 s, then would have waited 2 s more (backing off): over the 2 s allowed, so it gave up.
    assert 1 <= time.monotonic() - started < 2
    assert emulator.total_requests() == 2


def test_a_server_error_is_unavailable_and_not_retried(emulator: GitHubEmulator, store: GitHubStore) -> None:
    emulator.push(tasks(1))
    emulator.fail_next(1, status=502)

    with pytest.raises(StoreUnavailable, match="GitHub answered 502 while reading the branch"):
        store.head()

    assert emulator.total_requests() == 1


def test_a_bad_token_is_unavailable_and_never_shown(emulator: GitHubEmulator) -> None:
    emulator.push(tasks(1))
    token = "ghp_s3cretTokenValue0123456789"
    store = GitHubStore(token=token, repo="agentos/ssot", api_url=emulator.base_url)

    with pytest.raises(StoreUnavailable) as raised:
        store.head()

    assert str(raised.value) == "GitHub rejected the token while reading the branch (Bad credentials)"
    assert token not in repr(raised.value)
    assert emulator.statuses == {401: 1}


def test_an_unreachable_github_is_unavailable(tmp_path: Path) -> None:
    store = make_github_store(tmp_path)
    store.emulator.stop()

    with pytest.raises(StoreUnavailable, match="GitHub unreachable while reading the branch") as raised:
        store.head()

    assert store.emulator.token not in str(raised.value)
    store.close()


# The emulator speaks GitHub's REST API


def test_emulator_errors_have_githubs_status_codes_and_messages(emulator: GitHubEmulator) -> None:
    api = Client(emulator)

    empty = api("GET", "/git/ref/heads/main")
    assert (empty.status_code, empty.json()["message"]) == (409, "Git Repository is empty.")
    assert api("GET", "/git/trees/main").status_code == 409

    emulator.push(tasks(1))
    bad = Client(emulator, token="wrong")("GET", "/git/ref/heads/main")
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": bad.json()["documentation_url"],
        "status": "401",
    }
    missing = api("GET", "/git/ref/heads/nope")
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")
    assert "documentation_url" in missing.json()
    assert api("GET", f"/git/blobs/{'0' * 40}").status_code == 404


def test_emulator_branch_answers_with_the_head_commit_and_its_tree(emulator: GitHubEmulator) -> None:
    api = Client(emulator)
    assert (api("GET", "/branches/main").status_code, api("GET", "/branches/main").json()["message"]) == (
        404,
        "Branch not found",
    )
    head = emulator.push(tasks(1))
    branch = api("GET", "/branches/main")
    body = branch.json()
    assert branch.status_code == 200
    assert (body["name"], body["commit"]["sha"]) == ("main", head)
    tree = body["commit"]["commit"]["tree"]["sha"]
    assert api("GET", f"/git/commits/{head}").json()["tree"]["sha"] == tree
    assert {"_links", "protected", "protection_url"} <= set(body)
    again = api("GET", "/branches/main", headers={"If-None-Match": branch.headers["ETag"]})
    assert again.status_code == 304


def test_a_decision_sized_commit_on_a_cold_store_costs_five_calls(emulator: GitHubEmulator) -> None:
    files = tasks(3)
    emulator.push(files)
    store = github_store(emulator)
    emulator.reset_counts()
    head = store.head()
    # The write path knows the task's blob SHA from its ledger: one blob read, no tree lookup.
    store.read(git_blob_sha(files["tasks/T-1.json"]))
    store.commit(
        parent=head,
        writes={"tasks/T-1.json": b"{}\n", "audit/2026/11/21.jsonl": b"{}\n"},
        message="decision",
        author="alice",
    )
    assert emulator.total_requests() == 5
    assert "GET /repos/{owner}/{repo}/git/commits/{sha}" not in emulator.requests


def test_emulator_refs_answer_with_an_etag_and_304(emulator: GitHubEmulator) -> None:
    head = emulator.push(tasks(1))
    api = Client(emulator)

    ref = api("GET", "/git/ref/heads/main")
    again = api("GET", "/git/refs/heads/main", headers={"If-None-Match": ref.headers["ETag"]})

    assert ref.status_code == 200
    assert ref.json() == {
        "ref": "refs/heads/main",
        "node_id": node_id("Ref", f"{emulator.name}:refs/heads/main"),
        "url": f"{api.api}/git/refs/heads/main",
        "object": {"sha": head, "type": "commit", "url": f"{api.api}/git/commits/{head}"},
    }
    assert (again.status_code, again.content) == (304, b"")
    for response in (ref, again):
        assert {
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
        } <= {name.lower() for name in response.headers}
    assert again.headers["x-ratelimit-used"] == ref.headers["x-ratelimit-used"]


def test_emulator_trees_and_blobs_have_githubs_shapes(emulator: GitHubEmulator) -> None:
    head = emulator.push({"tasks/T-1.json": b"{}", "README.md": b"ssot"})
    api = Client(emulator)

    tree = api("GET", f"/git/trees/{head}", params={"recursive": "1"}).json()
    blob_entry = next(item for item in tree["tree"] if item["path"] == "tasks/T-1.json")
    tree_entry = next(item for item in tree["tree"] if item["path"] == "tasks")
    blob = api("GET", f"/git/blobs/{blob_entry['sha']}").json()

    assert set(tree) == {"sha", "url", "tree", "truncated"}
    assert tree["sha"] == str(emulator.git[head].peel(pygit2.Commit).tree_id)
    assert tree["truncated"] is False
    assert [item["path"] for item in tree["tree"]] == ["README.md", "tasks", "tasks/T-1.json"]
    assert set(blob_entry) == {"path", "mode", "type", "sha", "size", "url"}
    assert (blob_entry["mode"], blob_entry["type"], blob_entry["size"]) == ("100644", "blob", 2)
    assert (tree_entry["mode"], tree_entry["type"]) == ("040000", "tree")
    assert set(blob) == {"sha", "node_id", "size", "url", "content", "encoding"}
    assert blob["encoding"] == "base64"
    assert base64.b64decode(blob["content"]) == b"{}"
    assert [item["path"] for item in api("GET", f"/git/trees/{tree['sha']}").json()["tree"]] == [
        "README.md",
        "tasks",
    ]


def test_emulator_writes_trees_commits_and_fast_forward_refs_only(emulator: GitHubEmulator) -> None:
    parent = emulator.push(tasks(1))
    base = str(emulator.git[parent].peel(pygit2.Commit).tree_id)
    api = Client(emulator)

    tree = api(
        "POST",
        "/git/trees",
        json={
            "base_tree": base,
            "tree": [
                {"path": "tasks/T-0.json", "mode": "100644", "type": "blob", "sha": None},
                {"path": "acks/a.json", "mode": "100644", "type": "blob", "content": "{}"},
            ],
        },
    )
    commit = api(
        "POST", "/git/commits", json={"message": "m", "tree": tree.json()["sha"], "parents": [parent]}
    )
    sideways = api("POST", "/git/commits", json={"message": "s", "tree": base, "parents": []})
    rejected = api("PATCH", "/git/refs/heads/main", json={"sha": sideways.json()["sha"], "force": False})
    updated = api("PATCH", "/git/refs/heads/main", json={"sha": commit.json()["sha"], "force": False})
    exists = api("POST", "/git/refs", json={"ref": "refs/heads/main", "sha": parent})
    missing_file = api(
        "POST",
        "/git/trees",
        json={
            "base_tree": base,
            "tree": [
                {"path": "nope.json", "mode": "100644", "type": "blob", "sha": None},
            ],
        },
    )

    assert tree.status_code == 201
    assert [item["path"] for item in tree.json()["tree"]] == ["acks"]
    assert commit.status_code == 201
    assert set(commit.json()) >= {"sha", "url", "author", "committer", "message", "tree", "parents"}
    assert commit.json()["parents"][0]["sha"] == parent
    assert (rejected.status_code, rejected.json()["message"]) == (422, "Update is not a fast forward")
    assert updated.status_code == 200
    assert updated.json()["object"]["sha"] == emulator.head() == commit.json()["sha"]
    assert (exists.status_code, exists.json()["message"]) == (422, "Reference already exists")
    assert (missing_file.status_code, missing_file.json()["message"]) == (422, "GitRPC::BadObjectState")


def test_emulator_injects_rate_limits_and_counts_routes(emulator: GitHubEmulator) -> None:
    head = emulator.push(tasks(1))
    api = Client(emulator)
    emulator.rate_limit_next(1, kind="secondary", retry_after=7)
    emulator.rate_limit_next(1, kind="primary", retry_after=60)
    emulator.reset_counts()

    secondary = api("GET", "/branches/main")
    primary = api("GET", f"/git/trees/{head}")
    served = api("GET", f"/git/trees/{head}")

    assert (secondary.status_code, secondary.headers["retry-after"]) == (429, "7")
    assert "secondary rate limit" in secondary.json()["message"]
    assert (primary.status_code, primary.headers["x-ratelimit-remaining"]) == (403, "0")
    assert int(primary.headers["x-ratelimit-reset"]) >= time.time() + 58
    assert primary.json()["message"].startswith("API rate limit exceeded")
    assert served.status_code == 200
    assert emulator.requests == {REF: 1, TREES: 2}
    assert emulator.total_requests() == 3


# Issue 16: GitHub's limits


def test_every_request_asks_for_githubs_media_type_and_api_version(
    emulator: GitHubEmulator, store: GitHubStore
) -> None:
    head = emulator.push(tasks(2))
    store.list(head)
    store.commit(parent=head, writes={"tasks/T-0.json": b"v2"}, message="m", author="admin")
    store.read(git_blob_sha(b"v2"))

    assert set(emulator.request_headers) == {("application/vnd.github+json", "2022-11-28")}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (422, "Protected branch update failed for refs/heads/main."),
        (422, "Repository rule violations found\n\nChanges must be made through a pull request."),
        (403, "Resource not accessible by integration"),
        (409, "Reference cannot be updated"),
    ],
)
def test_a_refused_ref_update_is_refused_at_once_with_githubs_message(
    emulator: GitHubEmulator, store: GitHubStore, status: int, message: str
) -> None:
    """Issue 16: a protected branch was retried as a conflict eight times, then answered a misleading 409."""
    head = emulator.push(tasks(1))
    emulator.refuse_ref_updates("main", status, message)
    emulator.reset_counts()

    with pytest.raises(StoreRefused) as refused:
        store.commit(parent=head, writes={"tasks/T-0.json": b"v2"}, message="m", author="admin")

    assert not isinstance(refused.value, StoreConflict)
    assert message.splitlines()[0] in str(refused.value)
    assert emulator.requests["PATCH /repos/{owner}/{repo}/git/refs/{ref}"] == 1
    assert emulator.head() == head


def test_a_missing_ref_is_refused_not_a_conflict(emulator: GitHubEmulator, store: GitHubStore) -> None:
    head = emulator.push(tasks(1))
    store.head()
    emulator.git.references.delete("refs/heads/main")
    emulator.git.references.create("refs/heads/other", head)

    with pytest.raises(StoreRefused, match="Reference does not exist"):
        store.commit(parent=head, writes={"tasks/T-0.json": b"v2"}, message="m", author="admin")


def test_the_history_of_a_path_is_one_request(emulator: GitHubEmulator, store: GitHubStore) -> None:
    first = emulator.push(tasks(3))
    head = emulator.push(tasks(2, version=2))
    emulator.reset_counts()
    calls = store.api_calls

    history = store.history("tasks/T-1.json")

    assert store.api_calls - calls == 1
    assert emulator.requests == {"GET /repos/{owner}/{repo}/commits": 1}
    assert [revision.commit for revision in history] == [head, first]
    assert [r.commit for r in store.history("tasks/T-2.json")] == [first]
