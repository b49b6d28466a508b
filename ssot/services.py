"""The one write path (SPEC sections 4-5): validate -> commit to the SSOT -> mirror the rows -> broadcast.

Every change an admin, an agent, a monitor or a command makes goes through a function here. A change
is one git commit (its audit line included), made with the head it was computed on as the expected
parent; on a conflict the rule is re-checked on the new head, a bounded number of times. The rows are
then updated through the same `Mirror` the sync uses, and events go out after the DB commit. If the
SSOT write fails nothing changes; if the ORM step fails after the commit, the next sync repairs it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

import amp
from ssot import events
from ssot.documents import FileInvalid, dump_json, parse_message, parse_task
from ssot.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReasonRequired,
    SsotUnavailable,
    StaleSha,
    WrongState,
)
from ssot.locking import flush_lock, mirror_lock, write_lock
from ssot.mirror import FileUpdate, Mirror
from ssot.models import AuditEntry, Escalation, SsotFile, SyncState, Task
from ssot.paths import ack_path, audit_day_path, heartbeat_path, kind_of, message_path, task_path
from ssot.stores.base import Store, StoreConflict, StoreError, git_blob_sha
from ssot.stores.factory import get_store
from ssot.sync import sync_state

log = logging.getLogger(__name__)

MAX_REASON = 4000
MAX_STATUS = 64


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
        return (sha, self.store.read(sha)) if sha else None

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


def audit_line(
    *,
    actor: str,
    action: str,
    task_id: str = "",
    msg_id: str = "",
    detail: str = "",
    extra: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> tuple[datetime, str]:
    """An audit line as the SSOT keeps it: (its time, its exact JSON text)."""
    when = when or timezone.now()
    line = {
        "timestamp": when.isoformat(),
        "actor": actor,
        "action": action,
        "task_id": task_id,
        "msg_id": msg_id,
        "detail": detail,
        **(extra or {}),
    }
    return when, json.dumps(line, ensure_ascii=False)


def _append(content: bytes, lines: list[str]) -> tuple[bytes, int]:
    """Append lines to an audit file; returns the new content and the number of the first new line."""
    text = content.decode("utf-8", errors="surrogateescape")
    if text and not text.endswith("\n"):
        text += "\n"
    first = len(text.splitlines()) + 1
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


def _write(
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
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
            continue
        except StoreError as exc:
            raise SsotUnavailable(f"SSOT unavailable: {exc}") from exc
        files = [
            FileUpdate(path=path, kind=kind, sha=git_blob_sha(data), raw=data)
            for path, data in writes.items()
            if (kind := kind_of(path)) is not None
        ]
        return Committed(
            head=new_head, parent=head, files=files, deletes=list(draft.deletes), audit_lines=audit_lines
        )
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


# -- admin decisions (SPEC section 5) ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    task_id: str
    status: str
    prev_status: str
    blob_sha: str
    document: dict[str, Any]


def _reason(reason: str | None, *, required: bool, action: str) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ReasonRequired(f"A reason is required to {action} a task.")
    if len(reason) > MAX_REASON:
        raise Invalid(
            f"The reason is too long ({len(reason)} characters; at most {MAX_REASON}).",
            [{"path": "reason", "message": f"at most {MAX_REASON} characters"}],
        )
    return reason


def _decide(
    *,
    kind: str,
    task_id: str,
    actor: str,
    expected_sha: str | None,
    apply: Callable[[dict[str, Any]], str],
    verb: str,
) -> Decision:
    if not amp.is_safe_id(task_id):
        raise NotFound(f"No task {task_id[:80]!r}.")
    path = task_path(task_id)
    outcome: dict[str, Any] = {}

    def build(view: HeadView) -> Draft:
        found = view.read(path)
        if found is None:
            raise NotFound(f"No task {task_id!r} in the SSOT.")
        sha, raw = found
        if expected_sha and expected_sha != sha:
            raise StaleSha(
                f"Task {task_id} changed since it was shown (expected blob {expected_sha[:10]}, "
                f"now {sha[:10]}); look at it again before deciding."
            )
        try:
            document = parse_task(path, raw).document
        except FileInvalid as exc:
            raise Conflict(
                f"Task {task_id} is quarantined in the SSOT ({exc}); it cannot be decided on."
            ) from None
        prev_status = document["status"]
        detail = apply(document)
        data = dump_json(document)
        outcome.update(prev_status=prev_status, document=document, blob_sha=git_blob_sha(data))
        return Draft(
            message=f"{verb} {task_id} by {actor}",
            writes={path: data},
            audit=[
                audit_line(
                    actor=actor,
                    action=kind,
                    task_id=task_id,
                    detail=detail,
                    extra={"prev_status": prev_status, "status": document["status"]},
                )
            ],
        )

    _write(build, author=actor)
    decision = Decision(
        task_id=task_id,
        status=outcome["document"]["status"],
        prev_status=outcome["prev_status"],
        blob_sha=outcome["blob_sha"],
        document=outcome["document"],
    )
    task = Task.objects.filter(task_id=task_id).first()
    if task is not None:
        event_kind = {"approved": "task_approved", "rejected": "task_rejected"}.get(kind, "task_override")
        reason = str(
            outcome["document"].get(
                {"approved": "approval_reason", "rejected": "rejection_reason"}.get(kind, "override_reason"),
                "",
            )
        )
        events.broadcast_on_commit(
            events.task_decision(
                event_kind, task, actor=actor, reason=reason, prev_status=decision.prev_status
            )
        )
    log.info("task %s %s by %s (was %s)", task_id, kind, actor, decision.prev_status)
    return decision


def _awaiting(document: dict[str, Any], action: str) -> None:
    if document["status"] != Task.AWAITING_APPROVAL:
        raise WrongState(
            f"Task {document['task_id']} is {document['status']!r}, not awaiting_approval; "
            f"it cannot be {action}."
        )


def task_approve(*, task_id: str, actor: str, reason: str = "", expected_sha: str | None = None) -> Decision:
    """Approve a task awaiting approval; the reason is an optional note to the agent."""
    reason = _reason(reason, required=False, action="approve")

    def apply(document: dict[str, Any]) -> str:
        _awaiting(document, "approved")
        document.update(
            status="approved",
            approved_by=actor,
            approved_at=timezone.now().isoformat(),
            approval_reason=reason,
            last_writer="admin",
        )
        return reason

    return _decide(
        kind="approved", task_id=task_id, actor=actor, expected_sha=expected_sha, apply=apply, verb="approve"
    )


def task_reject(*, task_id: str, actor: str, reason: str, expected_sha: str | None = None) -> Decision:
    """Reject a task awaiting approval, with a reason; its reject_count goes up by one."""
    reason = _reason(reason, required=True, action="reject")

    def apply(document: dict[str, Any]) -> str:
        _awaiting(document, "rejected")
        count = document.get("reject_count") or 0
        document.update(
            status="rejected",
            rejected_by=actor,
            rejected_at=timezone.now().isoformat(),
            rejection_reason=reason,
            reject_count=count + 1,
            last_writer="admin",
        )
        return reason

    return _decide(
        kind="rejected", task_id=task_id, actor=actor, expected_sha=expected_sha, apply=apply, verb="reject"
    )


def task_override(
    *, task_id: str, actor: str, reason: str, status: str | None = None, expected_sha: str | None = None
) -> Decision:
    """Force a task's status from any state, with a reason; the previous status is kept in prev_status."""
    reason = _reason(reason, required=True, action="override")
    status = (status or "override").strip()
    if not status or len(status) > MAX_STATUS:
        raise Invalid(
            "The target status must be a non-empty string of at most 64 characters.",
            [{"path": "status", "message": "a non-empty string of at most 64 characters"}],
        )

    def apply(document: dict[str, Any]) -> str:
        document.update(
            prev_status=document["status"],
            status=status,
            override_by=actor,
            override_at=timezone.now().isoformat(),
            override_reason=reason,
            last_writer="admin",
        )
        return reason

    return _decide(
        kind="override", task_id=task_id, actor=actor, expected_sha=expected_sha, apply=apply, verb="override"
    )


