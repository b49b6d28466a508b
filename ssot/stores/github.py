"""The GitHub store: a branch of a GitHub repository, through PyGithub and the Git Data API (SPEC section 4).

The only module that imports PyGithub. Reads list trees and read blobs (never the contents API), cached by
SHA since git objects never change; the branch head is a conditional request, so an unchanged head costs a
304. A commit is one tree, one commit and one fast-forward-only ref update (an empty repository first gets
a one-file seed commit: GitHub's Git Data API cannot write to it). Rate limits are waited out as GitHub asks
(`retry-after`, `x-ratelimit-reset`, else a minute, backing off) up to `max_rate_wait` seconds in all, and
not at all inside `no_waiting()` (the write path holds its lock there): `StoreRateLimited` at once.
Only "not a fast forward" on the ref update is a conflict; any other refusal is `StoreRefused`. A folder
GitHub will not list whole raises `StoreIncomplete`; a branch read lagging behind our own commit is not
taken (see `_lagging`).

PyGithub is blocking: async code must call the store through
`asgiref.sync.sync_to_async(..., thread_sensitive=False)` or a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import requests
from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GithubObject import CompletableGithubObject, NotSet
from github.GitRef import GitRef
from github.GitTree import GitTree
from github.Requester import Requester

from ssot.stores.base import (
    HISTORY_LIMIT,
    Change,
    Entry,
    Revision,
    Store,
    StoreBlobRefused,
    StoreConflict,
    StoreIncomplete,
    StoreNotFound,
    StoreRateLimited,
    StoreRefused,
    StoreUnavailable,
    git_blob_sha,
)

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
G = TypeVar("G", bound=CompletableGithubObject)

MEDIA_TYPE = "application/vnd.github+json"
API_VERSION = "2022-11-28"
SECONDARY_RATE_WAIT = 60.0
# A branch read behind our own last commit is taken for replica lag (not a rewind) this long after it,
# and recognised through this many of our own commits back.
LAG_GRACE_SEC = 60.0
LAG_CHAIN = 1000  # GitHub: "otherwise, wait for at least one minute before retrying"
BLOB_CACHE_BYTES = 32 * 1024 * 1024
LISTING_CACHE_ENTRIES = 400_000
COMMIT_CACHE_ENTRIES = 10_000
POOL_SIZE = 32  # as many connections as asgiref's default executor has threads
# The seed of an empty repository (see GitHubStore._seed) and its tree's SHA, hashed as git does.
SEED_PATH = ".gitkeep"
SEED_FILES = {SEED_PATH: git_blob_sha(b"")}
_SEED_ENTRY = b"100644 " + SEED_PATH.encode() + b"\0" + bytes.fromhex(SEED_FILES[SEED_PATH])
SEED_TREE = hashlib.sha1(b"tree %d\0" % len(_SEED_ENTRY) + _SEED_ENTRY, usedforsecurity=False).hexdigest()


class _Cache(Generic[K, V]):
    """A thread-safe LRU map bounded by the total weight of its values."""

    def __init__(self, capacity: int, weigh: Callable[[V], int]) -> None:
        self._capacity = capacity
        self._weigh = weigh
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        if weight > self._capacity:
            return
        with self._lock:
            if key in self._items:
                self._weight -= self._items.pop(key)[1]
            self._items[key] = (value, weight)
            self._weight += weight
            while self._weight > self._capacity:
                self._weight -= self._items.popitem(last=False)[1][1]


class _Gitlink(str):
    """The SHA of a submodule entry in a cached listing: a commit of another repository, not a blob."""

    __slots__ = ()


class _CountingToken(Auth.Token):
    """Token authentication that counts the requests it signs: every HTTP request the store makes.

    It also asks for GitHub's media type on every request (PyGithub leaves requests' `Accept: */*`).
    """

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.calls = 0
        self._lock = threading.Lock()

    def authentication(self, headers: dict) -> None:
        with self._lock:
            self.calls += 1
        headers.setdefault("Accept", MEDIA_TYPE)
        super().authentication(headers)


_FAST_FORWARD = re.compile(r"fast[ -]forward", re.IGNORECASE)


def _plain(sha: str | None) -> str | None:
    return None if sha is None else str(sha)


def _message(exc: GithubException) -> str:
    data = exc.data
    message = data.get("message") if isinstance(data, dict) else None
    return str(message or exc.message or "no message")


def _too_large(exc: GithubException) -> bool:
    """GitHub's answer for a blob over 100 MB: 403 with an error coded `too_large`."""
    data = exc.data if isinstance(exc.data, dict) else {}
    errors = data.get("errors")
    coded = isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("code") == "too_large" for e in errors
    )
    return coded or ("too large" in _message(exc).lower())


