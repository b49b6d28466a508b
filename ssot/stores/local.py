"""The local SSOT: a bare git repository on disk, read and written through pygit2 (SPEC section 4)."""

from __future__ import annotations

import builtins
import heapq
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, ObjectType, RepositoryOpenFlag
from pygit2.transaction import ReferenceTransaction

from core.redact import public
from ssot.stores.base import (
    HISTORY_LIMIT,
    Change,
    Entry,
    Revision,
    Store,
    StoreConflict,
    StoreError,
    StoreNotFound,
    StoreRefused,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# A writer (ours or git receive-pack) holds the ref lock for milliseconds; beyond this it is stuck.
LOCK_WAIT_SEC = 2.0
_LOCK_BACKOFF_SEC = (0.002, 0.05)

_Tree = dict[str, "bytes | _Tree | None"]
# The most commits `history` looks through for changes of one path (a bounded answer on a long history),
# read in batches from this many, doubled while the path's changes found are fewer than asked for.
HISTORY_SCAN = 5000
HISTORY_BATCH = 256


class LocalStore(Store):
    """A branch of a bare repository that agents clone and push to with plain git."""

    backend = "local"

    def __init__(self, path: str | Path, branch: str = "main") -> None:
        self.path = Path(path)
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self._handles = threading.local()

    @classmethod
    def create(cls, path: str | Path, branch: str = "main") -> LocalStore:
        """Create the bare repository (HEAD on `branch`) unless it exists; return its store."""
        path = Path(path)
        with _errors(path):
            if path.exists() and any(path.iterdir()):
                pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH)
            else:
                repo = pygit2.init_repository(str(path), bare=True, initial_head=branch)
                # The SSOT's history is the record: pushes may add to it, never rewrite or delete it.
                repo.config["receive.denyNonFastForwards"] = True
                repo.config["receive.denyDeletes"] = True
        return cls(path, branch)

    def head(self) -> str | None:
        if not (self.path / "HEAD").is_file():
            # A cached handle would report a vanished repository as an empty branch.
            self._handles.repo = None
            log.error("no repository at SSOT_LOCAL_PATH %s", self.path)
            raise StoreUnavailable("the local SSOT is unavailable: no repository at SSOT_LOCAL_PATH")
        with self._repo() as repo:
            return _ref_target(repo, self.ref)

    def list(self, commit: str, prefix: str = "") -> list[Entry]:
        folder = prefix.strip("/")
        with self._repo() as repo:
            tree = _commit(repo, commit).tree
            if folder:
                try:
                    found = tree[folder]
                except KeyError:
                    return []
                if not isinstance(found, pygit2.Tree):
                    return []
                tree = found
            return list(_walk(tree, f"{folder}/" if folder else ""))

    def entry(self, commit: str, path: str) -> Entry | None:
        with self._repo() as repo:
            tree = _commit(repo, commit).tree
            try:
                obj = tree[path.strip("/")]
            except KeyError:
                return None
            return Entry(path=path.strip("/"), sha=str(obj.id)) if obj.type == ObjectType.BLOB else None

    def read(self, sha: str) -> bytes:
        oid = pygit2.Oid(hex=sha.lower()) if _SHA.fullmatch(sha.lower()) else None
        with self._repo() as repo:
            # An exact lookup by object id (a hex string would go through libgit2's prefix search),
            # straight from the object database: half the cost of building a Blob to copy its data.
            try:
                kind, data = repo.odb.read(oid) if oid is not None else (None, b"")
            except KeyError:  # pygit2.NotFoundError, which is also a GitError: not "unavailable"
                kind = None
            if kind != ObjectType.BLOB:
                raise StoreNotFound(f"no blob {sha} in the local SSOT")
            return data

    def author(self, commit: str) -> str:
        with self._repo() as repo:
            return _commit(repo, commit).author.name

    def changed(self, old: str | None, new: str) -> builtins.list[Change]:
        with self._repo() as repo:
            new_tree = _commit(repo, new).tree
            if old is None:
                diff = new_tree.diff_to_tree(swap=True)
            else:
                diff = _commit(repo, old).tree.diff_to_tree(new_tree)
            return [_change(delta) for delta in diff.deltas]

    def history(
        self, path: str, *, limit: int = HISTORY_LIMIT, start: str | None = None
    ) -> builtins.list[Revision]:
        path = path.strip("/")
        found: list[Revision] = []
        with _errors(self.path), self._repo() as repo:
            head = (
                _ref_target(repo, f"refs/heads/{self.branch}") if start is None else _commit(repo, start).id
            )
            if head is None:
                return found
            count = HISTORY_BATCH
            # Whether each commit read changed `path`, kept for the next, larger batch.
            changes: dict[pygit2.Oid, bool] = {}
            while True:
                commits = _newest_first(repo, head, count)
                found = [
                    Revision(
                        commit=str(commit.id),
                        author=commit.author.name,
                        at=datetime.fromtimestamp(commit.author.time, UTC),
                        message=commit.message.strip(),
                    )
                    for commit in _changing(commits, path, limit, changes)
                ]
                if len(found) >= limit or len(commits) < count or count >= HISTORY_SCAN:
                    break
                count = min(count * 2, HISTORY_SCAN)
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
        changes = _plan(writes, deletes)
        try:
            signature = pygit2.Signature(author, f"{author}@agentos.local")
        except (ValueError, pygit2.GitError) as exc:
            raise ValueError(f"invalid commit author {author!r}") from exc
        with self._repo() as repo:
            if _ref_target(repo, self.ref) != parent:
                raise StoreConflict(f"branch {self.branch} is no longer at {parent}")
            base = repo[parent] if parent else None
            tree = _build_tree(repo, base.tree if base else None, changes) or repo.TreeBuilder().write()
            if base is not None and tree == base.tree.id:
                return str(base.id)
            new = repo.create_commit(None, signature, signature, message, tree, [base.id] if base else [])
            self._move_branch(repo, parent, new)
            return str(new)

    def _move_branch(self, repo: pygit2.Repository, parent: str | None, new: pygit2.Oid) -> None:
        """Compare-and-swap the branch from `parent` to `new` under git's own ref lock."""
        with repo.transaction() as txn:
            self._lock(txn)
            # Read under the lock: loose ref or packed-refs, the value no other writer can change now.
            if _ref_target(repo, self.ref) != parent:
                raise StoreConflict(f"branch {self.branch} moved while committing on {parent}")
            # No reflog signature: pygit2 1.21 cannot pass one; libgit2 falls back to the repo identity.
            txn.set_target(self.ref, new, message="agentos: commit")

    def _lock(self, txn: ReferenceTransaction) -> None:
        """Take `refs/heads/<branch>.lock` (exclusive create, as git does), waiting out other writers.

        A writer holds the lock for milliseconds: a lock file older than LOCK_WAIT_SEC was left by a
        process that died, and no retry will ever get past it. Either way the answer names the file (a
        503: someone must remove it), at once for a stale lock, never a conflict to be retried.
        """
        lock_file = self.path / f"{self.ref}.lock"
        deadline = time.monotonic() + LOCK_WAIT_SEC
        delay = _LOCK_BACKOFF_SEC[0]
        while True:
            try:
                txn.lock_ref(self.ref)
                return
            except (pygit2.GitError, OSError) as exc:
                # pygit2 does not tell "locked" from other I/O errors; a writer's lock file on disk does.
                age = _age(lock_file)
                if age is not None and (age > LOCK_WAIT_SEC or time.monotonic() >= deadline):
                    raise StoreRefused(
                        f"branch {self.branch} is locked by {lock_file.relative_to(self.path)} in the local "
                        f"SSOT (for {age:.0f} s): if no git process is running, it is stale; remove it"
                    ) from exc
                if time.monotonic() >= deadline:
                    reason = public(f"cannot lock {self.ref} in the local SSOT: {exc}")
                    raise StoreUnavailable(reason) from exc
            time.sleep(delay)
            delay = min(delay * 2, _LOCK_BACKOFF_SEC[1])

    def _repo(self) -> _Handle:
        """This thread's repository handle (pygit2 objects are not shared between threads).

        Opening a repository costs more than reading a blob, so each thread keeps its handle; libgit2
        re-reads refs from disk and rescans packs on a miss, so pushes by others stay visible.
        """
        return _Handle(self)