# -- agents' messages, acks and heartbeats ------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """The outcome of an idempotent write: what stands in the SSOT, and whether this call wrote it."""

    id: str
    document: dict[str, Any]
    created: bool


def _invalid_message(raw: object, exc: amp.AmpValidationError, sender: str) -> Invalid:
    errors = [{"path": v.path, "message": v.message} for v in exc.errors]
    msg_id = raw.get("msg_id") if isinstance(raw, dict) else None
    audit_queue(
        actor=sender,
        action="message_rejected",
        msg_id=str(msg_id or "")[:128],
        detail="; ".join(f"{e['path']}: {e['message']}" for e in errors)[:2000],
    )
    return Invalid("Not a valid AMP/1.0 message.", errors)


def message_create(*, raw: object, sender: str) -> Written:
    """Write an AMP/1.0 message an agent sends as itself; an identical resend writes nothing."""
    try:
        envelope = amp.validate(raw)
    except amp.AmpValidationError as exc:
        raise _invalid_message(raw, exc, sender) from None
    if envelope.sender != sender:
        raise Forbidden(f"You are {sender!r}; a message from {envelope.sender!r} must be sent by that agent.")
    return _write_message(envelope, author=sender)


def _write_message(envelope: amp.Envelope, *, author: str, audit: list[tuple[datetime, str]] = ()) -> Written:
    canonical = envelope.to_dict()
    path = message_path(envelope.msg_id)

    def build(view: HeadView) -> Draft | None:
        found = view.read(path)
        if found is not None:
            try:
                existing = parse_message(path, found[1]).to_dict()
            except FileInvalid:
                raise Conflict(f"Message {envelope.msg_id} exists in the SSOT (quarantined).") from None
            if existing != canonical:
                raise Conflict(f"Message {envelope.msg_id} already exists with other content.")
            return None
        return Draft(
            message=f"{envelope.type} {envelope.msg_id} from {envelope.sender}",
            writes={path: dump_json(canonical)},
            audit=list(audit),
        )

    committed = _write(build, author=author)
    return Written(id=envelope.msg_id, document=canonical, created=committed is not None)


