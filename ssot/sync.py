"""The only reader of the SSOT into the ORM: full and incremental sync, keyed on path + blob SHA.

A file whose blob SHA equals the one in the ledger is never read again; an incremental sync reads
only what changed between the mirrored head and the new one. Idempotent: a second sync of the same
head writes nothing. A full sync also reads the quarantined files again, so that a file quarantined
for a reason since fixed (the database refused it, say) is mirrored by `ssot_resync --full`.

No content stops a sync: a file that fails is quarantined by the `Mirror`, a submodule entry (no
content at all) too. Any failure that does stop it, whatever its kind, is recorded in `SyncState`
(`consecutive_errors`, `last_error` naming where and why), announced as a `sync` event, and raised as
`SsotUnavailable` (the SSOT did not answer) or `SyncFailed` (anything else).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import SsotUnavailable, SyncFailed
from core.redact import public
from ssot import events
from ssot.audit import audit_queue
from ssot.bulk import select_where
from ssot.locking import mirror_lock
from ssot.mirror import FileUpdate, Mirror, MirrorFailed, describe
from ssot.models import SsotFile, SyncState
from ssot.paths import kind_of
from ssot.stores.base import (
    Store,
    StoreBlobRefused,
    StoreError,
    StoreIncomplete,
    StoreNotFound,
    StoreRateLimited,
)
from ssot.stores.factory import branch, get_store, repository_label

log = logging.getLogger(__name__)

CHUNK = 1000
# How a failure to read the SSOT starts in `SyncState.last_error` (any other failure is the sync's own).
UNAVAILABLE = "SSOT unavailable: "


@dataclass
class SyncReport:
    mode: str
    head: str | None
    previous_head: str | None
    files_changed: int = 0
    files_read: int = 0
    files_deleted: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    # Clients must reload: too many changed rows for one event each (no per-row events went out), or the
    # approval policy changed (what every task awaiting approval needs may have).
    reload: bool = False
    seconds: float = 0.0
    # Set when a folder could not be listed whole: what was seen is mirrored, yet the sync failed.
    incomplete: str = ""

    @property
    def rows_written(self) -> int:
        return sum(count for name, count in self.rows.items() if name != "quarantined")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_written"] = self.rows_written
        return data


def sync_key() -> dict[str, Any]:
    """What names the configured store's SyncState row (its unique backend, repository and branch)."""
    return {"backend": get_store().backend, "repository": repository_label(), "branch": branch()}


def sync_failing() -> SyncState | None:
    """The sync's state while its last attempt failed, else None; reads without creating the row."""
    return (
        SyncState.objects.filter(**sync_key(), consecutive_errors__gt=0)
        .only("consecutive_errors", "last_error", "last_error_at")
        .first()
    )


def sync_state() -> SyncState:
    state, _ = SyncState.objects.get_or_create(**sync_key())
    return state


def mirrored_head() -> str | None:
    """`sync_state().head`, in one plain query once the row exists (every group commit asks)."""
    found = select_where(SyncState, sync_key(), ["head"])
    return found[0][0] if found else sync_state().head


def sync(*, full: bool = False, store: Store | None = None) -> SyncReport:
    """Bring the mirror to the SSOT's head; `full` compares every file's blob SHA with the ledger."""
    store = store or get_store()
    started = time.monotonic()
    with mirror_lock():
        state = sync_state()
        try:
            head = store.head()
            report = _sync_to(store, state, head, full=full)
        except StoreError as exc:
            _record_failure(state, f"{UNAVAILABLE}{exc}")
            wait = exc.retry_after if isinstance(exc, StoreRateLimited) else None
            raise SsotUnavailable(
                f"{UNAVAILABLE}{exc}", retry_after=None if wait is None else max(1, math.ceil(wait))
            ) from exc
        except Exception as exc:
            reason = str(exc) if isinstance(exc, MirrorFailed) else describe(exc)
            log.exception("sync failed: %s", reason)
            _record_failure(state, reason)
            raise SyncFailed(f"Sync failed: {reason}") from exc
        report.seconds = round(time.monotonic() - started, 3)
        if report.incomplete:
            log.error("sync incomplete: %s", report.incomplete)
            _record_failure(state, report.incomplete)
            raise SyncFailed(f"Sync failed: {report.incomplete}")
        _record_success(state, head, report)
    return report


def _sync_to(store: Store, state: SyncState, head: str | None, *, full: bool) -> SyncReport:
    previous = state.head or None
    if head is None:
        return SyncReport(mode="empty", head=None, previous_head=previous)
    if previous == head and not full:
        return SyncReport(mode="noop", head=head, previous_head=previous)
    # Inside a caller's transaction, a savepoint keeps that transaction usable to record a failure.
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        return _mirror_changes(store, previous, head, full=full)


