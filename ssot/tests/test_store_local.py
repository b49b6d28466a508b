"""The local store against plain git: clones, pushes, races, ref locks and the post-receive hook."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ssot.stores import post_receive
from ssot.stores.base import StoreConflict, StoreNotFound, StoreRefused, StoreUnavailable, git_blob_sha
from ssot.stores.hook import install_post_receive_hook
from ssot.stores.local import LOCK_WAIT_SEC, LocalStore
from testing.git import clone, git, git_commit, git_env, push

ZERO = "0" * 40
SECRETS = "s3cret,previous-secret"
NOTE = "agentos: control plane not reachable; the poll will catch up"


def store_commit(
    store: LocalStore, parent: str | None, writes: dict[str, bytes], deletes: tuple[str, ...] = ()
) -> str:
    return store.commit(
        parent=parent, writes=writes, deletes=deletes, message="control plane", author="admin"
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """A fresh bare repository; overrides the root conftest's settings-bound store, as no Django is needed."""
    return LocalStore.create(tmp_path / "ssot.git")


def test_create_is_idempotent_and_points_head_at_the_branch(tmp_path: Path) -> None:
    first = LocalStore.create(tmp_path / "deep" / "ssot.git", branch="ssot")
    head = store_commit(first, None, {"tasks/T-1.json": b"{}"})

    again = LocalStore.create(tmp_path / "deep" / "ssot.git", branch="ssot")

    assert again.head() == head
    assert git(first.path, "symbolic-ref", "HEAD") == "refs/heads/ssot"
    assert git(first.path, "rev-parse", "--is-bare-repository") == "true"


def test_create_refuses_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")

    with pytest.raises(StoreUnavailable, match="the local SSOT is unavailable") as raised:
        LocalStore.create(tmp_path / "notes")
    assert str(tmp_path) not in str(raised.value)


def test_a_missing_repository_is_unavailable_without_its_path(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "missing.git")
    with pytest.raises(StoreUnavailable, match=r"the local SSOT is unavailable") as raised:
        store.head()
    assert str(tmp_path) not in str(raised.value)
    with pytest.raises(StoreUnavailable, match=r"the local SSOT is unavailable"):
        store.read(git_blob_sha(b"1"))

    LocalStore.create(tmp_path / "missing.git")
    head = store_commit(store, None, {"a.txt": b"1"})
    assert store.read(store.entry(head, "a.txt").sha) == b"1"


def test_commit_rejects_paths_that_leave_their_folder(store: LocalStore) -> None:
    for path in ("../escape.json", "/tasks/T-1.json", "tasks//T-1.json", "tasks/.git/config", "tasks/"):
        with pytest.raises(ValueError, match="invalid SSOT path"):
            store_commit(store, None, {path: b"{}"})
    with pytest.raises(ValueError, match="clashes with another write or delete"):
        store_commit(store, None, {"tasks/T-1.json": b"{}"}, deletes=("tasks/T-1.json",))
    assert store.head() is None


def test_read_returns_blobs_only(store: LocalStore) -> None:
    head = store_commit(store, None, {"tasks/T-1.json": b'{"task_id": "T-1"}'})
    blob = store.entry(head, "tasks/T-1.json").sha
    tree = git(store.path, "rev-parse", f"{head}^{{tree}}")

    assert store.read(blob) == b'{"task_id": "T-1"}'
    assert store.read(blob.upper()) == b'{"task_id": "T-1"}'
    for not_a_blob in (head, tree, blob[:12], "not a sha"):
        with pytest.raises(StoreNotFound, match="no blob"):
            store.read(not_a_blob)


def test_a_commit_that_changes_nothing_returns_its_parent(store: LocalStore) -> None:
    head = store_commit(store, None, {"tasks/T-1.json": b"{}"})

    assert store_commit(store, head, {"tasks/T-1.json": b"{}"}, deletes=("tasks/none.json",)) == head
    assert git(store.path, "rev-list", "--count", "main") == "1"


def test_commits_carry_the_author_and_message(store: LocalStore) -> None:
    head = store.commit(parent=None, writes={"tasks/T-1.json": b"{}"}, message="approve T-1", author="alice")

    logged = git(store.path, "log", "-1", "--format=%an <%ae>|%cn|%s", head)
    assert logged == "alice <alice@agentos.local>|alice|approve T-1"


