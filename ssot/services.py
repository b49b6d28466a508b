"""The one write path (SPEC sections 4-5): validate -> commit to the SSOT -> mirror the rows -> broadcast.

Every change an admin, an agent, a monitor or a command makes goes through a function here; each drafts
its files and audit lines and hands them to `ssot.writing.write`, which makes them one git commit on the
head they were computed on, re-drafting on a conflict. If the SSOT write fails nothing changes; if the
ORM step fails after the commit, the next sync repairs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

import amp
from core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReasonRequired,
    StaleSha,
    WrongState,
)
from ssot import events
from ssot.audit import audit_line, audit_queue
from ssot.documents import FileInvalid, dump_json, parse_ack, parse_approvals, parse_message, parse_task
from ssot.locking import flush_lock
from ssot.models import Ack, AuditEntry, Escalation, Message, RiskLevel, Task
from ssot.paths import (
    POLICY_PATH,
    ack_path,
    approvals_path,
    dated_message_path,
    heartbeat_path,
    message_path,
    task_path,
)
from ssot.policy import (
    BUILT_IN_POLICY,
    Policy,
    approve_refusal,
    decide_refusal,
    parse_policy,
    policy_in_force,
    split_approvals,
)
from ssot.seals import approval_seal, approval_sealed, decision_seal
from ssot.stores.base import git_blob_sha
from ssot.writing import Committed, Draft, HeadView, Reads, write

log = logging.getLogger(__name__)

MAX_REASON = 4000
MAX_STATUS = 64


# -- admin decisions (SPEC section 5) ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What an approve, reject or override left: with M-of-N, an approval below the count leaves the task
    awaiting approval (`have` < `need`)."""

    task_id: str
    status: str
    prev_status: str
    blob_sha: str
    document: dict[str, Any]
    have: int = 0
    need: int = 0


@dataclass
class _Step:
    """What one decision does to the task it read: the audit action and detail, and whether the task
    file itself changes (a partial approval writes only `approvals/{task_id}.json`)."""

    action: str
    detail: str
    writes: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    task_changed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    have: int = 0
    need: int = 0


@dataclass(frozen=True)
class _Read:
    """The task at the head a decision is drafted on."""

    sha: str
    document: dict[str, Any]
    view: HeadView


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


def _user(actor: str) -> Any:
    """The account deciding; the policy's rules are about accounts, so an unknown name may not decide."""
    return get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: actor}).first()


def _policy_at(view: HeadView) -> Policy:
    """The policy at the head a decision is drafted on; an invalid file leaves the previous one in force."""
    sha = view.sha(POLICY_PATH)
    if sha is None:
        return BUILT_IN_POLICY
    in_force = policy_in_force()
    if in_force.source == sha:
        return in_force
    found = view.read(POLICY_PATH)
    if found is None:
        return in_force
    try:
        return parse_policy(found[1], source=sha)
    except FileInvalid:
        return in_force


def _pending(view: HeadView, task_id: str, task_sha: str) -> tuple[bool, list[dict[str, Any]]]:
    """Whether `approvals/{task_id}.json` exists, and the approvals it holds for this task version
    (approvals of another version are void; an invalid file counts nothing)."""
    path = approvals_path(task_id)
    found = view.read(path)
    if found is None:
        return False, []
    try:
        pending = parse_approvals(path, found[1])
    except FileInvalid:
        return True, []
    return True, pending.approvals if pending.task_blob_sha == task_sha else []


def _seal(task_id: str, action: str, status: str, task_sha: str) -> dict[str, str]:
    """The fields that bind a decision line to the task version it wrote (ssot.seals.decision_seal)."""
    seal = decision_seal(task_id=task_id, action=action, status=status, task_sha=task_sha)
    return {"task_sha": task_sha, "seal": seal}


