"""How changes become SSOT commits and then rows: the machinery under ssot/services.py.

A change is drafted from the SSOT at the current head (`HeadView`), committed with that head as the
expected parent (re-drafted on a conflict, a bounded number of times), then mirrored into the rows
through the same `Mirror` the sync uses, events going out after the DB commit.

**Group commit.** Writers of this process queue for the SSOT write lock; whoever gets it (the leader)
drafts every queued change, in arrival order, into one commit: each draft is computed on the head plus
the drafts before it, so it re-checks its own rule against them, and a draft that fails gets its own
error while the others commit. A batch stops at BATCH_FILES files or BATCH_BYTES bytes; the rest wait for
the next. The write lock (shared by every process) covers the commit and its mirror step, so the next
writer drafts on rows that include it.

**Waiting.** No caller waits longer than its bound (SSOT_WRITE_WAIT_SEC for requests) for the lock, the
write budget or a rate limit: past it, `SsotBusy` (503 + Retry-After), and nothing was written. Nothing
sleeps while holding the write lock: the budget is waited for before taking it, and a rate limit met
under it releases it (the store does not wait under the lock, see `Store.no_waiting`).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from core.blocking import blocked
from core.errors import Conflict, SsotBusy, SsotUnavailable
from ssot import budget, events, metrics
from ssot.bulk import select_in, update_where
from ssot.locking import LockTimeout, mirror_lock, write_lock
from ssot.mirror import FileUpdate, Mirror
from ssot.models import Ack, AuditEntry, Message, SsotFile, SyncState
from ssot.paths import audit_day_path, kind_of
from ssot.stores.base import (
    Store,
    StoreConflict,
    StoreError,
    StoreNotFound,
    StoreRateLimited,
    git_blob_sha,
)
from ssot.stores.factory import get_store
from ssot.sync import mirrored_head, sync_key

log = logging.getLogger(__name__)


# -- reading the head a change is computed on -------------------------------------------------------


class HeadView:
    """The SSOT at one head; where the mirror reflects exactly that head, the ledger saves API calls."""

    def __init__(self, store: Store, head: str | None, *, ledger_exact: bool) -> None:
        self.store = store
        self.head = head
        self.ledger_exact = ledger_exact
        # What the drafts before this one in the same commit write (None: delete): they come first.
        self.drafted: dict[str, bytes | None] = {}
        # The ledger's blob SHA of each path read so far (None: no file) and the SSOT path each Message or
        # Ack row read so far names: nothing changes them while a batch is drafted (only the mirror
        # writes them, after the commit), so each is read once per view.
        self._ledger: dict[str, str | None] = {}
        self._rows: dict[tuple[type[Message] | type[Ack], str], str | None] = {}

    def prefetch(self, reads: Iterable[Reads]) -> None:
        """Read what a batch's drafts declared they will look up: one query per table for all of them."""
        reads = list(reads)
        if self.ledger_exact and self.head is not None:
            self._ledger_shas([path for read in reads for path in read.paths])
        self._row_paths(Message, [msg_id for read in reads for msg_id in read.messages])
        self._row_paths(Ack, [msg_id for read in reads for msg_id in read.acks])

    def row_path(self, model: type[Message] | type[Ack], msg_id: str) -> str | None:
        """The SSOT path the mirror's Message or Ack row of `msg_id` names, if it has one."""
        if (model, msg_id) not in self._rows:
            self._row_paths(model, [msg_id])
        return self._rows[(model, msg_id)]

    def _row_paths(self, model: type[Message] | type[Ack], msg_ids: list[str]) -> None:
        if missing := [msg_id for msg_id in dict.fromkeys(msg_ids) if (model, msg_id) not in self._rows]:
            found = dict(select_in(model, "msg_id", missing, ["ssot_path"]))
            self._rows.update({(model, msg_id): found.get(msg_id) for msg_id in missing})

    def _ledger_shas(self, paths: list[str]) -> dict[str, str | None]:
        """The ledger's blob SHA of each of `paths` (None: no file); only the ones not read yet are asked."""
        if missing := [path for path in dict.fromkeys(paths) if path not in self._ledger]:
            found = dict(select_in(SsotFile, "path", missing, ["blob_sha"]))
            self._ledger.update({path: found.get(path) for path in missing})
        return {path: self._ledger[path] for path in paths}

    def sha(self, path: str) -> str | None:
        if path in self.drafted:
            data = self.drafted[path]
            return None if data is None else git_blob_sha(data)
        if self.head is None:
            return None
        if self.ledger_exact:
            return self._ledger_shas([path])[path]
        entry = self.store.entry(self.head, path)
        return entry.sha if entry else None

    def find(self, paths: list[str]) -> tuple[str, tuple[str, bytes] | None]:
        """The first of `paths` that holds a file, with its (blob SHA, content); else (paths[0], None).
        At most one ledger query for all of them where the ledger is exact (none if prefetched)."""
        if self.ledger_exact and self.head is not None:
            shas = self._ledger_shas([path for path in paths if path not in self.drafted])
            for path in paths:
                if path in self.drafted:
                    data = self.drafted[path]
                    if data is not None:
                        return path, (git_blob_sha(data), data)
                elif sha := shas.get(path):
                    try:
                        return path, (sha, self.store.read(sha))
                    except StoreNotFound:
                        continue  # a submodule entry (quarantined): no file
            return paths[0], None
        for path in paths:
            found = self.read(path)
            if found is not None:
                return path, found
        return paths[0], None

    def read(self, path: str) -> tuple[str, bytes] | None:
        if path in self.drafted:
            data = self.drafted[path]
            return None if data is None else (git_blob_sha(data), data)
        sha = self.sha(path)
        if not sha:
            return None
        try:
            return sha, self.store.read(sha)
        except StoreNotFound:
            # The ledger's SHA names no blob: a submodule entry (quarantined), which holds no file.
            return None

    def audit_day(self, path: str) -> bytes:
        """The current content of an audit file, rebuilt from its rows when their blob SHA proves it exact."""
        if path in self.drafted:
            return self.drafted[path] or b""
        sha = self.sha(path)
        if sha is None:
            return b""
        if self.ledger_exact:
            rows = list(
                AuditEntry.objects.filter(ssot_path=path).order_by("line_no").values_list("line_no", "raw")
            )
            if [number for number, _ in rows] == list(range(1, len(rows) + 1)):
                content = "".join(raw + "\n" for _, raw in rows).encode()
                if git_blob_sha(content) == sha:
                    return content
        return self.store.read(sha)