def test_a_clone_sees_store_commits_and_git_finds_the_repository_sound(
    store: LocalStore, tmp_path: Path
) -> None:
    first = store_commit(
        store, None, {"tasks/T-1.json": b'{"status": "new"}', "audit/2026/11/21.jsonl": b"a\n"}
    )
    store_commit(
        store, first, {"tasks/T-1.json": b'{"status": "approved"}'}, deletes=("audit/2026/11/21.jsonl",)
    )

    work = clone(store.path, tmp_path / "work")

    assert (work / "tasks" / "T-1.json").read_text() == '{"status": "approved"}'
    assert not (work / "audit").exists()
    git(store.path, "fsck", "--strict", "--no-dangling")


def test_a_git_push_moves_the_head_the_store_sees(store: LocalStore, tmp_path: Path) -> None:
    work = clone(store.path, tmp_path / "work")
    pushed = git_commit(work, "executor: T-1 done", {"tasks/T-1.json": '{"status": "done"}'})

    assert push(work).returncode == 0

    assert store.head() == pushed
    assert store.entry(pushed, "tasks/T-1.json").sha == git_blob_sha(b'{"status": "done"}')


def test_a_store_commit_on_a_head_that_a_push_moved_conflicts(store: LocalStore, tmp_path: Path) -> None:
    base = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    work = clone(store.path, tmp_path / "work")
    pushed = git_commit(work, "agent edit", {"tasks/T-1.json": "agent"})
    assert push(work).returncode == 0

    with pytest.raises(StoreConflict):
        store_commit(store, base, {"tasks/T-1.json": b"admin"})

    assert store.head() == pushed
    ours = store_commit(store, store.head(), {"tasks/T-1.json": b"admin"})
    assert git(store.path, "rev-list", "--count", ours) == "3"


def test_a_push_on_a_head_that_the_store_moved_is_rejected_until_rebased(
    store: LocalStore, tmp_path: Path
) -> None:
    base = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    work = clone(store.path, tmp_path / "work")
    git_commit(work, "agent message", {"messages/m-T-1-1.json": "{}"})
    ours = store_commit(store, base, {"tasks/T-1.json": b"admin"})

    rejected = push(work)
    assert rejected.returncode != 0
    assert store.head() == ours

    git(work, "pull", "--quiet", "--rebase", "origin", "main")
    assert push(work).returncode == 0
    assert {entry.path for entry in store.list(store.head())} == {"tasks/T-1.json", "messages/m-T-1-1.json"}
    assert git(store.path, "rev-list", "--count", "main") == "3"


def test_a_held_ref_lock_makes_the_commit_wait_then_answer_unavailable_naming_it(store: LocalStore) -> None:
    head = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    lock = store.path / "refs" / "heads" / "main.lock"
    lock.write_text("")  # what git receive-pack holds while it updates the branch

    started = time.monotonic()
    with pytest.raises(StoreRefused, match=r"locked by .*refs/heads/main\.lock"):
        store_commit(store, head, {"tasks/T-1.json": b"v2"})

    assert LOCK_WAIT_SEC <= time.monotonic() - started < LOCK_WAIT_SEC + 2
    assert lock.exists()
    assert store.head() == head


def test_a_stale_ref_lock_is_refused_at_once_naming_the_lock(store: LocalStore) -> None:
    """Issue 16: a `main.lock` left by a dead git process ended in 409 "kept changing" after 16.5 s."""
    head = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    lock = store.path / "refs" / "heads" / "main.lock"
    lock.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))

    started = time.monotonic()
    with pytest.raises(
        StoreRefused, match=r"refs/heads/main\.lock in the local SSOT \(for 3600 s\).*stale; remove it"
    ):
        store_commit(store, head, {"tasks/T-1.json": b"v2"})

    assert time.monotonic() - started < LOCK_WAIT_SEC
    assert store.head() == head


def test_a_briefly_held_ref_lock_only_delays_the_commit(store: LocalStore) -> None:
    head = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    lock = store.path / "refs" / "heads" / "main.lock"
    lock.write_text("")
    release = threading.Timer(0.3, lock.unlink)
    release.start()

    new = store_commit(store, head, {"tasks/T-1.json": b"v2"})

    release.join()
    assert store.head() == new != head


def test_a_packed_branch_is_read_and_moved_by_compare_and_swap(store: LocalStore) -> None:
    first = store_commit(store, None, {"tasks/T-1.json": b"v1"})
    second = store_commit(store, first, {"tasks/T-1.json": b"v2"})
    git(store.path, "pack-refs", "--all")
    assert not (store.path / "refs" / "heads" / "main").exists()

    assert store.head() == second
    with pytest.raises(StoreConflict):
        store_commit(store, first, {"tasks/T-1.json": b"stale"})
    third = store_commit(store, second, {"tasks/T-1.json": b"v3"})

    assert git(store.path, "rev-parse", "main") == third