def _rate_limit_wait(exc: GithubException, attempt: int) -> float | None:
    """Seconds GitHub asks us to wait before retrying, or None when `exc` is not a rate limit."""
    if exc.status not in (403, 429):
        return None
    headers = {key.lower(): value for key, value in (exc.headers or {}).items()}
    floor = float(2**attempt)  # repeated limits back off exponentially, as GitHub asks
    if "retry-after" in headers:
        try:
            return max(float(headers["retry-after"]), floor)
        except ValueError:
            return max(SECONDARY_RATE_WAIT, floor)
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        return max(float(headers["x-ratelimit-reset"]) - time.time(), floor)
    if exc.status == 429 or Requester.isRateLimitError(_message(exc)):
        return max(SECONDARY_RATE_WAIT, floor)
    return None


class GitHubStore(Store):
    """A branch of a GitHub repository, read through trees and blobs and written by fast-forward commits."""

    backend = "github"

    def __init__(
        self,
        *,
        token: str,
        repo: str,
        branch: str = "main",
        api_url: str = "https://api.github.com",
        timeout: float = 10,
        max_rate_wait: float = 60,
    ) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise ValueError(f"the GitHub repository must read owner/name, not {repo!r}")
        self.repo = repo
        self.branch = branch
        self.max_rate_wait = max_rate_wait
        self._token = token
        self._auth = _CountingToken(token)
        # Lazy objects cost no request until used; PyGithub's own retries and request spacing are off because
        # _call() honours GitHub's rate-limit answers itself and counts every request.
        self._github = Github(
            auth=self._auth,
            base_url=api_url.rstrip("/"),
            timeout=timeout,  # type: ignore[arg-type]  # requests takes a float
            user_agent="agentos-control-plane",
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
            api_version=API_VERSION,
            pool_size=POOL_SIZE,
        )
        self._requester = self._github.requester
        self._repo = self._github.get_repo(repo)
        self._path = f"/repos/{repo}"
        self._head_lock = threading.Lock()
        self._head_etag: str | None = None
        self._head_sha: str | None = None
        self._blobs: _Cache[str, bytes] = _Cache(BLOB_CACHE_BYTES, len)
        self._listings: _Cache[str, dict[str, str]] = _Cache(
            LISTING_CACHE_ENTRIES, lambda files: len(files) + 1
        )
        self._commit_trees: _Cache[str, str] = _Cache(COMMIT_CACHE_ENTRIES, lambda _: 1)
        self._truncated: dict[str, builtins.list[str]] = {}  # tree -> folders cut short (see _walk)
        # Our own commits (child -> parent, bounded) and the last one made, with when: see _lagging.
        self._parents: OrderedDict[str, str] = OrderedDict()
        self._our_head: tuple[str, float] | None = None
        self._thread = threading.local()
        self._writes = 0
        self._writes_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        """HTTP requests this store has made (diagnostics and call-budget tests)."""
        return self._auth.calls

    @property
    def content_requests(self) -> int:
        return self._writes

    @contextlib.contextmanager
    def no_waiting(self) -> Iterator[None]:
        previous = getattr(self._thread, "no_waiting", False)
        self._thread.no_waiting = True
        try:
            yield
        finally:
            self._thread.no_waiting = previous

    def _made(self, sha: str, parent: str | None) -> None:
        """Remember a commit this store made: the branch is at it now, whatever a lagging read says."""
        with self._head_lock:
            if parent is not None and sha != parent:
                self._parents[sha] = parent
                while len(self._parents) > LAG_CHAIN:
                    self._parents.popitem(last=False)
            self._our_head = (sha, time.monotonic())
            self._head_sha, self._head_etag = sha, None

    def _wrote(self) -> None:
        """Count a content-creating request (made or refused alike: GitHub counts both)."""
        with self._writes_lock:
            self._writes += 1

    # Reads

    def head(self) -> str | None:
        # The branch endpoint, not the ref: its answer carries the head commit's tree SHA, so a commit on
        # this head needs no extra read of the parent commit (a decision stays within 5 calls, cold).
        with self._head_lock:
            headers = {"If-None-Match": self._head_etag} if self._head_etag else None
            url = f"{self._path}/branches/{quote(self.branch)}"
            try:
                response_headers, data = self._call(
                    "reading the branch",
                    lambda: self._requester.requestJsonAndCheck("GET", url, headers=headers),
                )
            except GithubException as exc:
                self._head_etag = self._head_sha = None
                if exc.status == 409:  # GitHub's answer while the repository has no commit at all
                    return None
                if exc.status == 404:  # no such branch yet (or no such repository: that one raises)
                    self._check_repository()
                    return None
                raise self._failure("reading the branch", exc) from None
            if data is not None:  # None: 304 Not Modified, the head we know is still the head
                sha = data["commit"]["sha"]
                self._commit_trees.put(sha, data["commit"]["commit"]["tree"]["sha"])
                if self._lagging(sha):
                    # A replica behind our own commit: keep the head we made, and ask in full next time.
                    self._head_etag = None
                    return self._head_sha
                self._head_etag = response_headers.get("etag")
                self._head_sha = sha
            return self._head_sha

    def _lagging(self, sha: str) -> bool:
        """Whether a branch read answering `sha` lags behind the head our own commit made: `sha` is an
        ancestor of it, within LAG_GRACE_SEC of that commit (later, it is a confirmed rewind)."""
        ours = self._our_head
        if ours is None or sha == ours[0] or time.monotonic() - ours[1] > LAG_GRACE_SEC:
            return False
        commit: str | None = ours[0]
        for _ in range(LAG_CHAIN):
            commit = self._parents.get(commit) if commit else None
            if commit is None:
                return False
            if commit == sha:
                return True
        return False

    def list(self, commit: str, prefix: str = "") -> list[Entry]:
        folder = prefix.strip("/") + "/" if prefix.strip("/") else ""
        files = self._files(commit)
        entries = [
            Entry(path, str(sha), gitlink=isinstance(sha, _Gitlink))
            for path, sha in sorted(files.items())
            if path.startswith(folder)
        ]
        cut = [cut for cut in self._cut_short(commit) if cut.startswith(folder) or folder.startswith(cut)]
        if cut:
            raise StoreIncomplete(cut, entries)
        return entries

    def entry(self, commit: str, path: str) -> Entry | None:
        path = path.strip("/")
        sha = self._files(commit).get(path)
        if sha is None and (cut := [f for f in self._cut_short(commit) if path.startswith(f)]):
            raise StoreIncomplete(cut, [])
        return None if sha is None or isinstance(sha, _Gitlink) else Entry(path, sha)

    def file_at(self, commit: str, path: str) -> tuple[str, bytes] | None:
        """The contents API ("Get repository content" at `ref=commit`): one request for the SHA and the
        content of a file up to 1 MB. Larger (403 `too_large`), or not a file's answer: `entry` and `read`,
        as any other file is read."""
        path = path.strip("/")
        cached = self._cached_files(commit)
        known = cached.get(path) if cached is not None else None
        data = self._blobs.get(known) if known is not None and not isinstance(known, _Gitlink) else None
        if known is not None and data is not None:
            return known, data  # listed and read before: no request
        url = f"{self._path}/contents/{quote(path)}"
        action = f"reading {path} at {commit[:12]}"
        try:
            _, answer = self._call(
                action,
                lambda: self._requester.requestJsonAndCheck("GET", url, parameters={"ref": commit}),
            )
        except GithubException as exc:
            if exc.status == 404 and not _message(exc).startswith("No commit found"):
                return None
            if exc.status == 404:
                raise StoreNotFound(f"no commit {commit} in {self.repo}") from None
            if exc.status == 403 and _too_large(exc):
                return super().file_at(commit, path)
            raise self._failure(action, exc) from None
        if not isinstance(answer, dict) or answer.get("type") != "file":
            return super().file_at(commit, path)  # a directory (a list) or a submodule: no file here
        try:
            sha, content, encoding = str(answer["sha"]), answer["content"], answer.get("encoding")
            if encoding != "base64":
                return super().file_at(commit, path)
            data = base64.b64decode(content)
        except (KeyError, TypeError, binascii.Error):
            raise StoreUnavailable(f"GitHub sent a malformed answer while {action}") from None
        if git_blob_sha(data) != sha:
            raise StoreUnavailable(f"GitHub sent content that is not blob {sha} while {action}")
        self._blobs.put(sha, data)
        return sha, data

    def read(self, sha: str) -> bytes:
        data = self._blobs.get(sha)
        if data is not None:
            return data
        action = f"reading blob {sha}"
        try:
            blob = self._call(action, lambda: self._repo.get_git_blob(sha).raw_data)
        except GithubException as exc:
            if exc.status in (404, 422):
                raise StoreNotFound(f"no blob {sha} in {self.repo}") from None
            if exc.status == 403 and _too_large(exc):
                raise StoreBlobRefused(
                    f"GitHub will not serve blob {sha} through its API: {_message(exc)[:200]}"
                ) from None
            raise self._failure(action, exc) from None
        try:
            content = blob["content"]
            data = base64.b64decode(content) if blob.get("encoding") == "base64" else content.encode()
        except (KeyError, TypeError, binascii.Error):
            raise StoreUnavailable(f"GitHub sent a malformed blob {sha}") from None
        self._blobs.put(sha, data)
        return data

    def author(self, commit: str) -> str:
        action = f"reading commit {commit}"
        try:
            data = self._call(action, lambda: self._repo.get_git_commit(commit).raw_data)
        except GithubException as exc:
            if exc.status in (404, 422):
                raise StoreNotFound(f"no commit {commit} in {self.repo}") from None
            raise self._failure(action, exc) from None
        return str(data["author"]["name"])

    def changed(self, old: str | None, new: str) -> builtins.list[Change]:
        after = self._files(new)
        before = self._files(old) if old is not None else {}
        changes = [
            Change(
                path,
                _plain(before.get(path)),
                _plain(after.get(path)),
                gitlink=isinstance(after.get(path), _Gitlink),
            )
            for path in sorted(before.keys() | after.keys())
            if before.get(path) != after.get(path)
        ]
        cut = set(self._cut_short(new)) | (set(self._cut_short(old)) if old is not None else set())
        if cut:
            raise StoreIncomplete(cut, changes)
        return changes

    # Writes

    def history(
        self, path: str, *, limit: int = HISTORY_LIMIT, start: str | None = None
    ) -> builtins.list[Revision]:
        path = path.strip("/")
        per_page = max(1, min(limit, 100))
        url = f"{self._path}/commits"
        parameters = {"sha": start or self.branch, "path": path, "per_page": per_page}
        action = f"listing the history of {path}"
        try:
            _, data = self._call(
                action, lambda: self._requester.requestJsonAndCheck("GET", url, parameters=parameters)
            )
        except GithubException as exc:
            if exc.status == 404 and start is not None:
                raise StoreNotFound(f"no commit {start} in {self.repo}") from None
            if exc.status in (404, 409):  # no such branch yet, or an empty repository
                return []
            raise self._failure(action, exc) from None
        if not isinstance(data, list):
            raise StoreUnavailable(f"GitHub sent a malformed answer while {action}")
        found = []
        for item in data[:limit]:
            try:
                commit = item["commit"]
                author = commit.get("author") or {}
                at = datetime.fromisoformat(str(author.get("date", "")).replace("Z", "+00:00"))
                found.append(
                    Revision(
                        commit=str(item["sha"]),
                        author=str(author.get("name") or ""),
                        at=at,
                        message=str(commit.get("message") or "").strip(),
                    )
                )
            except (KeyError, TypeError, AttributeError, ValueError):
                raise StoreUnavailable(f"GitHub sent a malformed answer while {action}") from None
        return found

    def commit(
        self,
        *,
        parent: str | None,
        writes: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        message: str,
        author: str,
    ) -> str:
        if not author.strip() or re.search(r"[<>\n]", author):
            raise ValueError(f"invalid commit author {author!r}")
        doomed = [path for path in dict.fromkeys(deletes) if path not in writes]
        try:
            if parent is None:
                root = self._commit_root(writes, message, author)
                if root is not None:
                    self._remember(*root, {}, writes, [], [])
                    self._made(root[0], None)
                    return root[0]
                # GitHub's Git Data API refuses every write while a repository has no commit at all: the
                # contents API makes a first commit, the seed, which this first commit then replaces.
                parent = self._seed()
            base = self._tree_of(parent)
            parent_files = SEED_FILES if base == SEED_TREE else self._cached_files(parent)
            if base == SEED_TREE and SEED_PATH not in writes:
                doomed.append(SEED_PATH)  # the seed goes with the first commit made on it
            if doomed and parent_files is None:
                # GitHub refuses to delete a missing path: deletions are checked against the parent.
                parent_files = self._files(parent, missing=StoreConflict)
            if parent_files is not None:
                doomed = [path for path in doomed if path in parent_files]
            sha, tree = self._commit_on(parent, base, writes, doomed, message, author)
        except GithubException as exc:
            raise self._failure("committing", exc) from None
        self._remember(sha, tree, parent_files, writes, doomed, self._cut_short(parent))
        self._made(sha, parent)
        return sha

    def close(self) -> None:
        self._github.close()

    # Reading trees

    def _cut_short(self, commit: str) -> builtins.list[str]:
        """The folders ("" for the root, else ending in "/") whose own listing GitHub truncated at
        `commit` (known once `_files(commit)` has run)."""
        tree = self._commit_trees.get(commit)
        return [] if tree is None else self._truncated.get(tree) or []

    def _cached_files(self, commit: str) -> dict[str, str] | None:
        tree = self._commit_trees.get(commit)
        return None if tree is None else self._listings.get(tree)

    def _files(self, commit: str, *, missing: type[Exception] = StoreNotFound) -> dict[str, str]:
        """Every file at `commit` (path -> blob SHA, a submodule's as a _Gitlink): one recursive tree
        request, none when cached."""
        files = self._cached_files(commit)
        if files is not None:
            return files
        data = self._tree(self._commit_trees.get(commit) or commit, recursive=True, missing=missing)
        tree = data["sha"]
        self._commit_trees.put(commit, tree)
        cut: builtins.list[str] = []
        files = self._walk(tree, "", cut) if data.get("truncated") else self._blobs_of(data, "")
        if cut:
            self._truncated[tree] = cut  # a tree never changes: its listing stays incomplete
        self._listings.put(tree, files)
        return files

    def _walk(self, tree: str, prefix: str, cut: builtins.list[str]) -> dict[str, str]:
        """List a tree too large for one recursive answer: its own entries, then each sub-tree in turn.

        A folder whose own (non-recursive) listing is truncated cannot be completed by any request: it
        is added to `cut`, and what was seen of it is kept.
        """
        data = self._tree(tree, recursive=False)
        if data.get("truncated"):
            cut.append(prefix)
        files = self._blobs_of(data, prefix)
        for item in data["tree"]:
            if item["type"] != "tree":
                continue
            folder = f"{prefix}{item['path']}/"
            sub = self._tree(item["sha"], recursive=True)
            files.update(
                self._walk(item["sha"], folder, cut) if sub.get("truncated") else self._blobs_of(sub, folder)
            )
        return files

    @staticmethod
    def _blobs_of(data: dict[str, Any], prefix: str) -> dict[str, str]:
        files = {prefix + item["path"]: item["sha"] for item in data["tree"] if item["type"] == "blob"}
        links = [item for item in data["tree"] if item["type"] == "commit"]
        files.update((prefix + item["path"], _Gitlink(item["sha"])) for item in links)
        return files

    def _tree(self, sha: str, *, recursive: bool, missing: type[Exception] = StoreNotFound) -> dict[str, Any]:
        action = f"reading tree {sha}"
        try:
            return self._call(action, lambda: self._repo.get_git_tree(sha, recursive=recursive).raw_data)
        except GithubException as exc:
            if exc.status in (404, 409, 422):
                raise missing(f"no commit or tree {sha} in {self.repo}") from None
            raise self._failure(action, exc) from None

    def _tree_of(self, commit: str) -> str:
        """The tree SHA of a commit: cached (commits never change), else one request."""
        tree = self._commit_trees.get(commit)
        if tree is None:
            try:
                data = self._call(
                    f"reading commit {commit}", lambda: self._repo.get_git_commit(commit).raw_data
                )
            except GithubException as exc:
                if exc.status in (404, 422):
                    raise StoreConflict(f"the parent commit {commit} does not exist in {self.repo}") from None
                raise
            tree = data["tree"]["sha"]
            self._commit_trees.put(commit, tree)
        return tree

    # Writing

    def _commit_on(
        self,
        parent: str,
        base: str,
        writes: Mapping[str, bytes],
        doomed: builtins.list[str],
        message: str,
        author: str,
    ) -> tuple[str, str]:
        """Commit on `parent` (whose tree is `base`) and fast-forward the branch: three requests."""
        tree = self._new_tree(writes, doomed, base)
        if tree == base:
            # Nothing changes: like the local store, answer the parent, provided it is still the head.
            if self.head() != parent:
                raise StoreConflict(f"{self.branch} is no longer at {parent}")
            return parent, tree
        sha = self._new_commit([parent], tree, message, author)
        self._move_branch(sha)
        return sha, tree

    def _commit_root(self, writes: Mapping[str, bytes], message: str, author: str) -> tuple[str, str] | None:
        """Commit without a parent and create the branch; None when the repository has no commit at all."""
        try:
            tree = self._new_tree(writes, [], None)
        except GithubException as exc:
            if exc.status == 409:  # "Git Repository is empty."
                return None
            raise
        sha = self._new_commit([], tree, message, author)
        self._create_branch(sha)
        return sha, tree

    def _new_tree(self, writes: Mapping[str, bytes], doomed: builtins.list[str], base: str | None) -> str:
        """Create the tree of `base` with these changes: one request, plus one per binary file."""
        elements = [self._element(path, data) for path, data in writes.items()]
        elements += [InputGitTreeElement(path, "100644", "blob", sha=None) for path in doomed]
        base_tree = self._lazy(GitTree, "trees", base) if base is not None else NotSet
        self._wrote()
        return self._call("creating the tree", lambda: self._repo.create_git_tree(elements, base_tree)).sha

    def _new_commit(self, parents: builtins.list[str], tree: str, message: str, author: str) -> str:
        signature = InputGitAuthor(author, f"{author}@agentos.local")  # as the local store signs
        self._wrote()
        commit = self._call(
            "creating the commit",
            lambda: self._repo.create_git_commit(
                message,
                self._lazy(GitTree, "trees", tree),
                [self._lazy(GitCommit, "commits", sha) for sha in parents],
                author=signature,
            ),
        )
        return commit.sha

    def _element(self, path: str, data: bytes) -> InputGitTreeElement:
        """A tree entry with its content inline; binary content goes up as a blob first."""
        try:
            return InputGitTreeElement(path, "100644", "blob", content=data.decode("utf-8"))
        except UnicodeDecodeError:
            encoded = base64.b64encode(data).decode()
            self._wrote()
            blob = self._call(f"uploading {path}", lambda: self._repo.create_git_blob(encoded, "base64"))
            return InputGitTreeElement(path, "100644", "blob", sha=blob.sha)

    def _move_branch(self, sha: str) -> None:
        """Fast-forward the branch to `sha`, a child of the expected head.

        GitHub offers no compare-and-swap on refs: a fast-forward-only update refuses every commit made
        since the parent; only a force-push rewinding the branch behind the parent would slip through.
        """
        ref = self._lazy(GitRef, "refs/heads", self.branch)
        self._wrote()
        try:
            self._call("moving the branch", lambda: ref.edit(sha, force=False))
        except GithubException as exc:
            # Only "Update is not a fast forward" says the branch moved: a protected branch, a ruleset, a
            # missing ref or a missing permission (also 409/422/403) would refuse every retry alike.
            if exc.status in (409, 422) and _FAST_FORWARD.search(_message(exc)):
                raise StoreConflict(f"{self.branch} moved: {_message(exc)}") from None
            raise StoreRefused(
                self._scrub(f"GitHub refused to move {self.branch} ({exc.status}): {_message(exc)}")
            ) from None

    def _create_branch(self, sha: str) -> None:
        self._wrote()
        try:
            self._call(
                "creating the branch", lambda: self._repo.create_git_ref(f"refs/heads/{self.branch}", sha)
            )
        except GithubException as exc:
            if exc.status in (409, 422):
                raise StoreConflict(f"{self.branch} already exists: {_message(exc)}") from None
            raise

    def _seed(self) -> str:
        """Make the first commit of an empty repository through the contents API: one empty SEED_PATH."""
        self._wrote()
        try:
            result = self._call(
                "initialising the repository",
                lambda: self._repo.create_file(SEED_PATH, "Initialise the SSOT", "", branch=self.branch),
            )
        except GithubException as exc:
            if exc.status in (409, 422):
                raise StoreConflict(f"{self.repo} was initialised meanwhile: {_message(exc)}") from None
            raise
        seed = result["commit"]
        self._commit_trees.put(seed.sha, seed.raw_data["tree"]["sha"])
        return seed.sha

    def _remember(
        self,
        sha: str,
        tree: str,
        parent_files: dict[str, str] | None,
        writes: Mapping[str, bytes],
        doomed: builtins.list[str],
        cut: builtins.list[str],
    ) -> None:
        """Cache what a commit made, so reading it back costs no request (a listing cut short on the
        parent stays cut short on the child)."""
        self._commit_trees.put(sha, tree)
        if cut:
            self._truncated[tree] = cut
        for data in writes.values():
            self._blobs.put(git_blob_sha(data), data)
        if parent_files is not None:
            files = {path: blob for path, blob in parent_files.items() if path not in doomed}
            files.update((path, git_blob_sha(data)) for path, data in writes.items())
            self._listings.put(tree, files)

    # Plumbing

    def _lazy(self, cls: type[G], kind: str, name: str) -> G:
        """A PyGithub object known by name only: using it as an argument costs no request."""
        url = f"{self._path}/git/{kind}/{quote(name)}"
        attributes = {"sha": name} if kind in ("trees", "commits") else {}
        return cls(self._requester, attributes=attributes, completed=False, url=url)

    def _call(self, action: str, request: Callable[[], T]) -> T:
        """Run one API request, waiting out rate limits up to max_rate_wait; other GitHub errors propagate."""
        waited, attempt = 0.0, 0
        while True:
            try:
                return request()
            except GithubException as exc:
                wait = _rate_limit_wait(exc, attempt)
                if wait is None:
                    raise
                allowed = 0.0 if getattr(self._thread, "no_waiting", False) else self.max_rate_wait
                if waited + wait > allowed:
                    until = datetime.now(UTC) + timedelta(seconds=wait)
                    raise StoreRateLimited(
                        f"GitHub rate limited {action} until {until:%Y-%m-%d %H:%M:%S} UTC", wait
                    ) from None
                time.sleep(wait)
                waited, attempt = waited + wait, attempt + 1
            except requests.RequestException as exc:
                raise StoreUnavailable(self._scrub(f"GitHub unreachable while {action}: {exc}")) from None
            except json.JSONDecodeError:
                raise StoreUnavailable(f"GitHub sent a malformed answer while {action}") from None

    def _check_repository(self) -> None:
        """Tell "no such branch" from "no such repository" (GitHub answers 404 to both)."""
        try:
            self._call(
                "reading the repository", lambda: self._requester.requestJsonAndCheck("GET", self._path)
            )
        except GithubException as exc:
            if exc.status == 404:
                raise StoreUnavailable(
                    f"GitHub repository {self.repo} not found, or the token cannot read it"
                ) from None
            raise self._failure("reading the repository", exc) from None

    def _failure(self, action: str, exc: GithubException) -> StoreUnavailable:
        if exc.status == 401:
            return StoreUnavailable(
                self._scrub(f"GitHub rejected the token while {action} ({_message(exc)})")
            )
        return StoreUnavailable(self._scrub(f"GitHub answered {exc.status} while {action}: {_message(exc)}"))

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text