# -- one logical change = one commit -------------------------------------------------------------------


@dataclass
class Draft:
    """What one change writes: whole files, deletions and audit lines appended in the same commit."""

    message: str
    writes: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    audit: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass
class Committed:
    head: str
    parent: str | None
    files: list[FileUpdate]
    deletes: list[str]
    audit_lines: list[tuple[str, int]]


def _append(content: bytes, lines: list[str]) -> tuple[bytes, int]:
    """Append lines to an audit file; returns the new content and the number of the first new line."""
    text = content.decode("utf-8", errors="surrogateescape")
    if text and not text.endswith("\n"):
        text += "\n"
    first = text.count("\n") + 1  # lines end at "\n" only, as `ssot.documents.parse_audit` reads them
    return (text + "".join(line + "\n" for line in lines)).encode("utf-8", errors="surrogateescape"), first


def _append_audit(
    view: HeadView, writes: dict[str, bytes], audit: list[tuple[datetime, str]]
) -> list[tuple[str, int]]:
    """Add the draft's audit lines to their day files in `writes`; returns each line's (path, number)."""
    by_day: dict[str, list[str]] = {}
    for when, raw in audit:
        by_day.setdefault(audit_day_path(when), []).append(raw)
    first_line = {}
    for path, lines in by_day.items():
        writes[path], first_line[path] = _append(view.audit_day(path), lines)
    placed, seen = [], dict.fromkeys(by_day, 0)
    for when, _ in audit:
        path = audit_day_path(when)
        placed.append((path, first_line[path] + seen[path]))
        seen[path] += 1
    return placed


BATCH_FILES = 100
BATCH_BYTES = 1024 * 1024
BATCH_AUTHOR = "agentos"  # the author of a commit that holds several authors' changes