class _Handle:
    """`with store._repo() as repo`: a failure becomes StoreUnavailable and the handle is opened afresh
    next time (the repository may have been moved or re-created)."""

    # A class rather than a generator-based context manager: a full resync enters it once per blob.

    __slots__ = ("store",)

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def __enter__(self) -> pygit2.Repository:
        handles = self.store._handles
        repo = getattr(handles, "repo", None)
        if repo is None:
            try:
                repo = handles.repo = pygit2.Repository(str(self.store.path), RepositoryOpenFlag.NO_SEARCH)
            except (pygit2.GitError, OSError) as exc:
                raise _unavailable(self.store.path, exc) from exc
        return repo

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or (isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable)):
            return
        if isinstance(exc, StoreUnavailable | pygit2.GitError | OSError):
            self.store._handles.repo = None
        if isinstance(exc, pygit2.GitError | OSError):
            raise _unavailable(self.store.path, exc) from exc


def _unavailable(path: Path, exc: BaseException) -> StoreUnavailable:
    log.error("local SSOT at %s is unavailable: %s", path, exc)
    return StoreUnavailable(public(f"the local SSOT is unavailable: {exc}"))


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    """Turn filesystem and libgit2 failures into StoreUnavailable with a message safe to show."""
    try:
        yield
    except StoreError:
        raise
    except (pygit2.GitError, OSError) as exc:
        raise _unavailable(path, exc) from exc