def test_racing_pushes_and_store_commits_lose_nothing(store: LocalStore, tmp_path: Path) -> None:
    store_commit(store, None, {"seed.txt": b"0"})
    work = clone(store.path, tmp_path / "work")
    rounds = 8
    # Both writers start each round together, so every round is a race.
    each_round = threading.Barrier(2)

    def by_store() -> None:
        for n in range(rounds):
            each_round.wait()
            for _ in range(200):
                try:
                    store_commit(store, store.head(), {f"store/{n}.txt": b"%d" % n})
                    break
                except StoreConflict:
                    continue

    def by_git() -> None:
        for n in range(rounds):
            each_round.wait()
            git_commit(work, f"agent {n}", {f"agent/{n}.txt": str(n)})
            for _ in range(50):
                if push(work).returncode == 0:
                    break
                git(work, "pull", "--quiet", "--rebase", "origin", "main")

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(by_store), pool.submit(by_git)]:
            future.result()

    expected = {
        "seed.txt",
        *(f"store/{n}.txt" for n in range(rounds)),
        *(f"agent/{n}.txt" for n in range(rounds)),
    }
    assert {entry.path for entry in store.list(store.head())} == expected
    assert git(store.path, "rev-list", "--count", "main") == str(1 + 2 * rounds)
    git(store.path, "fsck", "--strict", "--no-dangling")


