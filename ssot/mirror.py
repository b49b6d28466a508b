"""Apply SSOT files to the rows: the one upsert code the sync and the write path share.

A `Mirror` takes batches of (path, blob SHA, content) and deletions, inside the caller's transaction,
keyed on path + blob SHA through the `SsotFile` ledger. It collects the events and the agents'
liveness it observed; the caller broadcasts after commit.

A file that fails at any step is quarantined alone, with its reason: reading and checking (the parsers
of `ssot.documents`), conversion into row values, or the database write itself. A batch is written in
bulk inside a savepoint; if the database refuses it for its content (a constraint, a value it cannot
hold), the batch is written again file by file, each in its own savepoint, so that only the file the
database refuses is quarantined. A failure that is not the content's (the connection, a lock, a missing
table) is not blamed on a file: it stops the pass as `MirrorFailed`, naming where it happened.
"""

from __future__ import annotations

import enum
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

import amp
from ssot import events
from ssot.audit import DECISION_ACTIONS
from ssot.bulk import Upsert, advance, select_in
from ssot.documents import (
    FileInvalid,
    dump_json,
    jsonl_lines,
    load_json_object,
    parse_ack,
    parse_approvals,
    parse_audit,
    parse_heartbeat,
    parse_message,
    parse_task,
)
from ssot.models import (
    Ack,
    Agent,
    ApprovalPolicy,
    AuditEntry,
    Escalation,
    Message,
    QuarantinedFile,
    SsotFile,
    Task,
    TaskApprovals,
)
from ssot.paths import stem, task_path
from ssot.policy import approval_counts, parse_policy
from ssot.seals import seal_holds
from ssot.stores.base import Revision, Store, StoreError
from ssot.stores.factory import get_store

log = logging.getLogger(__name__)


def _rebuilt(row: Message | Ack) -> bytes:
    """A mirrored message's or ack's file content, rebuilt from its row."""
    if isinstance(row, Message):
        return dump_json(row.envelope)
    return dump_json({"msg_id": row.msg_id, "by": row.by, "at": row.at.isoformat()})


# Past this many changed rows, one `sync` event tells clients to reload instead of one event per row.
EVENTS_PER_BATCH = 200
ESCALATION_ACTIONS = ("escalation_acknowledged", "escalation_resolved")
# The statuses only a person decides (SPEC section 5): reached without a sealed decision line, flagged.
DECIDED = ("approved", "rejected")


@dataclass(frozen=True)
class Prior:
    """A task's row before this pass: its status and version."""

    status: str
    sha: str


@dataclass(frozen=True)
class Decided:
    """A task whose new version in this pass has a decided status; `prior` is None for a new row."""

    task_id: str
    status: str
    sha: str
    prior: Prior | None


def _lines(data: bytes) -> list[str]:
    """An audit file's lines as `parse_audit` numbers them (text that is not UTF-8 holds none)."""
    try:
        return jsonl_lines(data)
    except amp.JsonRefused:
        return []


def _by(revision: Revision) -> tuple[str, str]:
    """What a change is marked with: the commit, and its author as a row can hold it."""
    return revision.commit, revision.author[:255]


def _grouped(
    how: dict[int, str], blame: dict[int, tuple[str, str]]
) -> dict[tuple[str, tuple[str, str]], list[int]]:
    """Line numbers by what happened to them and who did it: one update each."""
    groups: dict[tuple[str, tuple[str, str]], list[int]] = {}
    for number, kind in sorted(how.items()):
        groups.setdefault((kind, blame[number]), []).append(number)
    return groups


class Traced(enum.Enum):
    """What tracing a decided version found, short of the commit that decided it without a seal."""

    # A sealed decision line names the version, or one it was edited from.
    VOUCHED = "vouched"
    # An edit after the version mirrored before, in the same status: that version's verdict stands.
    UNCHANGED = "unchanged"


# A JSON `\u0000` escape (its backslash not itself escaped): a NUL character, which the database
# cannot hold (PostgreSQL refuses it in text and jsonb), so such a file is quarantined, never fatal.
NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_ERROR = {"path": "$", "message": "contains a NUL character (\\u0000), which the database cannot store"}


def _storable(text: str) -> str:
    """Text the database can hold: a NUL character becomes U+FFFD (the line's `raw` keeps it escaped)."""
    return text.replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class FileUpdate:
    path: str
    kind: str
    sha: str
    raw: bytes
    # Why the SSOT has no content for this path (a submodule entry): the file is quarantined with it.
    unreadable: str = ""


class MirrorFailed(Exception):
    """Mirroring stopped on a failure that is not a file's doing; the message names where and why."""


def content_fault(exc: BaseException) -> bool:
    """Whether a failure can be the file's own doing (quarantine it), not the database's state or ours.

    A constraint or a value the database cannot hold is the content's; so is PostgreSQL's "program limit
    exceeded" (SQLSTATE class 54: a value too large to store or index). Any other database error (the
    connection, a lock, a missing table) says nothing about the file. Errors outside the database are
    conversions of the file's values.
    """
    if isinstance(exc, IntegrityError | DataError):
        return True
    if isinstance(exc, DatabaseError):
        return str(getattr(exc.__cause__, "sqlstate", "") or "").startswith("54")
    return isinstance(exc, Exception)


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line about an exception, safe to store as text (no NUL, no lone surrogate) and bounded."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Mark:
    """What a Mirror had collected before an attempt, to forget what a rolled-back attempt added."""

    events: int
    quarantined: int
    refs: int
    changed_rows: int
    counts: Counter
    seen: dict[str, tuple[datetime, str]]
    reload: bool