def _mirror_changes(store: Store, previous: str | None, head: str, *, full: bool) -> SyncReport:
    ledger = dict(SsotFile.objects.values_list("path", "blob_sha"))
    to_read: list[tuple[str, str, str, bool]] = []
    to_delete: list[tuple[str, str]] = []
    mode = "full" if full or previous is None else "incremental"
    # A folder GitHub would not list whole: what was seen is mirrored, nothing unseen is deleted, and the
    # sync is recorded as failed (the monitor escalates) until the folder is sharded.
    incomplete: StoreIncomplete | None = None
    if mode == "incremental":
        try:
            changes = store.changed(previous, head)
        except StoreNotFound:
            # The mirrored head is gone (a force push): compare everything instead.
            mode = "full"
        except StoreIncomplete as exc:
            changes, incomplete = exc.partial, exc
    if mode == "full":
        present = {}
        quarantined = set(SsotFile.objects.filter(quarantined=True).values_list("path", flat=True))
        try:
            entries = store.list(head)
        except StoreIncomplete as exc:
            entries, incomplete = exc.partial, exc
        for entry in entries:
            kind = kind_of(entry.path)
            if kind is not None:
                present[entry.path] = entry.sha
                if ledger.get(entry.path) != entry.sha or entry.path in quarantined:
                    to_read.append((entry.path, entry.sha, kind, entry.gitlink))
        to_delete = [
            (path, kind_of(path) or "")
            for path in ledger
            if path not in present and not (incomplete and incomplete.covers(path))
        ]
    else:
        for change in changes:
            kind = kind_of(change.path)
            if kind is None:
                continue
            if change.new_sha is None:
                if change.path in ledger and not (incomplete and incomplete.covers(change.path)):
                    to_delete.append((change.path, kind))
            elif ledger.get(change.path) != change.new_sha:
                to_read.append((change.path, change.new_sha, kind, change.gitlink))
    report = SyncReport(
        mode=mode, head=head, previous_head=previous, files_changed=len(to_read) + len(to_delete)
    )
    mirror = Mirror(live=mode == "incremental", commit=head, store=store, by_history=True)
    if to_delete:
        with transaction.atomic():
            mirror.delete(to_delete)
        report.files_deleted = len(to_delete)
    for start in range(0, len(to_read), CHUNK):
        files = [
            _gitlink(path, sha, kind) if gitlink else _read(store, path, sha, kind)
            for path, sha, kind, gitlink in to_read[start : start + CHUNK]
        ]
        report.files_read += sum(1 for update in files if not update.unreadable)
        with transaction.atomic():
            mirror.apply(files)
    with transaction.atomic():
        mirror.finish()
        _queue_quarantine_audit(mirror)
        _broadcast(mirror)
    report.rows = dict(mirror.counts)
    report.quarantined = [path for path, _ in mirror.quarantined]
    report.reload = mirror.overflowed or mirror.reload
    if incomplete is not None:
        report.incomplete = (
            f"{incomplete}; {report.files_read} files read, nothing unseen deleted "
            f"({len(to_delete)} deletions outside it applied)"
        )
    return report


def _read(store: Store, path: str, sha: str, kind: str) -> FileUpdate:
    """A file's content; a blob the SSOT refuses to serve (over 100 MB on GitHub) is quarantined."""
    try:
        return FileUpdate(path, kind, sha, store.read(sha))
    except StoreBlobRefused as exc:
        return FileUpdate(path=path, kind=kind, sha=sha, raw=b"", unreadable=f"{exc}; make the file smaller")


def _gitlink(path: str, sha: str, kind: str) -> FileUpdate:
    """A submodule entry where a file belongs: nothing to read, quarantined with the reason."""
    reason = (
        f"a submodule entry (a gitlink to commit {sha[:12]} of another repository), not a file: "
        "replace it with the file itself"
    )
    return FileUpdate(path=path, kind=kind, sha=sha, raw=b"", unreadable=reason)


def _queue_quarantine_audit(mirror: Mirror) -> None:
    for path, errors in mirror.quarantined:
        summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        audit_queue(
            actor="system", action="quarantined", detail=f"{path}: {summary}"[:2000], extra={"path": path}
        )


def _broadcast(mirror: Mirror) -> None:
    if mirror.overflowed:
        return
    for event in mirror.events:
        events.broadcast_on_commit(event)


def _record_success(state: SyncState, head: str | None, report: SyncReport) -> None:
    now = timezone.now()
    state.head = head or ""
    state.last_sync_at = now
    state.last_success_at = now
    state.last_error = ""
    state.consecutive_errors = 0
    if report.mode != "noop":
        state.last_report = report.as_dict()
    state.save(
        update_fields=[
            "head",
            "last_sync_at",
            "last_success_at",
            "last_error",
            "consecutive_errors",
            "last_report",
        ]
    )
    if report.mode != "noop":
        events.broadcast_on_commit(
            events.sync(state, {**report.as_dict(), "reload": report.reload or report.files_changed > 200})
        )
        log.info(
            "sync %s -> %s: %d read, %d deleted, %d rows, %d quarantined in %.3fs",
            report.mode,
            (head or "")[:10],
            report.files_read,
            report.files_deleted,
            report.rows_written,
            len(report.quarantined),
            report.seconds,
        )


def _record_failure(state: SyncState, reason: str) -> None:
    """Count the failure in SyncState and announce it; if even that fails, the log says so."""
    now = timezone.now()
    # Shown on the dashboard and in /api/sync/: no filesystem path, no credentials in a URL.
    reason = public(reason)
    try:
        # Counted in SQL: two processes failing at once both count.
        SyncState.objects.filter(pk=state.pk).update(
            last_sync_at=now,
            last_error=reason[:2000],
            last_error_at=now,
            consecutive_errors=F("consecutive_errors") + 1,
        )
        state.refresh_from_db(fields=["last_sync_at", "last_error", "last_error_at", "consecutive_errors"])
        events.broadcast_on_commit(events.sync(state, {"failed": True}))
    except Exception:
        log.exception("the sync failure could not be recorded: %s", reason)
        return
    log.warning("sync failed (%d in a row): %s", state.consecutive_errors, reason)