@dataclass
class Receiver:
    """A loopback HTTP server standing in for the control plane's webhook endpoint."""

    url: str
    deliveries: list[tuple[Message, bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    deliveries: list[tuple[Message, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.append((self.headers, body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Receiver(url=f"http://127.0.0.1:{server.server_port}/webhooks/github", deliveries=deliveries)
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhooks/github"


def install(store: LocalStore, tmp_path: Path, url: str) -> None:
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRETS + "\n")
    install_post_receive_hook(
        store.path,
        python=sys.executable,
        hook_url=url,
        secret_file=secret_file,
        repo_full_name="agentos/ssot",
        branch="main",
    )


def signed_by_first_secret(headers: Message, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Hub-Signature-256"], expected)


def test_the_hook_sends_one_signed_push_delivery_per_push(
    store: LocalStore, tmp_path: Path, receiver: Receiver
) -> None:
    before = store_commit(
        store, None, {"tasks/T-1.json": b"{}", "tasks/T-2.json": b"{}", "messages/m-T-1-1.json": b"{}"}
    )
    install(store, tmp_path, receiver.url)
    work = clone(store.path, tmp_path / "work")
    git_commit(work, "first", {"tasks/T-3.json": "{}", "tasks/T-1.json": '{"status": "done"}'})
    git_commit(work, "second", {"audit/2026/11/21.jsonl": "a\n"}, deletes=("tasks/T-2.json",))
    after = git_commit(
        work, "third", {"audit/2026/11/21.jsonl": "a\nb\n"}, deletes=("messages/m-T-1-1.json",)
    )

    assert push(work).returncode == 0

    assert len(receiver.deliveries) == 1
    headers, body = receiver.deliveries[0]
    assert signed_by_first_secret(headers, body)
    assert headers["X-GitHub-Event"] == "push"
    assert headers["User-Agent"] == "agentos-post-receive"
    assert headers["Content-Type"] == "application/json"
    assert len(headers["X-GitHub-Delivery"]) == 36
    event = json.loads(body)
    assert (event["ref"], event["before"], event["after"]) == ("refs/heads/main", before, after)
    assert (event["created"], event["deleted"], event["forced"]) == (False, False, False)
    assert event["repository"] == {"full_name": "agentos/ssot", "name": "ssot", "default_branch": "main"}
    assert event["pusher"]["name"]
    pushed = git(work, "rev-list", "--reverse", f"{before}..{after}").split()
    assert [commit["id"] for commit in event["commits"]] == pushed
    assert [
        (commit["message"].strip(), commit["added"], commit["modified"], commit["removed"])
        for commit in event["commits"]
    ] == [
        ("first", ["tasks/T-3.json"], ["tasks/T-1.json"], []),
        ("second", ["audit/2026/11/21.jsonl"], [], ["tasks/T-2.json"]),
        ("third", [], ["audit/2026/11/21.jsonl"], ["messages/m-T-1-1.json"]),
    ]
    assert event["commits"][0]["author"] == {"name": "executor", "email": "executor@agents.test"}
    assert datetime.fromisoformat(event["commits"][0]["timestamp"]).tzinfo is not None
    assert event["head_commit"] == event["commits"][-1]


def test_the_first_push_into_an_empty_repository_is_a_created_ref(
    store: LocalStore, tmp_path: Path, receiver: Receiver
) -> None:
    install(store, tmp_path, receiver.url)
    work = clone(store.path, tmp_path / "work")
    after = git_commit(work, "seed", {"tasks/T-1.json": "{}"})

    assert push(work).returncode == 0

    event = json.loads(receiver.deliveries[0][1])
    assert (event["before"], event["after"], event["created"], event["forced"]) == (ZERO, after, True, False)
    assert [(commit["id"], commit["added"]) for commit in event["commits"]] == [(after, ["tasks/T-1.json"])]


def test_a_push_of_more_than_2048_commits_sends_no_commit_list(
    store: LocalStore, tmp_path: Path, receiver: Receiver
) -> None:
    before = store_commit(store, None, {"seed.txt": b"0"})
    install(store, tmp_path, receiver.url)
    work = clone(store.path, tmp_path / "work")
    stream = []
    for n in range(2049):
        message, content = f"bulk {n}".encode(), f"{n}\n".encode()
        stream.append(b"commit refs/heads/main\ncommitter bulk <bulk@agents.test> 1763700000 +0000\n")
        stream.append(b"data %d\n%s\n" % (len(message), message))
        if n == 0:
            stream.append(f"from {before}\n".encode())
        stream.append(b"M 100644 inline bulk/%d.txt\ndata %d\n%s\n" % (n, len(content), content))
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=work, env=git_env(), input=b"".join(stream), check=True
    )
    git(work, "reset", "--quiet", "--hard", "main")

    assert push(work).returncode == 0

    event = json.loads(receiver.deliveries[0][1])
    assert (event["size"], event["commits"]) == (2049, [])
    assert event["head_commit"]["id"] == event["after"] == git(work, "rev-parse", "HEAD")
    assert event["head_commit"]["added"] == ["bulk/2048.txt"]


def test_a_push_succeeds_quickly_while_the_control_plane_is_down(store: LocalStore, tmp_path: Path) -> None:
    install(store, tmp_path, closed_port_url())
    work = clone(store.path, tmp_path / "work")
    pushed = git_commit(work, "seed", {"tasks/T-1.json": "{}"})

    started = time.monotonic()
    result = push(work)

    assert time.monotonic() - started < 5
    assert result.returncode == 0
    assert NOTE in result.stderr
    assert store.head() == pushed


def test_a_silent_control_plane_does_not_hold_the_push(store: LocalStore, tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections at the kernel level, never answers
        install(store, tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}/webhooks/github")
        work = clone(store.path, tmp_path / "work")
        git_commit(work, "seed", {"tasks/T-1.json": "{}"})

        started = time.monotonic()
        result = push(work)

        assert time.monotonic() - started < 5
    assert result.returncode == 0
    assert NOTE in result.stderr


def test_the_pushers_ssot_hook_url_overrides_the_installed_one(
    store: LocalStore, tmp_path: Path, receiver: Receiver
) -> None:
    install(store, tmp_path, closed_port_url())
    work = clone(store.path, tmp_path / "work")
    after = git_commit(work, "seed", {"tasks/T-1.json": "{}"})

    result = push(work, env=git_env(SSOT_HOOK_URL=receiver.url))

    assert NOTE not in result.stderr
    assert [json.loads(body)["after"] for _, body in receiver.deliveries] == [after]


def test_the_hook_settings_hold_no_secret(store: LocalStore, tmp_path: Path) -> None:
    install(store, tmp_path, "http://127.0.0.1:8000/webhooks/github")

    hook = store.path / "hooks" / "post-receive"
    settings = (store.path / "hooks" / "agentos-hook.json").read_text()
    assert os.access(hook, os.X_OK)
    # The program that runs is the module ruff and these tests read, behind the interpreter's line.
    assert hook.read_text() == f"#!{sys.executable}\n" + Path(post_receive.__file__).read_text()
    assert "s3cret" not in settings + hook.read_text()
    assert json.loads(settings)["secret_file"] == str(tmp_path / "webhook_secret")


def test_the_hook_install_explains_bad_arguments(store: LocalStore, tmp_path: Path) -> None:
    arguments: dict[str, Any] = {
        "secret_file": tmp_path / "s",
        "repo_full_name": "agentos/ssot",
        "branch": "main",
    }
    with pytest.raises(ValueError, match="absolute path without spaces"):
        install_post_receive_hook(store.path, python="python3", hook_url="http://x", **arguments)
    with pytest.raises(ValueError, match="must be http"):
        install_post_receive_hook(
            store.path, python=sys.executable, hook_url="file:///etc/passwd", **arguments
        )
    with pytest.raises(FileNotFoundError, match="not a bare git repository"):
        install_post_receive_hook(tmp_path / "nope", python=sys.executable, hook_url="http://x", **arguments)


def test_a_new_ssot_refuses_force_pushes_and_branch_deletion(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "ssot.git")
    store.commit(parent=None, writes={"a.txt": b"1"}, message="first", author="coordinator")
    work = clone(store.path, tmp_path / "work")
    git(work, "commit", "--quiet", "--amend", "-m", "rewritten")
    forced = subprocess.run(
        ["git", "push", "--force", "origin", "HEAD:main"],
        cwd=work,
        env=git_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    deleted = subprocess.run(
        ["git", "push", "origin", ":main"],
        cwd=work,
        env=git_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert forced.returncode != 0 and "non-fast-forward" in forced.stderr
    assert deleted.returncode != 0 and "deletion prohibited" in deleted.stderr
    assert [entry.path for entry in store.list(store.head())] == ["a.txt"]


def test_a_repository_that_vanishes_is_unavailable_not_empty(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "ssot.git")
    store.commit(parent=None, writes={"a.txt": b"1"}, message="first", author="coordinator")
    assert store.head() is not None
    (tmp_path / "ssot.git").rename(tmp_path / "moved.git")
    with pytest.raises(StoreUnavailable):
        store.head()


def _raw_commit(store: LocalStore, parents: list[str], files: dict[str, bytes], when: int) -> str:
    """A commit straight into the repository, with the date its pusher chose (not moved to by any ref)."""
    import pygit2

    repo = pygit2.Repository(str(store.path))
    index = pygit2.Index()
    if parents:
        index.read_tree(repo[parents[0]].peel(pygit2.Commit).tree)
    for path, data in files.items():
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB))
    signature = pygit2.Signature("agent", "agent@example.com", when, 0)
    return str(repo.create_commit(None, signature, signature, "m", index.write_tree(repo), parents))


def _point_branch_at(store: LocalStore, commit: str) -> None:
    import pygit2

    pygit2.Repository(str(store.path)).references.create("refs/heads/main", commit, force=True)


def test_history_lists_a_commit_before_its_parent_whatever_the_dates_say(store: LocalStore) -> None:
    """A pusher sets commit dates: a child dated before its parent is still the newer version."""
    older = _raw_commit(store, [], {"tasks/T-1.json": b"1"}, when=2_000_000_000)
    backdated = _raw_commit(store, [older], {"tasks/T-1.json": b"2"}, when=1_000_000_000)
    _point_branch_at(store, _raw_commit(store, [backdated], {"tasks/T-2.json": b"x"}, when=1_500_000_000))

    assert [r.commit for r in store.history("tasks/T-1.json")] == [backdated, older]


def test_history_lists_a_version_merged_from_a_side_branch_after_the_merge(store: LocalStore) -> None:
    base = _raw_commit(store, [], {"tasks/T-1.json": b"1"}, when=1_000)
    side = _raw_commit(store, [base], {"tasks/T-1.json": b"2"}, when=2_000)
    main = _raw_commit(store, [base], {"tasks/T-2.json": b"x"}, when=3_000)
    merge = _raw_commit(store, [main, side], {"tasks/T-1.json": b"2"}, when=4_000)
    _point_branch_at(store, merge)

    assert [r.commit for r in store.history("tasks/T-1.json")] == [merge, side, base]


def test_history_reads_further_back_in_batches_up_to_its_bound(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ssot.stores import local

    monkeypatch.setattr(local, "HISTORY_BATCH", 8)
    monkeypatch.setattr(local, "HISTORY_SCAN", 100)
    far = store_commit(store, store.head(), {"tasks/far.json": b"1"})
    near = None
    for n in range(60):
        head = store_commit(store, store.head(), {f"messages/m-{n}.json": b"{}"})
        if n == 19:
            near = store_commit(store, head, {"tasks/near.json": b"1"})

    assert [r.commit for r in store.history("tasks/near.json")] == [near]  # 41 commits back: 3 batches
    assert store.history("tasks/far.json") != []  # 61 back
    for n in range(60, 100):
        store_commit(store, store.head(), {f"messages/m-{n}.json": b"{}"})
    assert store.history("tasks/far.json") == []  # 101 back: past the bound
    assert [r.commit for r in store.history("tasks/far.json", start=far)] == [far]