def _decide(
    *,
    kind: str,
    task_id: str,
    actor: str,
    expected_sha: str | None,
    apply: Callable[[_Read], _Step],
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
        step = apply(_Read(sha=sha, document=document, view=view))
        writes = dict(step.writes)
        if step.task_changed:
            data = dump_json(document)
            writes[path] = data
            sha = git_blob_sha(data)
        outcome.update(prev_status=prev_status, document=document, blob_sha=sha, step=step)
        return Draft(
            message=f"{verb} {task_id} by {actor}",
            writes=writes,
            deletes=step.deletes,
            audit=[
                audit_line(
                    actor=actor,
                    action=step.action,
                    task_id=task_id,
                    detail=step.detail,
                    extra={
                        "prev_status": prev_status,
                        "status": document["status"],
                        **step.extra,
                        # The proof that the task's new version was decided here (ssot.mirror checks it).
                        **(_seal(task_id, step.action, document["status"], sha) if step.task_changed else {}),
                    },
                )
            ],
        )

    # The task, its pending approvals and the policy: what a decision's draft reads (_policy_at, _pending).
    write(build, author=actor, reads=Reads(paths=(path, approvals_path(task_id), POLICY_PATH)))
    step: _Step = outcome["step"]
    decision = Decision(
        task_id=task_id,
        status=outcome["document"]["status"],
        prev_status=outcome["prev_status"],
        blob_sha=outcome["blob_sha"],
        document=outcome["document"],
        have=step.have,
        need=step.need,
    )
    if not step.task_changed:
        events.broadcast_on_commit(
            events.approval_progress(
                task_id=task_id, blob_sha=decision.blob_sha, have=step.have, need=step.need, by=actor
            )
        )
        log.info("task %s approved by %s: %d of %d", task_id, actor, step.have, step.need)
        return decision
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


def _clear_pending(read: _Read, task_id: str) -> list[str]:
    """A decision that changes the task ends the wait: its pending approvals file goes with it."""
    exists, _ = _pending(read.view, task_id, read.sha)
    return [approvals_path(task_id)] if exists else []


def task_approve(*, task_id: str, actor: str, reason: str = "", expected_sha: str | None = None) -> Decision:
    """Approve the version of a task awaiting approval, under the policy of its risk level.

    Below the policy's count the approval is recorded in approvals/{task_id}.json (the task file is
    untouched, so its blob SHA stays the one the next approver sees); the M-th distinct approval of the
    same blob approves the task. The reason is an optional note to the agent.
    """
    reason = _reason(reason, required=False, action="approve")
    user = _user(actor)

    def apply(read: _Read) -> _Step:
        document = read.document
        _awaiting(document, "approved")
        policy = _policy_at(read.view)
        risk_level = document.get("risk_level") or RiskLevel.MEDIUM
        need = policy.level(risk_level).approvals
        exists, entries = _pending(read.view, task_id, read.sha)
        # Entries the control plane did not record (pushed by hand) are dropped when the file is written
        # again: they never counted, and they must not stop the person they name from approving.
        pending = [entry for entry in entries if approval_sealed(entry, task_id=task_id, task_sha=read.sha)]
        refusal = approve_refusal(
            user,
            task_id=task_id,
            risk_level=risk_level,
            policy=policy,
            requested_by=document.get("requested_by"),
            approved_by=[str(entry["by"]) for entry in pending],
        )
        if refusal is not None:
            raise Forbidden(refusal.message)
        now = timezone.now().isoformat()
        seal = approval_seal(task_id=task_id, task_sha=read.sha, by=actor, at=now)
        entry = {"by": actor, "at": now, "reason": reason, "seal": seal}
        approvals = [*pending, entry]
        counted, _ = split_approvals(
            pending,
            task_id=task_id,
            task_sha=read.sha,
            risk_level=risk_level,
            policy=policy,
            requested_by=document.get("requested_by"),
        )
        have = len(counted) + 1
        extra = {"have": have, "need": need, "blob_sha": read.sha}
        if have < need:
            record = {"task_id": task_id, "blob_sha": read.sha, "approvals": approvals}
            return _Step(
                action="approval_recorded",
                detail=reason,
                writes={approvals_path(task_id): dump_json(record)},
                task_changed=False,
                extra=extra,
                have=have,
                need=need,
            )
        document.update(
            status="approved",
            approved_by=actor,
            approved_at=now,
            approval_reason=reason,
            approvals=[*counted, entry],
            last_writer="admin",
        )
        return _Step(
            action="approved",
            detail=reason,
            deletes=[approvals_path(task_id)] if exists else [],
            extra=extra,
            have=have,
            need=need,
        )

    return _decide(
        kind="approved", task_id=task_id, actor=actor, expected_sha=expected_sha, apply=apply, verb="approve"
    )


def task_reject(*, task_id: str, actor: str, reason: str, expected_sha: str | None = None) -> Decision:
    """Reject a task awaiting approval, with a reason: one allowed approver is enough; its reject_count
    goes up by one."""
    reason = _reason(reason, required=True, action="reject")
    user = _user(actor)

    def apply(read: _Read) -> _Step:
        document = read.document
        _awaiting(document, "rejected")
        policy = _policy_at(read.view)
        risk_level = document.get("risk_level") or RiskLevel.MEDIUM
        refusal = decide_refusal(user, risk_level=risk_level, level=policy.level(risk_level))
        if refusal is not None:
            raise Forbidden(refusal.message)
        count = document.get("reject_count") or 0
        document.update(
            status="rejected",
            rejected_by=actor,
            rejected_at=timezone.now().isoformat(),
            rejection_reason=reason,
            reject_count=count + 1,
            last_writer="admin",
        )
        return _Step(action="rejected", detail=reason, deletes=_clear_pending(read, task_id))

    return _decide(
        kind="rejected", task_id=task_id, actor=actor, expected_sha=expected_sha, apply=apply, verb="reject"
    )


def task_override(
    *, task_id: str, actor: str, reason: str, status: str | None = None, expected_sha: str | None = None
) -> Decision:
    """Force a task's status from any state, with a reason; the previous status is kept in prev_status.

    Override keeps its own permission (ssot.override_task, checked by every door) and needs one person.
    """
    reason = _reason(reason, required=True, action="override")
    status = (status or "override").strip()
    if not status or len(status) > MAX_STATUS:
        raise Invalid(
            "The target status must be a non-empty string of at most 64 characters.",
            [{"path": "status", "message": "a non-empty string of at most 64 characters"}],
        )

    def apply(read: _Read) -> _Step:
        document = read.document
        document.update(
            prev_status=document["status"],
            status=status,
            override_by=actor,
            override_at=timezone.now().isoformat(),
            override_reason=reason,
            last_writer="admin",
        )
        return _Step(action="override", detail=reason, deletes=_clear_pending(read, task_id))

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


def message_file(msg_id: str) -> str:
    """The SSOT path of a message: where its row says it is, else the flat `messages/{msg_id}.json`."""
    row = Message.objects.filter(msg_id=msg_id).values_list("ssot_path", flat=True).first()
    return _message_candidates(row, msg_id)[0]


def _message_candidates(row: str | None, msg_id: str, dated: str | None = None) -> list[str]:
    """Where a message may be, most likely first: its row's path (flat or in a dated sub-folder, SPEC
    section 4), the flat path, the dated path of its timestamp (the rows may lag behind the SSOT)."""
    return list(dict.fromkeys([*([row] if row else []), message_path(msg_id), *([dated] if dated else [])]))


def _find(view: HeadView, paths: list[str]) -> tuple[str, tuple[str, bytes] | None]:
    """The first of `paths` that holds a file at the view, with its (blob SHA, content)."""
    return view.find(paths)


def _write_message(
    envelope: amp.Envelope,
    *,
    author: str,
    audit: Sequence[tuple[datetime, str]] = (),
    wait: float | None = None,
) -> Written:
    canonical = envelope.to_dict()
    dated = dated_message_path(envelope.msg_id, envelope.timestamp)
    path = dated if settings.SSOT_DATED_FOLDERS else message_path(envelope.msg_id)

    def build(view: HeadView) -> Draft | None:
        row = view.row_path(Message, envelope.msg_id)
        at, found = _find(view, _message_candidates(row, envelope.msg_id, dated))
        if found is not None:
            try:
                existing = parse_message(at, found[1]).to_dict()
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

    # The row is not known before the leader reads it: the paths that do not depend on it are declared.
    reads = Reads(paths=tuple(_message_candidates(None, envelope.msg_id, dated)), messages=(envelope.msg_id,))
    committed = write(build, author=author, wait=wait, reads=reads)
    return Written(id=envelope.msg_id, document=canonical, created=committed is not None)


def message_ack(*, msg_id: str, by: str) -> Written:
    """The addressee acknowledges a message (writes acks/{msg_id}.json); a second ACK writes nothing."""
    if not amp.is_safe_id(msg_id):
        raise NotFound(f"No message {msg_id[:80]!r}.")
    outcome: dict[str, Any] = {}

    def build(view: HeadView) -> Draft | None:
        at, found = _find(view, _message_candidates(view.row_path(Message, msg_id), msg_id))
        if found is None:
            raise NotFound(f"No message {msg_id!r} in the SSOT.")
        try:
            envelope = parse_message(at, found[1])
        except FileInvalid:
            raise Conflict(f"Message {msg_id} is quarantined; it cannot be acknowledged.") from None
        if envelope.recipient != by:
            raise Forbidden(f"Only the addressee ({envelope.recipient}) can acknowledge {msg_id}.")
        row = view.row_path(Ack, msg_id)
        at, existing = _find(view, list(dict.fromkeys([*([row] if row else []), ack_path(msg_id)])))
        if existing is not None:
            try:
                ack = parse_ack(at, existing[1])
            except FileInvalid:
                ack = None  # a quarantined ack file: this acknowledgement replaces it
            if ack is not None:
                outcome["document"] = {"msg_id": msg_id, "by": ack.by, "at": ack.at.isoformat()}
                return None
        document = {"msg_id": msg_id, "by": by, "at": timezone.now().isoformat()}
        outcome["document"] = document
        return Draft(message=f"ack {msg_id} by {by}", writes={ack_path(msg_id): dump_json(document)})

    reads = Reads(paths=(message_path(msg_id), ack_path(msg_id)), messages=(msg_id,), acks=(msg_id,))
    committed = write(build, author=by, reads=reads)
    return Written(id=msg_id, document=outcome["document"], created=committed is not None)


def agent_heartbeat(*, agent: str) -> Written:
    """An agent's explicit heartbeat: heartbeats/{agent}.json with the time."""
    if not amp.is_safe_id(agent):
        raise NotFound(f"No agent {agent[:80]!r}.")
    document = {"agent": agent, "at": timezone.now().isoformat()}

    def build(view: HeadView) -> Draft:
        return Draft(message=f"heartbeat {agent}", writes={heartbeat_path(agent): dump_json(document)})

    write(build, author=agent)
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
    # Raised by the monitors in the background: it may wait for the SSOT longer than a request.
    return _write_message(parsed, author=actor, audit=[line], wait=settings.SSOT_BACKGROUND_WAIT_SEC)


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

    write(build, author=actor)
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
            lines_by_path: dict[str, list[int]] = {}
            for entry, (path, line_no) in zip(entries, committed.audit_lines, strict=True):
                lines_by_path.setdefault(path, []).append(line_no)
                entry.in_ssot, entry.ssot_path, entry.line_no = True, path, line_no
            for path, line_nos in lines_by_path.items():
                AuditEntry.objects.filter(ssot_path=path, line_no__in=line_nos).delete()
            AuditEntry.objects.bulk_update(entries, ["in_ssot", "ssot_path", "line_no"], batch_size=500)

        write(build, author="system", before_mirror=claim, wait=settings.SSOT_BACKGROUND_WAIT_SEC)
        return len(entries)