@dataclass(frozen=True)
class Reads:
    """What a change's draft will look up, declared when it is queued, so that the leader reads a whole
    batch's in one query per table (`HeadView.prefetch`). A hint: anything else is read when asked."""

    paths: tuple[str, ...] = ()  # SSOT paths whose blob SHA (in the ledger) the draft asks for
    messages: tuple[str, ...] = ()  # msg_ids whose Message row's path it asks for (`HeadView.row_path`)
    acks: tuple[str, ...] = ()  # msg_ids whose Ack row's path it asks for


@dataclass(eq=False)
class _Pending:
    """One caller's change, waiting in the queue for a leader to draft it."""

    build: Callable[[HeadView], Draft | None]
    author: str
    before_mirror: Callable[[Committed], None] | None
    deadline: float
    reads: Reads = Reads()
    done: threading.Event = field(default_factory=threading.Event)
    result: Committed | None = None
    error: BaseException | None = None

    def finish(self, result: Committed | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


_queue: deque[_Pending] = deque()
_queue_lock = threading.Lock()
# Notified whenever a leader is done: the changes it wrote return, and one waiter leads next.
_turn = threading.Condition(_queue_lock)
_leading = False  # a thread of this process is writing a batch (read and set under _queue_lock)


def write(
    build: Callable[[HeadView], Draft | None],
    *,
    author: str,
    before_mirror: Callable[[Committed], None] | None = None,
    wait: float | None = None,
    reads: Reads = Reads(),
) -> Committed | None:
    """Commit what `build` drafts on the current head, then mirror it; None if there is nothing to write.

    `build` may run in another thread (the leader's), with other changes drafted before it in the same
    commit; whatever it raises is raised here. `wait`: the longest this call waits for the lock, the
    write budget or a rate limit (default SSOT_WRITE_WAIT_SEC), then SsotBusy with Retry-After.
    `reads`: what `build` will look up, read ahead with the rest of its batch's.
    """
    bound = settings.SSOT_WRITE_WAIT_SEC if wait is None else wait
    pending = _Pending(build, author, before_mirror, deadline=time.monotonic() + bound, reads=reads)
    # Inside a transaction, the caller's drafts must see its uncommitted rows and its rows must join its
    # transaction: it writes alone, in its own thread, as before group commit.
    alone = connection.in_atomic_block
    # Queued, a request uses no CPU; leading, it writes for the whole queue, one thread per process:
    # either way another request may run meanwhile (core.blocking).
    with blocked():
        if not alone:
            with _turn:
                _queue.append(pending)
        while batch := _wait_for_turn(pending, alone):
            try:
                _lead(batch, own=pending)
            finally:
                _end_turn()
    if pending.error is not None:
        raise pending.error
    return pending.result


def _wait_for_turn(pending: _Pending, alone: bool) -> list[_Pending]:
    """Wait until `pending` is written (returns []) or this thread leads (returns the batch to write)."""
    global _leading
    with _turn:
        while _leading and not pending.done.is_set():
            remaining = pending.deadline - time.monotonic()
            if remaining > 0:
                _turn.wait(remaining)
            elif alone or pending in _queue:
                if not alone:
                    _queue.remove(pending)
                raise SsotBusy(
                    "The SSOT is busy with other changes; nothing was written. Try again shortly.",
                    retry_after=1,
                )
            else:
                _turn.wait()  # a leader has taken it: it is being written now
        if pending.done.is_set():
            return []
        _leading = True
        if alone:
            return [pending]
        batch = list(_queue)[:BATCH_FILES]
        for _ in batch:
            _queue.popleft()
        return batch


def _end_turn() -> None:
    global _leading
    with _turn:
        _leading = False
        _turn.notify_all()


def _requeue(pendings: list[_Pending]) -> None:
    """Put changes back at the head of the queue, in their order, for the next leader."""
    with _queue_lock:
        _queue.extendleft(reversed([p for p in pendings if not p.done.is_set()]))


def _busy(pendings: Iterable[_Pending], what: str, retry_after: float) -> None:
    for pending in pendings:
        pending.finish(
            error=SsotBusy(
                f"The SSOT cannot take this change now ({what}); nothing was written. "
                f"Try again in {math.ceil(retry_after)} s.",
                retry_after=max(1, math.ceil(retry_after)),
            )
        )


def _lead(batch: list[_Pending], *, own: _Pending) -> None:
    """Write a batch: wait for the budget (unlocked), then commit and mirror it under the write lock.

    Every change of the batch is finished (result or error) unless put back in the queue, which happens
    when the leader's own bound is reached first.
    """
    store = get_store()
    while batch := [p for p in batch if not p.done.is_set()]:
        now = time.monotonic()
        delay = budget.reserve(store)
        if delay > 0:
            _busy([p for p in batch if p.deadline < now + delay], "GitHub's write budget is spent", delay)
            if own.deadline < now + delay:
                _requeue(batch)
                return
            time.sleep(delay)
            continue
        requests = store.content_requests
        try:
            with write_lock(timeout=max(min(p.deadline for p in batch) - now, 0.0)):
                leftover = _write_batch(store, batch)
        except LockTimeout:
            expired = [p for p in batch if p.deadline <= time.monotonic()]
            _busy(expired, "another process holds the SSOT write lock", 1)
            if own.deadline <= time.monotonic():
                _requeue(batch)
                return
            continue
        except StoreRateLimited as exc:
            budget.pause(store, exc.retry_after)
            continue
        finally:
            # The commit was reserved; charge what it made beyond that, or give back what it did not.
            budget.spend(store, store.content_requests - requests - budget.COMMIT_COST)
        _requeue(leftover)
        return


def _write_batch(store: Store, batch: list[_Pending]) -> list[_Pending]:
    """Draft, commit and mirror; returns the changes left for the next batch (over its bounds)."""
    with store.no_waiting():
        try:
            drafted, leftover = _commit(store, batch)
        except StoreRateLimited:
            raise
        except StoreError as exc:
            failure = SsotUnavailable(f"SSOT unavailable: {exc}")
            for pending in batch:
                pending.finish(error=failure)
            return []
        except Exception as exc:
            # A conflict, or a failure around the drafts (the database, reading a batch ahead): every
            # change of the batch gets it; one left unfinished would return as if it wrote nothing.
            for pending in batch:
                if not pending.done.is_set():
                    pending.finish(error=exc)
            if not isinstance(exc, Conflict):
                log.exception("drafting a batch of %d changes failed", len(batch))
            return []
    try:
        if drafted:
            _mirror_batch(drafted)
    finally:
        # Committed whatever the mirror did (the next sync repairs the rows): each change is told so.
        for pending, committed in drafted:
            pending.finish(result=committed)
    return leftover


def _commit(store: Store, batch: list[_Pending]) -> tuple[list[tuple[_Pending, Committed]], list[_Pending]]:
    """Draft the batch in order on the current head and commit it; re-drafted on a conflict.

    Returns each written change with its Committed, and the changes left over for the next batch. A change
    with nothing to write, or whose draft fails, is finished here.
    """
    for attempt in range(settings.SSOT_WRITE_RETRIES):
        try:
            head = store.head()
            mirrored = mirrored_head()
            view = HeadView(store, head, ledger_exact=head is not None and head == mirrored)
            view.prefetch(pending.reads for pending in batch if not pending.done.is_set())
            drafted, leftover = _draft(view, batch)
            if not drafted:
                return [], leftover
            writes = {path: data for path, data in view.drafted.items() if data is not None}
            deletes = [path for path, data in view.drafted.items() if data is None]
            drafts = [draft for _, draft, _, _ in drafted]
            authors = {pending.author for pending, *_ in drafted}
            new_head = store.commit(
                parent=head,
                writes=writes,
                deletes=deletes,
                message=drafts[0].message if len(drafts) == 1 else _batch_message(drafts),
                author=authors.pop() if len(authors) == 1 else BATCH_AUTHOR,
            )
        except StoreConflict:
            metrics.SSOT_WRITE_CONFLICTS.inc()
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
            continue
        metrics.SSOT_COMMITS.inc()
        metrics.SSOT_BATCH_CHANGES.observe(len(drafted))
        return [
            (
                pending,
                Committed(
                    head=new_head,
                    parent=head,
                    files=_updates(own_writes),
                    deletes=list(draft.deletes),
                    audit_lines=audit_lines,
                ),
            )
            for pending, draft, audit_lines, own_writes in drafted
        ], leftover
    metrics.SSOT_WRITES_REFUSED.inc()
    raise Conflict("The SSOT kept changing while this change was being written; try again.")


_Drafted = tuple[_Pending, Draft, list[tuple[str, int]], dict[str, bytes]]


def _draft(view: HeadView, batch: list[_Pending]) -> tuple[list[_Drafted], list[_Pending]]:
    """Draft each change on the view plus the drafts before it, within the batch's bounds."""
    drafted: list[_Drafted] = []
    files = size = 0
    for index, pending in enumerate(batch):
        if pending.done.is_set():
            continue
        if files >= BATCH_FILES or size >= BATCH_BYTES:
            return drafted, batch[index:]
        try:
            draft = pending.build(view)
            if draft is None:
                pending.finish(result=None)
                continue
            writes = dict(draft.writes)
            audit_lines = _append_audit(view, writes, draft.audit)
        except StoreError:
            raise  # the SSOT's failure, not the draft's: the whole batch waits or fails
        except Exception as exc:  # the draft's own error (its rule, a bad id): only it fails
            pending.finish(error=exc)
            continue
        view.drafted.update(writes)
        view.drafted.update(dict.fromkeys(draft.deletes))
        drafted.append((pending, draft, audit_lines, writes))
        files += len(draft.writes) + len(draft.deletes) + (1 if draft.audit else 0)
        size += sum(len(data) for data in draft.writes.values()) + sum(len(raw) for _, raw in draft.audit)
    return drafted, []


def _batch_message(drafts: list[Draft]) -> str:
    """The commit message of several changes: how many, then each change's own message on a line."""
    return f"{len(drafts)} changes\n\n" + "\n".join(draft.message.splitlines()[0] for draft in drafts)


def _updates(writes: dict[str, bytes]) -> list[FileUpdate]:
    return [
        FileUpdate(path=path, kind=kind, sha=git_blob_sha(data), raw=data)
        for path, data in writes.items()
        if (kind := kind_of(path)) is not None
    ]


def _mirror_batch(drafted: list[tuple[_Pending, Committed]]) -> None:
    """Mirror a batch's commit once: the last content of every path, and every change's before_mirror."""
    first = drafted[0][1]
    files: dict[str, FileUpdate] = {}
    deletes: dict[str, None] = {}
    for _, committed in drafted:
        for update in committed.files:
            files[update.path] = update
            deletes.pop(update.path, None)
        for path in committed.deletes:
            files.pop(path, None)
            deletes[path] = None
    union = Committed(
        head=first.head,
        parent=first.parent,
        files=list(files.values()),
        deletes=list(deletes),
        audit_lines=[],
    )
    befores = [(p.before_mirror, c) for p, c in drafted if p.before_mirror is not None]

    def before() -> None:
        for callback, committed in befores:
            callback(committed)

    _mirror(union, before=before if befores else None)


def _mirror(committed: Committed, *, before: Callable[[], None] | None = None) -> Mirror | None:
    """Update the rows for a commit just made; on failure the next sync repairs them."""
    try:
        with mirror_lock(), transaction.atomic():
            if before is not None:
                before()
            # A rewrite found here happened in a commit not mirrored yet: the one this change was drafted on.
            mirror = Mirror(live=True, own_write=True, commit=committed.parent or committed.head)
            mirror.delete((path, kind_of(path) or "") for path in committed.deletes)
            mirror.apply(committed.files)
            mirror.finish()
            if committed.parent is not None:
                # The mirror was exact at the parent and now holds this commit's files: it is exact here.
                update_where(SyncState, {**sync_key(), "head": committed.parent}, {"head": committed.head})
            events.broadcast_all_on_commit(mirror.events)
            return mirror
    except DatabaseError:
        log.exception(
            "SSOT commit %s is written but its rows are not; the next sync repairs them", committed.head[:10]
        )
        return None
