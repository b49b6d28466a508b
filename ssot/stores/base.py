"""The one small interface both SSOT stores implement (SPEC section 4)."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class StoreError(Exception):
    """Base class of every error a store raises."""


class StoreUnavailable(StoreError):
    """The SSOT cannot be reached or answered with an error; the reason is safe to show."""


class StoreRefused(StoreUnavailable):
    """The SSOT refused the write for a reason a retry cannot change (a protected branch, a ruleset, a
    permission, a stale lock): answered at once, with the reason, never retried."""


class StoreRateLimited(StoreUnavailable):
    """GitHub rate-limited a request and asked for more patience than the caller allows: try again after
    `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreBlobRefused(StoreError):
    """The SSOT will not serve this blob (GitHub: over 100 MB, `too_large`); the reason is safe to show.
    The sync quarantines the file with it and goes on."""


class StoreIncomplete(StoreError):
    """A listing is incomplete: GitHub truncated the listing of a single folder (over 100,000 entries or
    7 MB), which no other request can complete. `partial` is what was seen (entries or changes, as the
    call returns); nothing under `folders` that was not seen may be taken as absent."""

    def __init__(self, folders: Iterable[str], partial: builtins.list[Any]) -> None:
        self.folders = sorted(folders)
        self.partial = partial
        shown = ", ".join(f"{folder or '/'}" for folder in self.folders[:5])
        super().__init__(
            f"GitHub truncated the listing of {shown} (a folder over 100,000 entries or 7 MB): "
            "files there may be missing from it; shard the folder (SPEC section 4)"
        )

    def covers(self, path: str) -> bool:
        """Whether `path` lies in a folder whose listing was cut short."""
        return any(path.startswith(folder) for folder in self.folders)


class StoreConflict(StoreError):
    """The branch moved: the expected parent is no longer its head."""


class StoreNotFound(StoreError):
    """A commit or blob the caller named does not exist."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A file of the tree at some commit: its path and git blob SHA.

    `gitlink`: the entry is a submodule (mode 160000); its SHA names a commit of another repository and
    there is no content to read. Listed so that the sync can quarantine it rather than miss it.
    """

    path: str
    sha: str
    gitlink: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """A path that differs between two commits; a side is None where the file is absent.

    `gitlink`: the new side is a submodule entry, not a blob (see Entry).
    """

    path: str
    old_sha: str | None
    new_sha: str | None
    gitlink: bool = False

    @property
    def deleted(self) -> bool:
        return self.new_sha is None


@dataclass(frozen=True, slots=True)
class Revision:
    """A commit of the branch that changed one path: who (the author's name), when, and its message."""

    commit: str
    author: str
    at: datetime
    message: str


HISTORY_LIMIT = 30


def git_blob_sha(data: bytes) -> str:
    """The SHA-1 git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class Store(ABC):
    """A branch of a git repository, read by commit and written by compare-and-swap commits."""

    backend: str
    branch: str

    @abstractmethod
    def head(self) -> str | None:
        """The commit SHA the branch points at, or None while the branch has no commit."""

    @abstractmethod
    def list(self, commit: str, prefix: str = "") -> list[Entry]:
        """Every file (recursively) under `prefix` at `commit`, with its blob SHA; submodules as gitlinks."""

    @abstractmethod
    def entry(self, commit: str, path: str) -> Entry | None:
        """The blob SHA of one path at `commit`, or None if there is no such file (or only a submodule)."""

    @abstractmethod
    def read(self, sha: str) -> bytes:
        """The content of a blob."""

    def file_at(self, commit: str, path: str) -> tuple[str, bytes] | None:
        """One file at `commit`: its blob SHA and content, or None if there is no such file (or only a
        submodule). For reading one file of an older commit (a task's history); GitHub: one request,
        where `entry` would list the commit's whole tree."""
        entry = self.entry(commit, path)
        return None if entry is None else (entry.sha, self.read(entry.sha))

    @abstractmethod
    def changed(self, old: str | None, new: str) -> builtins.list[Change]:
        """The files that differ between two commits (old None: everything in `new`)."""

    @abstractmethod
    def history(
        self, path: str, *, limit: int = HISTORY_LIMIT, start: str | None = None
    ) -> builtins.list[Revision]:
        """The latest commits that changed `path` (added, modified or deleted it), newest first, at most
        `limit`: from the commit `start` back (default: the branch's head). GitHub: one request (list
        commits with `path`). Raises StoreNotFound for a `start` that is no commit."""

    @abstractmethod
    def author(self, commit: str) -> str:
        """The author's name of a commit (who pushed it claims it: a lead, not a proof)."""

    @abstractmethod
    def commit(
        self,
        *,
        parent: str | None,
        writes: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        message: str,
        author: str,
    ) -> str:
        """Commit these writes and deletions on top of `parent` and move the branch to it.

        Raises StoreConflict unless the branch still points at `parent` (None: no commit yet).
        Returns the new commit SHA. Nothing is changed when it raises.
        """

    @property
    def content_requests(self) -> int:
        """Content-creating requests made so far (what GitHub's write limits count); none locally."""
        return 0

    @contextlib.contextmanager
    def no_waiting(self) -> Iterator[None]:
        """Within this block (in this thread), a rate limit raises StoreRateLimited at once instead of
        being waited out: the write path holds its lock here. Nothing to do for stores without one."""
        yield

    def close(self) -> None:  # noqa: B027 - an optional hook: most stores hold nothing to release
        """Release connections; the default store holds none."""
