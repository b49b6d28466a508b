"""How one logical change becomes one SSOT commit and then rows: the machinery under ssot/services.py.

A change is drafted from the SSOT at the current head (`HeadView`), committed with that head as the
expected parent (re-drafted on a conflict, a bounded number of times), then mirrored into the rows
through the same `Mirror` the sync uses, events going out after the DB commit. The control plane's own
writers queue on the write lock, which also covers the mirror step.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, transaction

from core.errors import Conflict, SsotUnavailable
from ssot import events, metrics
from ssot.locking import mirror_lock, write_lock
from ssot.mirror import FileUpdate, Mirror
from ssot.models import AuditEntry, SsotFile, SyncState
from ssot.paths import audit_day_path, kind_of
from ssot.stores.base import Store, StoreConflict, StoreError, StoreNotFound, git_blob_sha
from ssot.stores.factory import get_store
from ssot.sync import sync_state

log = logging.getLogger(__name__)


# -- reading the head a change is computed on -------------------------------------------------------


class HeadView:
    """The SSOT at one head; where the mirror reflects exactly that head, the ledger saves API calls."""

    def __init__(self, store: Store, head: str | None, *, ledger_exact: bool) -> None:
        self.store = store
        self.head = head
        self.ledger_exact = ledger_exact

    def sha(self, path: str) -> str | None:
        if self.head is None:
            return None
        if self.ledger_exact:
            return SsotFile.objects.filter(path=path).values_list("blob_sha", flat=True).first()
        entry = self.store.entry(self.head, path)
        return entry.sha if entry else None

    def read(self, path: str) -> tuple[str, bytes] | None:
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


def write(
    build: Callable[[HeadView], Draft | None],
    *,
    author: str,
    before_mirror: Callable[[Committed], None] | None = None,
) -> Committed | None:
    """Commit what `build` drafts on the current head, then mirror it; None if there is nothing to write.

    The write lock covers the mirror step too, so the next writer drafts on rows that include this commit.
    """
    store = get_store()
    with write_lock():
        committed = _commit(store, build, author=author)
        if committed is not None:
            _mirror(committed, before=(lambda: before_mirror(committed)) if before_mirror else None)
        return committed


def _commit(store: Store, build: Callable[[HeadView], Draft | None], *, author: str) -> Committed | None:
    for attempt in range(settings.SSOT_WRITE_RETRIES):
        try:
            head = store.head()
            mirrored = sync_state().head
            view = HeadView(store, head, ledger_exact=head is not None and head == mirrored)
            draft = build(view)
            if draft is None:
                return None
            writes = dict(draft.writes)
            audit_lines = _append_audit(view, writes, draft.audit)
            new_head = store.commit(
                parent=head, writes=writes, deletes=draft.deletes, message=draft.message, author=author
            )
        except StoreConflict:
            metrics.SSOT_WRITE_CONFLICTS.inc()
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
            continue
        except StoreError as exc:
            raise SsotUnavailable(f"SSOT unavailable: {exc}") from exc
        metrics.SSOT_COMMITS.inc()
        files = [
            FileUpdate(path=path, kind=kind, sha=git_blob_sha(data), raw=data)
            for path, data in writes.items()
            if (kind := kind_of(path)) is not None
        ]
        return Committed(
            head=new_head, parent=head, files=files, deletes=list(draft.deletes), audit_lines=audit_lines
        )
    metrics.SSOT_WRITES_REFUSED.inc()
    raise Conflict("The SSOT kept changing while this change was being written; try again.")


def _mirror(committed: Committed, *, before: Callable[[], None] | None = None) -> Mirror | None:
    """Update the rows for a commit just made; on failure the next sync repairs them."""
    try:
        with mirror_lock(), transaction.atomic():
            if before is not None:
                before()
            mirror = Mirror(live=True)
            mirror.delete((path, kind_of(path) or "") for path in committed.deletes)
            mirror.apply(committed.files)
            mirror.finish()
            if committed.parent is not None:
                # The mirror was exact at the parent and now holds this commit's files: it is exact here.
                SyncState.objects.filter(pk=sync_state().pk, head=committed.parent).update(
                    head=committed.head
                )
            for event in mirror.events:
                events.broadcast_on_commit(event)
            return mirror
    except DatabaseError:
        log.exception(
            "SSOT commit %s is written but its rows are not; the next sync repairs them", committed.head[:10]
        )
        return None