def _age(path: Path) -> float | None:
    """Seconds since `path` was last modified, or None when it does not exist."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def _ref_target(repo: pygit2.Repository, name: str) -> str | None:
    ref = repo.references.get(name)
    return None if ref is None else str(ref.resolve().target)


def _commit(repo: pygit2.Repository, sha: str) -> pygit2.Commit:
    obj = repo.get(sha) if _SHA.match(sha) else None
    if not isinstance(obj, pygit2.Commit):
        raise StoreNotFound(f"no commit {sha} in the local SSOT")
    return obj


def _newest_first(repo: pygit2.Repository, head: str | pygit2.Oid, count: int) -> list[pygit2.Commit]:
    """The `count` commits nearest `head` (breadth first through parents), each before its parents, the
    later commit first where neither descends from the other: `git log --topo-order` on the newest part
    of the history. libgit2's own topological walk reads every commit of the history before the first
    answer (92 ms at 6,000 commits, and on in proportion); this reads only these. Commit dates, which a
    pusher sets, only break ties: they cannot put a commit after its parent. (A commit beyond the
    `count` nearest is not here, even when it descends from one that is: a merged side branch longer than
    the batch is read in full only by a larger one.)"""
    tip = repo[head].peel(pygit2.Commit)
    seen: dict[pygit2.Oid, pygit2.Commit] = {tip.id: tip}
    queue = deque([tip])
    while queue and len(seen) < count:
        for parent_id in queue.popleft().parent_ids:
            if parent_id not in seen and len(seen) < count:
                parent = repo[parent_id].peel(pygit2.Commit)
                seen[parent_id] = parent
                queue.append(parent)
    children: Counter[pygit2.Oid] = Counter(
        p for commit in seen.values() for p in commit.parent_ids if p in seen
    )
    ready = [
        (-commit.commit_time, str(commit.id), commit) for commit in seen.values() if not children[commit.id]
    ]
    heapq.heapify(ready)
    ordered: list[pygit2.Commit] = []
    while ready:
        commit = heapq.heappop(ready)[2]
        ordered.append(commit)
        for parent_id in commit.parent_ids:
            if parent_id in seen:
                children[parent_id] -= 1
                if not children[parent_id]:
                    parent = seen[parent_id]
                    heapq.heappush(ready, (-parent.commit_time, str(parent_id), parent))
    return ordered


def _changing(
    commits: list[pygit2.Commit], path: str, limit: int, changes: dict[pygit2.Oid, bool]
) -> Iterator[pygit2.Commit]:
    """The first `limit` of these commits that added, modified or deleted `path` (against any parent);
    `changes` remembers the answer for each commit looked at."""
    found = 0
    for commit in commits:
        if found >= limit:
            return
        if commit.id not in changes:
            mine = _blob_at(commit.tree, path)
            parents = commit.parents
            changes[commit.id] = (not parents and mine is not None) or any(
                _blob_at(p.tree, path) != mine for p in parents
            )
        if changes[commit.id]:
            found += 1
            yield commit


def _blob_at(tree: pygit2.Tree, path: str) -> str | None:
    try:
        return str(tree[path].id)
    except KeyError:
        return None


def _walk(tree: pygit2.Tree, base: str) -> Iterator[Entry]:
    for obj in tree:
        if isinstance(obj, pygit2.Tree):
            yield from _walk(obj, f"{base}{obj.name}/")
        elif obj.type == ObjectType.BLOB:
            yield Entry(path=f"{base}{obj.name}", sha=str(obj.id))
        elif obj.type == ObjectType.COMMIT:  # a submodule: the commit is not in this repository
            yield Entry(path=f"{base}{obj.name}", sha=str(obj.id), gitlink=True)


def _change(delta: pygit2.DiffDelta) -> Change:
    old = None if delta.status_char() == "A" else str(delta.old_file.id)
    new = None if delta.status_char() == "D" else str(delta.new_file.id)
    return Change(
        path=delta.new_file.path if new else delta.old_file.path,
        old_sha=old,
        new_sha=new,
        gitlink=new is not None and delta.new_file.mode == FileMode.COMMIT,
    )


def _plan(writes: Mapping[str, bytes], deletes: Iterable[str]) -> _Tree:
    """The writes (bytes) and deletions (None) as nested folders, after checking every path."""
    plan: _Tree = {}
    for path, data in [*writes.items(), *((path, None) for path in deletes)]:
        parts = path.split("/")
        if any(part in ("", ".", "..", ".git") or "\0" in part for part in parts):
            raise ValueError(f"invalid SSOT path {path!r}")
        folder = plan
        for part in parts[:-1]:
            sub = folder.setdefault(part, {})
            if not isinstance(sub, dict):
                raise ValueError(f"SSOT path {path!r} clashes with another write or delete")
            folder = sub
        if parts[-1] in folder:
            raise ValueError(f"SSOT path {path!r} clashes with another write or delete")
        folder[parts[-1]] = data
    return plan


def _build_tree(repo: pygit2.Repository, tree: pygit2.Tree | None, changes: _Tree) -> pygit2.Oid | None:
    """Apply `changes` to `tree` in memory, reusing untouched sub-trees; None when the result is empty."""
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    for name, change in changes.items():
        current = builder.get(name)
        if isinstance(change, dict):
            subtree = current if isinstance(current, pygit2.Tree) else None
            oid = _build_tree(repo, subtree, change)
            if oid is not None:
                builder.insert(name, oid, FileMode.TREE)
            elif current is not None and subtree is not None:
                builder.remove(name)
        elif change is not None:
            builder.insert(name, repo.create_blob(change), FileMode.BLOB)
        elif current is not None and current.type == ObjectType.BLOB:
            builder.remove(name)
    return builder.write() if len(builder) else None
