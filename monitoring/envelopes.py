"""The monitor's escalations as AMP/1.0 envelopes: ids derived from the episode, and their content.

A claim (a `Notification` row) and the mirrored rows are all an envelope is built from, so a retry
after a crash builds the same message, and `escalation_raise` finds it already written.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

import amp
from monitoring.models import ApprovalWait, Notification
from ssot.models import Agent, AuditEntry, Message, QuarantinedFile, Task
from ssot.paths import POLICY_PATH
from ssot.stores.factory import branch

SYSTEM = "system"
MAX_ID = 128

HEARTBEAT_TIMEOUT = "heartbeat_timeout"
ACK_TIMEOUT = "ack_timeout"
SYNC_STALE = "ssot_sync_stale"
SYNC_FAILED = "ssot_sync_failed"
POLICY_INVALID = "policy_invalid"
AGENT_PREFIX = "escalation-agent-"
ACK_PREFIX = "escalation-ack-"
SYNC_PREFIX = "escalation-sync-"
SYNC_FAILED_PREFIX = "escalation-syncfail-"
POLICY_PREFIX = "escalation-policy-"
POLICY_SUBJECT = "policy"
APPROVAL_EXPIRED = "approval_expired"
APPROVAL_PREFIX = "escalation-approval-"
AUDIT_REWRITTEN = "audit_rewritten"
DECISION_UNVERIFIED = "decision_unverified"
AUDIT_PREFIX = "escalation-audit-"
DECISION_PREFIX = "escalation-decision-"
SYNC_SUBJECT = "sync"
MSG_SUBJECT = "msg:"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(when: datetime | None) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1) if when else 0


def from_epoch_ms(value: int) -> datetime | None:
    return _EPOCH + timedelta(milliseconds=value) if value else None


def iso(when: datetime | None) -> str | None:
    return amp.make_timestamp(when) if when else None


def _bounded(prefix: str, key: str, suffix: str = "") -> str:
    """`prefix + key + suffix`, the key cut and hashed when the id would pass 128 characters."""
    msg_id = f"{prefix}{key}{suffix}"
    if len(msg_id) <= MAX_ID:
        return msg_id
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    room = MAX_ID - len(prefix) - len(suffix) - len(digest) - 1
    return f"{prefix}{key[:room].rstrip('-')}-{digest}{suffix}"


def timeout_escalation_id(agent: str, last_seen: datetime) -> str:
    """The heartbeat_timeout escalation of the episode that began after `last_seen`.

    An id's number has no sign: a heartbeat dated before the epoch (an agent's clock) counts from it."""
    return _bounded(AGENT_PREFIX, agent, f"-{max(epoch_ms(last_seen), 0)}")


def ack_escalation_id(msg_id: str) -> str:
    """The ack_timeout escalation of one message (a message is overdue at most once)."""
    return _bounded(ACK_PREFIX, msg_id)


def sync_escalation_id(last_success_at: datetime | None, kind: str = SYNC_STALE) -> str:
    """The ssot_sync_stale (or ssot_sync_failed) escalation of the episode that began after the last
    successful sync."""
    prefix = SYNC_FAILED_PREFIX if kind == SYNC_FAILED else SYNC_PREFIX
    return f"{prefix}{epoch_ms(last_success_at)}"


def approval_escalation_id(task_id: str, started_at: datetime) -> str:
    """The approval_expired escalation of the wait that began at `started_at`."""
    return _bounded(APPROVAL_PREFIX, task_id, f"-{max(epoch_ms(started_at), 0)}")


def policy_escalation_id(blob_sha: str) -> str:
    """The policy_invalid escalation of one invalid version (blob) of the policy file."""
    return _bounded(POLICY_PREFIX, blob_sha)


def audit_escalation_id(commit: str) -> str:
    """The audit_rewritten escalation of one commit (one per commit, however many lines it rewrote)."""
    return _bounded(AUDIT_PREFIX, commit)


def decision_escalation_id(task_id: str, blob_sha: str) -> str:
    """The decision_unverified escalation of one version of a task."""
    return _bounded(DECISION_PREFIX, task_id, f"-{blob_sha[:12]}")


def build(notification: Notification) -> dict[str, Any] | None:
    """The escalation a claim stands for, or None when what it is about is gone from the mirror."""
    msg_id = notification.escalation_msg_id
    if msg_id.startswith(APPROVAL_PREFIX):
        return _approval_envelope(notification)
    if msg_id.startswith(AGENT_PREFIX):
        return _timeout_envelope(notification)
    if msg_id.startswith(ACK_PREFIX):
        return _ack_envelope(notification)
    if msg_id.startswith(SYNC_PREFIX):
        return _sync_envelope(notification, SYNC_STALE)
    if msg_id.startswith(SYNC_FAILED_PREFIX):
        return _sync_envelope(notification, SYNC_FAILED)
    if msg_id.startswith(POLICY_PREFIX):
        return _policy_envelope(notification)
    if msg_id.startswith(AUDIT_PREFIX):
        return _audit_envelope(notification)
    if msg_id.startswith(DECISION_PREFIX):
        return _decision_envelope(notification)
    return None


def _timeout_envelope(notification: Notification) -> dict[str, Any] | None:
    msg_id = notification.escalation_msg_id
    agent = Agent.objects.filter(timeout_msg_id=msg_id).first()
    if agent is None:
        return None
    # Not from_epoch_ms: its 0 means "never", while a timed-out agent was seen, at the epoch at the earliest.
    last_seen = _EPOCH + timedelta(milliseconds=int(msg_id.rsplit("-", 1)[1]))
    elapsed = notification.created_at - last_seen
    return amp.build_escalation(
        msg_id=msg_id,
        now=notification.created_at,
        task_id=agent_task(agent.name, last_seen),
        escalation_type=HEARTBEAT_TIMEOUT,
        severity="critical",
        triggered_by=SYSTEM,
        description=notification.body,
        affected_msgs=[],
        snapshot={
            "subject": f"agent:{agent.name}",
            "agent": agent.name,
            "last_seen": iso(last_seen),
            "last_heartbeat": iso(last_seen),
            "elapsed_sec": int(elapsed.total_seconds()),
            "timeout_sec": settings.HEARTBEAT_TIMEOUT_SEC,
        },
        suggested_actions=[
            f"Manually restart {agent.name} CLI",
            "Check Mac Studio process list",
            "Verify API credentials have not expired",
        ],
    )


def agent_task(agent: str, last_seen: datetime) -> str:
    """The task an agent was on when it fell silent.

    Its latest message (sent or received) up to its last write; else the task it is assigned to or last
    wrote, latest first; else the synthetic `agent-{name}`, never an arbitrary task.
    """
    latest = (
        Message.objects.filter(Q(sender=agent) | Q(recipient=agent), timestamp__lte=last_seen)
        .order_by("-timestamp")
        .values_list("task_id", flat=True)
        .first()
    )
    if latest:
        return latest
    task = (
        Task.objects.filter(Q(assignee=agent) | Q(last_writer=agent))
        .order_by("-updated_at")
        .values_list("task_id", flat=True)
        .first()
    )
    return task or f"agent-{agent}"[:MAX_ID]


def overdue_message(escalation_msg_id: str) -> Message | None:
    """The message an ack_timeout escalation is about (its id is in the escalation's, or hashed there)."""
    key = escalation_msg_id[len(ACK_PREFIX) :]
    message = Message.objects.filter(msg_id=key).first()
    if message is None and "-" in key:
        stem = key.rsplit("-", 1)[0]
        for candidate in Message.objects.filter(msg_id__startswith=stem):
            if ack_escalation_id(candidate.msg_id) == escalation_msg_id:
                return candidate
    return message


def _ack_envelope(notification: Notification) -> dict[str, Any] | None:
    message = overdue_message(notification.escalation_msg_id)
    if message is None:
        return None
    return amp.build_escalation(
        msg_id=notification.escalation_msg_id,
        now=notification.created_at,
        task_id=message.task_id,
        escalation_type=ACK_TIMEOUT,
        severity="warning",
        triggered_by=SYSTEM,
        description=notification.body,
        affected_msgs=[message.msg_id],
        snapshot={
            "subject": f"{MSG_SUBJECT}{message.msg_id}",
            "msg_id": message.msg_id,
            "type": message.type,
            "from": message.sender,
            "to": message.recipient,
            "sent_at": iso(message.timestamp),
            "ack_deadline": iso(message.ack_deadline),
        },
        suggested_actions=[
            f"Check that {message.recipient} is running and reading its messages",
            f"Ask {message.recipient} to acknowledge {message.msg_id}",
            "Resend the message if it was lost",
        ],
        auto_suspended=False,
    )


_SYNC_ACTIONS = {
    SYNC_STALE: [
        "Check that the SSOT answers (GitHub status, token, or the local repository's disk)",
        "Run manage.py ssot_resync and read its error",
        "Check that the qcluster worker runs the SSOT poll (manage.py setup_schedules)",
    ],
    SYNC_FAILED: [
        "Read the sync's last error (dashboard header, GET /api/sync/): it names the step and the reason",
        "Check the database: connection, disk, migrations (manage.py migrate)",
        "Run manage.py ssot_resync and read its error; files with bad content are quarantined, not fatal",
    ],
}


def _sync_envelope(notification: Notification, kind: str) -> dict[str, Any]:
    last_success = from_epoch_ms(int(notification.escalation_msg_id.rsplit("-", 1)[1]))
    return amp.build_escalation(
        msg_id=notification.escalation_msg_id,
        now=notification.created_at,
        task_id=SYNC_SUBJECT,
        escalation_type=kind,
        severity="critical",
        triggered_by=SYSTEM,
        description=notification.body,
        snapshot={
            "subject": SYNC_SUBJECT,
            "last_success_at": iso(last_success),
            "detected_at": iso(notification.created_at),
            "backend": settings.SSOT_BACKEND,
            "branch": branch(),
        },
        suggested_actions=_SYNC_ACTIONS[kind],
        auto_suspended=False,
    )


def _approval_envelope(notification: Notification) -> dict[str, Any] | None:
    msg_id = notification.escalation_msg_id
    wait = ApprovalWait.objects.filter(expired_msg_id=msg_id).first()
    task = Task.objects.filter(task_id=wait.task_id).first() if wait else None
    if wait is None or task is None:
        return None
    return amp.build_escalation(
        msg_id=msg_id,
        now=notification.created_at,
        task_id=task.task_id,
        escalation_type=APPROVAL_EXPIRED,
        severity="warning",
        triggered_by=SYSTEM,
        description=notification.body,
        snapshot={
            "subject": f"task:{task.task_id}",
            "task_id": task.task_id,
            "blob_sha": wait.blob_sha,
            "waiting_since": iso(wait.started_at),
            "expire_sec": settings.APPROVAL_EXPIRE_SEC,
        },
        suggested_actions=[
            f"Open the task page and approve or reject {task.task_id}",
            "Ask another approver to decide it",
            "Override the task if it should no longer wait",
        ],
        auto_suspended=False,
    )


def _policy_envelope(notification: Notification) -> dict[str, Any] | None:
    blob_sha = notification.escalation_msg_id[len(POLICY_PREFIX) :]
    quarantined = QuarantinedFile.objects.filter(path=POLICY_PATH, blob_sha=blob_sha).first()
    if quarantined is None:
        return None
    return amp.build_escalation(
        msg_id=notification.escalation_msg_id,
        now=notification.created_at,
        task_id=POLICY_SUBJECT,
        escalation_type=POLICY_INVALID,
        severity="warning",
        triggered_by=SYSTEM,
        description=notification.body,
        snapshot={
            "subject": POLICY_SUBJECT,
            "path": POLICY_PATH,
            "blob_sha": blob_sha,
            "errors": quarantined.errors[:10],
        },
        suggested_actions=[
            f"Fix {POLICY_PATH} in the SSOT: each error names the field and the reason",
            "Check it before pushing against amp/schema/approval-policy.schema.json",
            "Until then the previous valid policy (or the built-in default) stays in force",
        ],
        auto_suspended=False,
    )


def _audit_envelope(notification: Notification) -> dict[str, Any] | None:
    msg_id = notification.escalation_msg_id
    commit = msg_id[len(AUDIT_PREFIX) :]
    lines = list(
        AuditEntry.objects.filter(rewritten_in=commit).order_by("rewritten_path", "rewritten_line")[:50]
    )
    if not lines or audit_escalation_id(commit) != msg_id:
        return None
    tasks = [line.task_id for line in lines if line.task_id and amp.is_safe_id(line.task_id)]
    return amp.build_escalation(
        msg_id=msg_id,
        now=notification.created_at,
        task_id=tasks[0] if tasks else "audit",
        escalation_type=AUDIT_REWRITTEN,
        severity="critical",
        triggered_by=SYSTEM,
        description=notification.body,
        affected_msgs=[],
        snapshot={
            "subject": f"commit:{commit}",
            "commit": commit,
            "author": lines[0].rewritten_by,
            "lines": [
                {
                    "path": line.rewritten_path,
                    "line": line.rewritten_line,
                    "how": line.rewritten_how,
                    "actor": line.actor,
                    "action": line.action,
                    "task_id": line.task_id,
                    "timestamp": iso(line.timestamp),
                }
                for line in lines
            ],
        },
        suggested_actions=[
            f"Look at commit {commit[:12]} in the SSOT: who pushed it, and why it edits the audit log",
            "Restore the removed or changed lines (they are kept: admin, GET /api/audit/?include=rewritten)",
            "Revoke the credentials of whoever pushed it if the edit was not sanctioned",
        ],
        auto_suspended=False,
    )


def _decision_envelope(notification: Notification) -> dict[str, Any] | None:
    msg_id = notification.escalation_msg_id
    task = next(
        (
            task
            for task in Task.objects.filter(decision_unverified=True)
            if decision_escalation_id(task.task_id, task.blob_sha) == msg_id
        ),
        None,
    )
    if task is None:
        return None
    return amp.build_escalation(
        msg_id=msg_id,
        now=notification.created_at,
        task_id=task.task_id,
        escalation_type=DECISION_UNVERIFIED,
        severity="critical",
        triggered_by=SYSTEM,
        description=notification.body,
        affected_msgs=[],
        snapshot={
            "subject": f"task:{task.task_id}",
            "status": task.status,
            "blob_sha": task.blob_sha,
            "commit": task.decision_unverified_in,
            "author": task.decision_unverified_by,
        },
        suggested_actions=[
            f"Check who set {task.task_id} to {task.status}: no decision of the control plane says so",
            "Decide it again in the admin or the API (override) if the status is wrong",
            "Revoke the credentials of whoever pushed it if the change was not sanctioned",
        ],
        auto_suspended=False,
    )