def ack_overrides() -> dict[str, int]:
    """The per-type ACK timeouts the settings override (SPEC section 3)."""
    return {
        "task_dispatch": settings.ACK_TIMEOUT_DISPATCH_SEC,
        "review_request": settings.ACK_TIMEOUT_REVIEW_SEC,
    }


def escalation_subject(payload: dict[str, Any]) -> str:
    """What an escalation is about, as the monitors record it in the snapshot (agent or message)."""
    snapshot = payload.get("system_state_snapshot")
    subject = snapshot.get("subject") if isinstance(snapshot, dict) else None
    return subject[:160] if isinstance(subject, str) else ""


@dataclass
class Mirror:
    """One pass of changes; `live` means the files changed just now, so a task's writer counts as seen."""

    live: bool = True
    # The control plane's own commit (ssot.writing): its services announce the approvals they record
    # (`approval_progress`), so an approvals file of such a commit sends no `task_update` of its own.
    own_write: bool = False
    observed_at: datetime = field(default_factory=timezone.now)
    events: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    seen: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    quarantined: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)
    # The commit this pass mirrors (the sync's head; for a write, the head it was drafted on): what marks
    # a rewritten audit line or an unverified decision; `store` tells its author.
    commit: str = ""
    store: Store | None = None
    # The sync reads several commits at once: a change is traced through its file's history to the
    # commit that made it (Store.history), not blamed on whoever pushed last.
    by_history: bool = False
    _refs: list[tuple[str, str, datetime, str]] = field(default_factory=list)
    _changed_rows: int = 0
    # The approval policy changed: what every task awaiting approval needs may have, so clients take a
    # fresh snapshot rather than an event per task.
    reload: bool = False
    _author: str | None = None
    _sources: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Tasks in a decided status with a version new to the mirror in this pass (reached it, or edited in it).
    _decided: list[Decided] = field(default_factory=list)
    # Sealed decision lines seen in this pass: (task_id, status, task blob SHA).
    _sealed: set[tuple[str, str, str]] = field(default_factory=set)

    # -- entry points -------------------------------------------------------------------------

    def apply(self, files: Iterable[FileUpdate]) -> None:
        """Mirror these files (already read) into their rows and the ledger; a file that fails is
        quarantined alone, and the others land."""
        files = list(files)
        mark = self._mark()
        try:
            with transaction.atomic():
                self._apply(files)
            return
        except Exception as exc:
            if not content_fault(exc):
                where = files[0].path if len(files) == 1 else f"{len(files)} files from {files[0].path}"
                raise MirrorFailed(f"mirroring {where}: {describe(exc)}") from exc
            self._restore(mark)
            if len(files) == 1:
                self._refused_by_database(files[0], exc)
                return
            log.warning("writing %d files in bulk failed (%s); writing them one by one", len(files), exc)
        for update in files:
            mark = self._mark()
            try:
                with transaction.atomic():
                    self._apply([update])
            except Exception as exc:
                if not content_fault(exc):
                    raise MirrorFailed(f"mirroring {update.path}: {describe(exc)}") from exc
                self._restore(mark)
                self._refused_by_database(update, exc)

    def _refused_by_database(self, update: FileUpdate, exc: Exception) -> None:
        """Quarantine a file whose rows could not be written, in a savepoint of its own."""
        log.warning("%s is quarantined: writing its rows failed: %s", update.path, describe(exc))
        try:
            with transaction.atomic():
                self._quarantine(update, [{"path": "$", "message": f"could not be stored: {describe(exc)}"}])
        except Exception as again:
            raise MirrorFailed(f"quarantining {update.path}: {describe(again)}") from again

    def _apply(self, files: list[FileUpdate]) -> None:
        by_kind: dict[str, list[FileUpdate]] = {}
        for update in files:
            if update.unreadable:
                self._quarantine(update, [{"path": "$", "message": update.unreadable}])
                continue
            if (
                update.kind != SsotFile.Kind.AUDIT
                and b"\\u0000" in update.raw
                and NUL_ESCAPE.search(update.raw)
            ):
                self._quarantine(update, [NUL_ERROR])
                continue
            by_kind.setdefault(update.kind, []).append(update)
        handlers = (
            (SsotFile.Kind.TASK, self._tasks),
            (SsotFile.Kind.MESSAGE, self._messages),
            (SsotFile.Kind.ACK, self._acks),
            (SsotFile.Kind.HEARTBEAT, self._heartbeats),
            (SsotFile.Kind.AUDIT, self._audit_files),
            (SsotFile.Kind.APPROVALS, self._approvals),
            (SsotFile.Kind.POLICY, self._policy),
        )
        for kind, handler in handlers:
            if by_kind.get(kind):
                handler(by_kind[kind])

    def delete(self, paths: Iterable[tuple[str, str]]) -> None:
        """Remove the rows of files that no longer exist: (path, kind) pairs."""
        by_kind: dict[str, list[str]] = {}
        for path, kind in paths:
            by_kind.setdefault(kind, []).append(path)
        if not by_kind:
            return
        all_paths = [p for group in by_kind.values() for p in group]
        QuarantinedFile.objects.filter(path__in=all_paths).delete()
        SsotFile.objects.filter(path__in=all_paths).delete()
        if tasks := by_kind.get(SsotFile.Kind.TASK):
            gone = list(Task.objects.filter(ssot_path__in=tasks).values_list("task_id", flat=True))
            Task.objects.filter(ssot_path__in=tasks).delete()
            self._emit(*(events.task_removed(task_id) for task_id in gone))
        if messages := by_kind.get(SsotFile.Kind.MESSAGE):
            Message.objects.filter(ssot_path__in=messages).delete()
        if acks := by_kind.get(SsotFile.Kind.ACK):
            msg_ids = list(Ack.objects.filter(ssot_path__in=acks).values_list("msg_id", flat=True))
            Ack.objects.filter(ssot_path__in=acks).delete()
            Message.objects.filter(msg_id__in=msg_ids, ack_state=Message.AckState.ACKED).update(
                ack_state=Message.AckState.PENDING, acked_at=None
            )
        for path in by_kind.get(SsotFile.Kind.AUDIT, []):
            # A deleted audit file removed every line of it: each is kept, marked.
            numbers = AuditEntry.objects.filter(ssot_path=path).values_list("line_no", flat=True)
            self._mark_rewritten(path, {number: "removed" for number in numbers if number is not None})
        if approvals := by_kind.get(SsotFile.Kind.APPROVALS):
            pending = TaskApprovals.objects.filter(ssot_path__in=approvals)
            task_ids = list(pending.values_list("task_id", flat=True))
            pending.delete()
            if not self.own_write:  # the control plane's decisions delete it with a task event of their own
                self._emit_tasks(task_ids)
        if policies := by_kind.get(SsotFile.Kind.POLICY):
            # The file is gone: the built-in default is in force again.
            ApprovalPolicy.objects.filter(ssot_path__in=policies).delete()
            self.reload = True
        self.counts["deleted"] += len(all_paths)

    def finish(self) -> None:
        """Settle what needs every file of the pass: acknowledgements by later messages, liveness, and
        whether each decision reached in it has its sealed decision line."""
        self._settle_context_refs()
        self._record_seen()
        self._settle_decisions()

    def author(self) -> str:
        """The author of `commit` (asked of the store once, when something is to be marked with it)."""
        if self._author is None:
            self._author = ""
            if self.commit:
                try:
                    self._author = (self.store or get_store()).author(self.commit)[:255]
                except StoreError as exc:
                    log.warning("the author of commit %s is unknown: %s", self.commit[:10], exc)
        return self._author

    def source(self, path: str) -> tuple[str, str]:
        """The commit and author a change of `path` is marked with."""
        if path not in self._sources:
            found: tuple[str, str | None] = (self.commit, None)
            if self.by_history and self.store is not None:
                try:
                    revisions = self.store.history(path, limit=1, start=self.commit or None)
                except StoreError as exc:
                    log.warning("the history of %s is unknown: %s", path, exc)
                else:
                    if revisions:
                        found = _by(revisions[0])
            self._sources[path] = found
        commit, author = self._sources[path]
        return commit, author if author is not None else self.author()

    # -- kinds --------------------------------------------------------------------------------

    def _tasks(self, files: list[FileUpdate]) -> None:
        writer = Upsert(Task, unique="task_id", keep=("created_at",))
        written: list[FileUpdate] = []
        task_ids: list[str] = []
        statuses: list[tuple[str, str, str]] = []
        for update in files:
            try:
                doc = parse_task(update.path, update.raw)
                writer.add(
                    {
                        "task_id": doc.task_id,
                        "document": doc.document,
                        "ssot_path": update.path,
                        "blob_sha": update.sha,
                        **doc.columns(),
                        "created_at": self.observed_at,
                        "updated_at": self.observed_at,
                    }
                )
            except Exception as exc:
                self._refuse(update, exc)
                continue
            written.append(update)
            task_ids.append(doc.task_id)
            statuses.append((doc.task_id, str(doc.document["status"]), update.sha))
            if self.live and doc.document.get("last_writer"):
                self._saw(str(doc.document["last_writer"]), self.observed_at, "task")
        if written:
            before = {
                task_id: Prior(status, sha)
                for task_id, status, sha in Task.objects.filter(task_id__in=task_ids).values_list(
                    "task_id", "status", "blob_sha"
                )
            }
            writer.write()
            self._note_decisions(before, statuses)
            self._ledger(written, kind=SsotFile.Kind.TASK)
            self.counts["tasks"] += len(written)
            self._emit_tasks(task_ids)

    def _messages(self, files: list[FileUpdate]) -> None:
        files = self._in_one_place(files, Message)
        # A changed message keeps its ACK state (settled below); a new one starts from its deadline.
        writer = Upsert(Message, unique="msg_id", keep=("created_at", "ack_state"))
        overrides = ack_overrides()
        written: list[FileUpdate] = []
        msg_ids: list[str] = []
        no_ack: list[str] = []
        escalations: list[str] = []
        for update in files:
            try:
                envelope = parse_message(update.path, update.raw)
                deadline = amp.ack_deadline(envelope, overrides)
                writer.add(
                    {
                        "msg_id": envelope.msg_id,
                        "protocol_version": envelope.protocol_version,
                        "type": envelope.type,
                        "sender": envelope.sender,
                        "recipient": envelope.recipient,
                        "task_id": envelope.task_id,
                        "timestamp": envelope.timestamp,
                        "requires_ack": envelope.requires_ack,
                        "ack_timeout_sec": envelope.ack_timeout_sec,
                        "context_ref": list(envelope.context_ref),
                        "payload": envelope.payload,
                        "envelope": envelope.raw,
                        "ssot_path": update.path,
                        "blob_sha": update.sha,
                        "ack_deadline": deadline,
                        "created_at": self.observed_at,
                        "ack_state": Message.AckState.PENDING if deadline else Message.AckState.NOT_REQUIRED,
                    }
                )
            except Exception as exc:
                self._refuse(update, exc)
                continue
            written.append(update)
            msg_ids.append(envelope.msg_id)
            if not envelope.requires_ack:
                no_ack.append(envelope.msg_id)
            if envelope.type == "escalation":
                escalations.append(envelope.msg_id)
            self._saw(envelope.sender, envelope.timestamp, "message")
            if envelope.type != "escalation":  # an escalation is about a message, not an answer to it
                for ref in envelope.context_ref:
                    self._refs.append((ref, envelope.sender, envelope.timestamp, envelope.msg_id))
        if not written:
            return
        states = dict(select_in(Message, "msg_id", msg_ids, ["ack_state"]))
        writer.write()
        self._ledger(written, kind=SsotFile.Kind.MESSAGE)
        self.counts["messages"] += len(written)
        # A changed message that no longer requires an ACK has no ACK state left (a new one starts so).
        not_required = Message.AckState.NOT_REQUIRED
        if stale := [msg_id for msg_id in no_ack if states.get(msg_id, not_required) != not_required]:
            Message.objects.filter(msg_id__in=stale).update(ack_state=not_required, acked_at=None)
        if acked := [msg_id for (msg_id,) in select_in(Ack, "msg_id", msg_ids)]:
            self._settle_acks(acked)
        if escalations:
            self._escalations(list(Message.objects.filter(msg_id__in=escalations)))
        fresh = [msg_id for msg_id in msg_ids if msg_id not in states]
        if self._room_for(len(fresh)):
            for message in Message.objects.filter(msg_id__in=fresh).only(*events.MESSAGE_SUMMARY_FIELDS):
                self._emit(events.message(message))

    def _escalations(self, messages: list[Message]) -> None:
        rows = []
        for message in messages:
            payload = message.payload
            rows.append(
                Escalation(
                    message_id=message.pk,
                    msg_id=message.msg_id,
                    task_id=message.task_id,
                    escalation_type=str(payload.get("escalation_type", ""))[:64],
                    severity=str(payload.get("severity", ""))[:16],
                    triggered_by=str(payload.get("triggered_by", ""))[:64],
                    description=str(payload.get("description", "")),
                    subject=escalation_subject(payload),
                    created_at=message.timestamp,
                )
            )
        existing = set(
            Escalation.objects.filter(msg_id__in=[m.msg_id for m in messages]).values_list(
                "msg_id", flat=True
            )
        )
        Escalation.objects.bulk_create(rows, ignore_conflicts=True)
        self._settle_escalations([m.msg_id for m in messages], announce=existing)
        self.counts["escalations"] += len(rows) - len(existing)

    def _acks(self, files: list[FileUpdate]) -> None:
        files = self._in_one_place(files, Ack)
        rows = []
        for update in files:
            try:
                doc = parse_ack(update.path, update.raw)
            except Exception as exc:
                self._refuse(update, exc)
                continue
            rows.append(
                Ack(
                    msg_id=doc.msg_id,
                    by=doc.by,
                    at=doc.at,
                    via=Ack.Via.FILE,
                    ssot_path=update.path,
                    blob_sha=update.sha,
                )
            )
            self._saw(doc.by, doc.at, "ack")
        if rows:
            Ack.objects.bulk_create(
                rows,
                batch_size=500,
                update_conflicts=True,
                unique_fields=["msg_id"],
                update_fields=["by", "at", "via", "ssot_path", "blob_sha", "source_msg_id"],
            )
            valid = {row.ssot_path for row in rows}
            self._ledger([f for f in files if f.path in valid], kind=SsotFile.Kind.ACK)
            self.counts["acks"] += len(rows)
            self._settle_acks([row.msg_id for row in rows])

    def _heartbeats(self, files: list[FileUpdate]) -> None:
        valid = []
        for update in files:
            try:
                doc = parse_heartbeat(update.path, update.raw)
            except Exception as exc:
                self._refuse(update, exc)
                continue
            valid.append(update)
            self._saw(doc.agent, doc.at, "heartbeat")
        self._ledger(valid, kind=SsotFile.Kind.HEARTBEAT)
        self.counts["heartbeats"] += len(valid)

    def _audit_files(self, files: list[FileUpdate]) -> None:
        for update in files:
            try:
                lines, errors = parse_audit(update.raw)
            except Exception as exc:
                self._refuse(update, exc)
                continue
            self.apply_audit_lines(update.path, lines)
            if errors:
                self._quarantine(update, errors, keep_ledger_kind=SsotFile.Kind.AUDIT)
            else:
                self._ledger([update], kind=SsotFile.Kind.AUDIT)

    def _approvals(self, files: list[FileUpdate]) -> None:
        valid = []
        task_ids: list[str] = []
        for update in files:
            try:
                doc = parse_approvals(update.path, update.raw)
            except Exception as exc:
                self._refuse(update, exc)
                continue
            TaskApprovals.objects.update_or_create(
                ssot_path=update.path,
                defaults={
                    "task_id": doc.task_id,
                    "task_blob_sha": doc.task_blob_sha,
                    "approvals": doc.approvals,
                    "blob_sha": update.sha,
                },
            )
            valid.append(update)
            task_ids.append(doc.task_id)
        self._ledger(valid, kind=SsotFile.Kind.APPROVALS)
        self.counts["approvals"] += len(valid)
        if not self.own_write:
            # What a task's row shows of its approvals ("1 of 2") changed, by a push.
            self._emit_tasks(task_ids)

    def _policy(self, files: list[FileUpdate]) -> None:
        for update in files:
            try:
                policy = parse_policy(update.raw, source=update.sha)
            except Exception as exc:
                # The previous valid policy (the row) stays in force; the file is quarantined.
                self._refuse(update, exc)
                continue
            ApprovalPolicy.objects.update_or_create(
                ssot_path=update.path, defaults={"document": policy.as_dict(), "blob_sha": update.sha}
            )
            self._ledger([update], kind=SsotFile.Kind.POLICY)
            self.counts["policy"] += 1
            self.reload = True

    def apply_audit_lines(self, path: str, lines: list) -> None:
        """Make the rows of audit file `path` equal these lines (append-only files add rows only)."""
        existing = dict(AuditEntry.objects.filter(ssot_path=path).values_list("line_no", "raw"))
        wanted = {line.line_no: line for line in lines}
        stale = [no for no, raw in existing.items() if no not in wanted or wanted[no].raw != raw]
        if stale:
            self._mark_rewritten(
                path, {no: "changed" if no in wanted else "removed" for no in stale if no is not None}
            )
        new = [line for no, line in wanted.items() if no not in existing or no in stale]
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    timestamp=line.timestamp,
                    actor=_storable(line.actor),
                    action=_storable(line.action),
                    task_id=_storable(line.task_id),
                    msg_id=_storable(line.msg_id),
                    detail=_storable(line.detail),
                    raw=line.raw,
                    in_ssot=True,
                    ssot_path=path,
                    line_no=line.line_no,
                )
                for line in new
            ],
            batch_size=500,
            ignore_conflicts=True,
        )
        self.counts["audit_lines"] += len(new)
        for line in new:
            if line.action in DECISION_ACTIONS and seal_holds(line.data):
                self._sealed.add((line.task_id, line.data["status"], line.data["task_sha"]))
        escalation_ids = [line.msg_id for line in new if line.action in ESCALATION_ACTIONS and line.msg_id]
        if escalation_ids:
            self._settle_escalations(escalation_ids)
        if new and self._room_for(len(new)):
            for entry in AuditEntry.objects.filter(
                ssot_path=path, line_no__in=[line.line_no for line in new]
            ):
                self._emit(events.audit(entry))

    # -- the record's integrity (SPEC section 4: the audit log is append-only; section 5) ----------

    def _mark_rewritten(self, path: str, how: dict[int, str]) -> None:
        """Keep the rows of audit lines a commit removed or changed, out of their file, marked with it."""
        if not how:
            return
        now = timezone.now()
        blame = self._blame(path, how)
        for (kind, (commit, author)), numbers in _grouped(how, blame).items():
            AuditEntry.objects.filter(ssot_path=path, line_no__in=numbers).update(
                ssot_path=None,
                line_no=None,
                rewritten_line=F("line_no"),
                rewritten_path=path,
                rewritten_how=kind,
                rewritten_at=now,
                rewritten_in=commit,
                rewritten_by=author,
            )
            log.warning(
                "commit %s by %s %s %d mirrored audit line(s) of %s: kept and marked",
                commit[:10],
                author or "?",
                kind,
                len(numbers),
                path,
            )
        self.counts["audit_rewritten"] += len(how)

    def _blame(self, path: str, how: dict[int, str]) -> dict[int, tuple[str, str]]:
        """The commit (and its author) that removed or changed each of these mirrored lines.

        A pass may span several pushes: the file's versions are read newest first (`Store.history`,
        `Store.file_at`), and the newest version that still holds a line as mirrored is the one before
        its rewrite, so the version after it made it. A line the history read does not settle (further
        back than it reaches, or unreadable), and every line when there is no history to read (the control
        plane's own write: the commit it was drafted on), takes the commit that last changed the file.
        """
        lines: dict[int, str] = {
            number: raw
            for number, raw in AuditEntry.objects.filter(ssot_path=path, line_no__in=how).values_list(
                "line_no", "raw"
            )
            if number is not None
        }
        found: dict[int, tuple[str, str]] = {}
        newer: Revision | None = None
        try:
            for revision, version in self._versions(path) if lines else ():
                held = _lines(version[1]) if version is not None else []
                for number, raw in lines.items():
                    intact = number <= len(held) and held[number - 1] == raw
                    if newer is not None and number not in found and intact:
                        found[number] = _by(newer)
                if len(found) == len(lines):
                    break
                newer = revision
        except StoreError as exc:
            log.warning("the history of %s is unknown, its rewrites blamed on its last change: %s", path, exc)
        return {number: found.get(number) or self.source(path) for number in how}

    def _versions(self, path: str) -> Iterator[tuple[Revision, tuple[str, bytes] | None]]:
        """The commits that changed `path`, newest first from the head this pass mirrors, each with the
        file's blob SHA and content there (None: deleted). None at all where there is no history to read
        (the control plane's own write). A store's failure goes to the caller."""
        if not self.by_history or self.store is None:
            return
        for revision in self.store.history(path, start=self.commit or None):
            yield revision, self.store.file_at(revision.commit, path)

    def _note_decisions(self, before: dict[str, Prior], statuses: list[tuple[str, str, str]]) -> None:
        """Remember the tasks with a new version in a decided status; one that leaves it loses its flag."""
        left = []
        for task_id, status, sha in statuses:
            if status in DECIDED:
                prior = before.get(task_id)
                if prior is None or (prior.status, prior.sha) != (status, sha):
                    self._decided.append(Decided(task_id, status, sha, prior))
            else:
                left.append(task_id)
        if left:
            Task.objects.filter(task_id__in=left, decision_unverified=True).update(
                decision_unverified=False, decision_unverified_in="", decision_unverified_by=""
            )

    def _settle_decisions(self) -> None:
        """Flag each decision of this pass that no sealed decision line of the control plane vouches for.

        A sealed line names the very version the control plane decided. A task edited since in the same
        status (an agent adds its pull request to an approved task) is still vouched for by it; one that
        left the status and came back (a pass can span several pushes, and a rebuild spans them all) needs
        a seal of its own. So a version no seal names is traced back through the file's history (`_trace`).
        """
        decided, self._decided = self._decided, []
        if not decided:
            return
        sealed = set(self._sealed)
        # Lines mirrored before this pass (a full sync re-reads only what changed) vouch as well.
        for entry in AuditEntry.objects.filter(
            task_id__in={d.task_id for d in decided},
            action__in=DECISION_ACTIONS,
            rewritten_at__isnull=True,
        ).only("raw"):
            data = amp.loads(entry.raw)
            if seal_holds(data):
                sealed.add((data["task_id"], data["status"], data["task_sha"]))
        verified: list[str] = []
        unverified: list[tuple[str, tuple[str, str]]] = []
        for d in decided:
            found = Traced.VOUCHED if (d.task_id, d.status, d.sha) in sealed else self._trace(d, sealed)
            if found is Traced.VOUCHED:
                verified.append(d.task_id)
            elif isinstance(found, tuple):
                unverified.append((d.task_id, found))
        if verified:
            Task.objects.filter(task_id__in=verified, decision_unverified=True).update(
                decision_unverified=False, decision_unverified_in="", decision_unverified_by=""
            )
        for task_id, (commit, author) in unverified:
            Task.objects.filter(task_id=task_id).update(
                decision_unverified=True, decision_unverified_in=commit, decision_unverified_by=author
            )
            log.warning(
                "commit %s by %s decided %s without the control plane: flagged decision_unverified",
                commit[:10],
                author or "?",
                task_id,
            )
        self._emit_tasks([task_id for task_id, _ in unverified])

    def _trace(self, d: Decided, sealed: set[tuple[str, str, str]]) -> Traced | tuple[str, str]:
        """Where a decided version no seal names comes from: `Traced.VOUCHED` (a sealed version of the
        same status precedes it with no other status between), `Traced.UNCHANGED` (it follows the version
        mirrored before, in the same status: that version's verdict stands), or the commit and author
        that decided it without the control plane.

        The task file's versions are read newest first (`Store.history`: at most HISTORY_LIMIT versions,
        and on the local store within its last HISTORY_SCAN commits; on GitHub one request for the list
        and one per version not cached: `Store.file_at`). The decision is the oldest version of the
        newest run in this status. Where the history cannot tell (the run reaches past what was read,
        the history cannot be read, or the control plane's own write: one commit, no store), the rule
        before this one holds: an edit in the status the row already had keeps its verdict; a task new
        to a mirror rebuilt from nothing is vouched for by any sealed line of its task and status; any
        other decision is flagged.
        """
        path = task_path(d.task_id)
        same_run = d.prior is not None and d.prior.status == d.status

        def unknown(oldest_seen: Revision | None = None) -> Traced | tuple[str, str]:
            if same_run:
                return Traced.UNCHANGED
            rebuilt = d.prior is None and not self.live
            if rebuilt and any(task_id == d.task_id and status == d.status for task_id, status, _ in sealed):
                return Traced.VOUCHED
            if oldest_seen is not None:  # the run began there, or before
                return _by(oldest_seen)
            return self.source(path)

        entered: Revision | None = None
        try:
            for revision, found in self._versions(path):
                if found is None:
                    break  # deleted before: the task came back decided at `entered`
                sha, data = found
                if (d.task_id, d.status, sha) in sealed:
                    return Traced.VOUCHED
                if same_run and d.prior is not None and sha == d.prior.sha:
                    return Traced.UNCHANGED
                try:
                    status = load_json_object(data).get("status")
                except ValueError:
                    status = None  # unreadable then: not a decided task
                if status != d.status:
                    break
                entered = revision
            else:
                return unknown(entered)  # the run in this status reaches the file's first version, or past
        except StoreError as exc:
            # Not raised: the rows of this pass are in, and the next pass would not see this change again.
            log.warning("the history of %s is unknown, its decision judged without it: %s", path, exc)
            return unknown()
        return _by(entered) if entered is not None else self.source(path)

    # -- settling -----------------------------------------------------------------------------

    def _settle_acks(self, msg_ids: list[str]) -> None:
        """Mark pending messages acknowledged where an ACK by their addressee exists."""
        acks = {ack.msg_id: ack for ack in Ack.objects.filter(msg_id__in=msg_ids)}
        if not acks:
            return
        settled = []
        for message in Message.objects.filter(msg_id__in=list(acks), requires_ack=True).exclude(
            ack_state=Message.AckState.ACKED
        ):
            ack = acks[message.msg_id]
            if ack.by != message.recipient:
                log.warning(
                    "ack of %s by %s ignored: the addressee is %s", ack.msg_id, ack.by, message.recipient
                )
                continue
            message.ack_state = Message.AckState.ACKED
            message.acked_at = ack.at
            settled.append(message)
            self._emit(events.ack(ack))
        Message.objects.bulk_update(settled, ["ack_state", "acked_at"], batch_size=500)

    def _settle_context_refs(self) -> None:
        """A later message from the addressee whose context_ref names a message acknowledges it."""
        refs, self._refs = self._refs, []
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            pending = {
                m.msg_id: m
                for m in Message.objects.filter(
                    msg_id__in={ref for ref, *_ in chunk}, requires_ack=True
                ).exclude(ack_state=Message.AckState.ACKED)
            }
            rows = [
                Ack(msg_id=ref, by=sender, at=at, via=Ack.Via.CONTEXT_REF, source_msg_id=source)
                for ref, sender, at, source in chunk
                if ref in pending and pending[ref].recipient == sender
            ]
            if rows:
                Ack.objects.bulk_create(rows, ignore_conflicts=True)
                self._settle_acks([row.msg_id for row in rows])

    def _settle_escalations(self, msg_ids: list[str], announce: set[str] | None = None) -> None:
        """Derive each escalation's state from the audit lines that acknowledged or resolved it."""
        lines = AuditEntry.objects.filter(msg_id__in=msg_ids, action__in=ESCALATION_ACTIONS).order_by(
            "timestamp", "id"
        )
        updates: dict[str, dict[str, Any]] = {}
        for line in lines:
            change = updates.setdefault(line.msg_id, {})
            if line.action == "escalation_acknowledged":
                change.update(acknowledged_by=line.actor, acknowledged_at=line.timestamp)
                change.setdefault("status", Escalation.Status.ACKNOWLEDGED)
            else:
                change.update(
                    status=Escalation.Status.RESOLVED,
                    resolved_by=line.actor,
                    resolved_at=line.timestamp,
                    resolution=line.detail,
                )
        for escalation in Escalation.objects.filter(msg_id__in=msg_ids):
            change = updates.get(escalation.msg_id, {})
            dirty = [name for name, value in change.items() if getattr(escalation, name) != value]
            for name in dirty:
                setattr(escalation, name, change[name])
            if dirty:
                escalation.save(update_fields=dirty)
            if dirty or (announce is not None and escalation.msg_id not in announce):
                self._emit(events.escalation(escalation))

    # -- bookkeeping --------------------------------------------------------------------------

    def _saw(self, agent: str, at: datetime, via: str) -> None:
        at = min(at, self.observed_at)
        current = self.seen.get(agent)
        if current is None or at > current[0]:
            self.seen[agent] = (at, via)

    def _record_seen(self) -> None:
        seen = {name: value for name, value in self.seen.items() if name in settings.AGENTS}
        if not seen:
            return
        known = {name for (name,) in select_in(Agent, "name", list(seen))}
        if missing := [name for name in seen if name not in known]:
            Agent.objects.bulk_create([Agent(name=name) for name in missing], ignore_conflicts=True)
        # A later time already recorded (by another pass) stays.
        advance(
            Agent,
            key="name",
            when="last_seen",
            rows=[(name, at, {"last_seen_via": via}) for name, (at, via) in seen.items()],
        )

    def _ledger(self, files: list[FileUpdate], *, kind: str) -> None:
        """Record these files, mirrored into their rows, as valid at their blob SHA."""
        writer = Upsert(SsotFile, unique="path", keep=("path",))
        for f in files:
            writer.add({"path": f.path, "kind": kind, "blob_sha": f.sha, "quarantined": False})
        writer.write()
        if quarantined := [path for (path,) in select_in(QuarantinedFile, "path", [f.path for f in files])]:
            QuarantinedFile.objects.filter(path__in=quarantined).delete()

    def _in_one_place(self, files: list[FileUpdate], model: type[Message] | type[Ack]) -> list[FileUpdate]:
        """The files whose id (their name) is nowhere else: message and ack files may sit in dated
        sub-folders (SPEC section 4), and an id found at two paths is quarantined in both places.

        The other place may be a file of this pass or a row mirrored before; the row's file is
        quarantined with its content read from the SSOT by its blob SHA (`_verbatim`).
        """
        by_id: dict[str, list[FileUpdate]] = {}
        for update in files:
            by_id.setdefault(stem(update.path), []).append(update)
        paths = {update.path for update in files}
        # The ids' rows at another path: read in full only when there are any (new files have none).
        moved = [
            msg_id
            for msg_id, at in select_in(model, "msg_id", list(by_id), ["ssot_path"])
            if at and at not in paths
        ]
        elsewhere = {row.msg_id: row for row in model.objects.filter(msg_id__in=moved)} if moved else {}
        kept: list[FileUpdate] = []
        for msg_id, updates in by_id.items():
            row = elsewhere.get(msg_id)
            places = list(updates)
            if row is not None and row.ssot_path:
                places.append(FileUpdate(row.ssot_path, updates[0].kind, row.blob_sha, self._verbatim(row)))
            if len(places) == 1:
                kept.extend(updates)
                continue
            for place in places:
                others = ", ".join(other.path for other in places if other.path != place.path)
                message = f"the id {msg_id} is also at {others}: one file per id"
                self._quarantine(place, [{"path": "$", "message": message}])
        return kept

    def _verbatim(self, row: Message | Ack) -> bytes:
        """A mirrored row's file as it is in the SSOT (its blob); rebuilt from the row only where the
        store is not at hand (the control plane's own write) or cannot serve the blob (logged): those
        bytes are what the row holds, not necessarily the file's."""
        if self.store is not None:
            try:
                return self.store.read(row.blob_sha)
            except StoreError as exc:
                log.warning(
                    "blob %s of %s is unreadable, kept as rebuilt from its row: %s",
                    row.blob_sha,
                    row.ssot_path,
                    exc,
                )
        return _rebuilt(row)

    def _refuse(self, update: FileUpdate, exc: Exception) -> None:
        """Quarantine a file that failed to be read, checked or converted; a database error goes up."""
        if isinstance(exc, FileInvalid):
            self._quarantine(update, exc.errors)
            return
        if isinstance(exc, DatabaseError):
            raise exc
        # Not a refusal the parsers foresaw: quarantined all the same, and logged with its traceback.
        log.exception("%s could not be converted into rows; quarantined", update.path)
        self._quarantine(update, [{"path": "$", "message": f"could not be converted: {describe(exc)}"}])

    def _quarantine(
        self, update: FileUpdate, errors: list[dict[str, str]], *, keep_ledger_kind: str | None = None
    ) -> None:
        """Keep an invalid file verbatim with its errors; its stale row (if any) goes."""
        # Already quarantined at this blob (a full resync reads quarantined files again): not news.
        known = QuarantinedFile.objects.filter(path=update.path, blob_sha=update.sha).exists()
        now = timezone.now()
        QuarantinedFile.objects.bulk_create(
            [
                QuarantinedFile(
                    path=update.path,
                    kind=update.kind,
                    blob_sha=update.sha,
                    raw=update.raw,
                    errors=errors,
                    first_seen=now,
                    last_seen=now,
                )
            ],
            update_conflicts=True,
            unique_fields=["path"],
            update_fields=["kind", "blob_sha", "raw", "errors", "last_seen"],
        )
        SsotFile.objects.bulk_create(
            [SsotFile(path=update.path, kind=update.kind, blob_sha=update.sha, quarantined=True)],
            update_conflicts=True,
            unique_fields=["path"],
            update_fields=["kind", "blob_sha", "quarantined"],
        )
        if keep_ledger_kind is None:
            if update.kind == SsotFile.Kind.TASK:
                Task.objects.filter(ssot_path=update.path).delete()
            elif update.kind == SsotFile.Kind.MESSAGE:
                Message.objects.filter(ssot_path=update.path).delete()
            elif update.kind == SsotFile.Kind.ACK:
                Ack.objects.filter(ssot_path=update.path).delete()
            elif update.kind == SsotFile.Kind.APPROVALS:
                TaskApprovals.objects.filter(ssot_path=update.path).delete()
        if not known:
            self.quarantined.append((update.path, errors))
            self.counts["quarantined"] += 1

    def _mark(self) -> _Mark:
        return _Mark(
            events=len(self.events),
            quarantined=len(self.quarantined),
            refs=len(self._refs),
            changed_rows=self._changed_rows,
            counts=self.counts.copy(),
            seen=dict(self.seen),
            reload=self.reload,
        )

    def _restore(self, mark: _Mark) -> None:
        """Forget what an attempt whose writes were rolled back collected."""
        del self.events[mark.events :]
        del self.quarantined[mark.quarantined :]
        del self._refs[mark.refs :]
        self._changed_rows = mark.changed_rows
        self.counts = mark.counts
        self.seen = mark.seen
        self.reload = mark.reload

    def _room_for(self, rows: int) -> bool:
        self._changed_rows += rows
        return self._changed_rows <= EVENTS_PER_BATCH

    def _emit(self, *new_events: dict[str, Any]) -> None:
        self.events.extend(new_events)

    def _emit_tasks(self, task_ids: list[str]) -> None:
        """A `task_update` for each of these tasks as it is now (its approvals counted, for all of them at
        once), while events per row fit in this pass."""
        if not task_ids or not self._room_for(len(task_ids)):
            return
        tasks = list(Task.objects.filter(task_id__in=task_ids))
        counts = approval_counts(tasks)
        self._emit(*(events.task_update(task, counts) for task in tasks))

    @property
    def overflowed(self) -> bool:
        """Too many changes for one event each: clients should reload their snapshot."""
        return self._changed_rows > EVENTS_PER_BATCH