def message_ack(*, msg_id: str, by: str) -> Written:
    """The addressee acknowledges a message (writes acks/{msg_id}.json); a second ACK writes nothing."""
    if not amp.is_safe_id(msg_id):
        raise NotFound(f"No message {msg_id[:80]!r}.")
    outcome: dict[str, Any] = {}

    def build(view: HeadView) -> Draft | None:
        found = view.read(message_path(msg_id))
        if found is None:
            raise NotFound(f"No message {msg_id!r} in the SSOT.")
        try:
            envelope = parse_message(message_path(msg_id), found[1])
        except FileInvalid:
            raise Conflict(f"Message {msg_id} is quarantined; it cannot be acknowledged.") from None
        if envelope.recipient != by:
            raise Forbidden(f"Only the addressee ({envelope.recipient}) can acknowledge {msg_id}.")
        existing = view.read(ack_path(msg_id))
        if existing is not None:
            outcome["document"] = json.loads(existing[1])
            return None
        document = {"msg_id": msg_id, "by": by, "at": timezone.now().isoformat()}
        outcome["document"] = document
        return Draft(message=f"ack {msg_id} by {by}", writes={ack_path(msg_id): dump_json(document)})

    committed = _write(build, author=by)
    return Written(id=msg_id, document=outcome["document"], created=committed is not None)


def agent_heartbeat(*, agent: str) -> Written:
    """An agent's explicit heartbeat: heartbeats/{agent}.json with the time."""
    if not amp.is_safe_id(agent):
        raise NotFound(f"No agent {agent[:80]!r}.")
    document = {"agent": agent, "at": timezone.now().isoformat()}

    def build(view: HeadView) -> Draft:
        return Draft(message=f"heartbeat {agent}", writes={heartbeat_path(agent): dump_json(document)})

    _write(build, author=agent)
    return Written(id=agent, document=document, created=True)


# -- escalations --------------------------------------------------------------------------------------


def escalation_raise(*, envelope: dict[str, Any], actor: str = "system") -> Written:
    """Write an escalation message (built with amp.build_escalation) and its audit line in one commit.

    Idempotent on msg_id: the monitors derive it from the episode, so a retry never writes a second one.
    """
    try:
        parsed = amp.validate(envelope)
    except amp.AmpValidationError as exc:
        raise Invalid(
            "Not a valid escalation.", [{"path": v.path, "message": v.message} for v in exc.errors]
        ) from None
    if parsed.type != "escalation":
        raise Invalid("Not an escalation.", [{"path": "type", "message": "must be escalation"}])
    line = audit_line(
        actor=actor,
        action="escalation",
        task_id=parsed.task_id,
        msg_id=parsed.msg_id,
        detail=str(parsed.payload.get("description", ""))[:2000],
        extra={"escalation_type": parsed.payload.get("escalation_type")},
    )
    return _write_message(parsed, author=actor, audit=[line])


def _escalation(escalation_id: int | str) -> Escalation:
    key = str(escalation_id)
    # Only ASCII digits are a pk, only a path-safe id a msg_id: anything else (a NUL byte, which
    # PostgreSQL refuses in a query, or "²") is simply unknown.
    escalation = Escalation.objects.filter(pk=key).first() if key.isascii() and key.isdigit() else None
    if escalation is None and amp.is_safe_id(key):
        escalation = Escalation.objects.filter(msg_id=key).first()
    if escalation is None:
        raise NotFound(f"No escalation {str(escalation_id)[:80]!r}.")
    return escalation


def _escalation_change(
    escalation_id: int | str, *, actor: str, action: str, detail: str, allowed: tuple[str, ...]
) -> Escalation:
    msg_id = _escalation(escalation_id).msg_id

    def build(view: HeadView) -> Draft:
        current = Escalation.objects.get(msg_id=msg_id)
        if current.status not in allowed:
            raise WrongState(f"Escalation {msg_id} is {current.status}.")
        return Draft(
            message=f"{action} {msg_id} by {actor}",
            audit=[
                audit_line(actor=actor, action=action, task_id=current.task_id, msg_id=msg_id, detail=detail)
            ],
        )

    _write(build, author=actor)
    return Escalation.objects.get(msg_id=msg_id)


def escalation_acknowledge(*, escalation_id: int | str, actor: str) -> Escalation:
    """An admin has seen an open escalation."""
    return _escalation_change(
        escalation_id,
        actor=actor,
        action="escalation_acknowledged",
        detail="",
        allowed=(Escalation.Status.OPEN,),
    )


def escalation_resolve(*, escalation_id: int | str, actor: str, reason: str) -> Escalation:
    """Close an escalation with a reason."""
    reason = _reason(reason, required=True, action="resolve")
    return _escalation_change(
        escalation_id,
        actor=actor,
        action="escalation_resolved",
        detail=reason,
        allowed=(Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED),
    )


# -- the audit log --------------------------------------------------------------------------------------


def audit_queue(
    *,
    actor: str,
    action: str,
    task_id: str = "",
    msg_id: str = "",
    detail: str = "",
    extra: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record an audit line with no state change of its own; `audit_flush` commits the queue in one go."""
    when, raw = audit_line(
        actor=actor, action=action, task_id=task_id, msg_id=msg_id, detail=detail, extra=extra
    )
    entry = AuditEntry.objects.create(
        timestamp=when,
        actor=actor[:150],
        action=action[:64],
        task_id=task_id[:128],
        msg_id=msg_id[:128],
        detail=detail,
        raw=raw,
        in_ssot=False,
    )
    events.broadcast_on_commit(events.audit(entry))
    return entry


def audit_flush(*, limit: int = 5000) -> int:
    """Commit queued audit lines to the SSOT in one commit; returns how many were written."""
    with flush_lock():
        entries = list(AuditEntry.objects.filter(in_ssot=False).order_by("timestamp", "id")[:limit])
        if not entries:
            return 0

        def build(view: HeadView) -> Draft:
            return Draft(
                message=f"audit: {len(entries)} lines", audit=[(e.timestamp, e.raw) for e in entries]
            )

        def claim(committed: Committed) -> None:
            # The queued rows become the committed lines (a sync may have mirrored copies: drop those).
            for entry, (path, line_no) in zip(entries, committed.audit_lines, strict=True):
                AuditEntry.objects.filter(ssot_path=path, line_no=line_no).exclude(pk=entry.pk).delete()
                entry.in_ssot, entry.ssot_path, entry.line_no = True, path, line_no
            AuditEntry.objects.bulk_update(entries, ["in_ssot", "ssot_path", "line_no"], batch_size=500)

        _write(build, author="system", before_mirror=claim)
        return len(entries)
