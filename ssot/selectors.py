"""Reads of the mirror for the API, the admin and the long-poll (writes live in services.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

import amp
from core.errors import NotFound
from ssot.models import AuditEntry, Message, QuarantinedFile, SyncState, Task
from ssot.paths import POLICY_PATH
from ssot.policy import policy_in_force
from ssot.stores.factory import branch, repository_label

TIMELINE_LIMIT = 500
AUDIT_LIMIT = 500
DECISIONS = (
    ("approved", "approved_by", "approved_at", "approval_reason"),
    ("rejected", "rejected_by", "rejected_at", "rejection_reason"),
    ("override", "override_by", "override_at", "override_reason"),
)


def task_list() -> QuerySet[Task]:
    """Tasks without their documents (a list shows columns only; a document can be large)."""
    return Task.objects.defer("document")


def task_get(task_id: str) -> Task:
    """The mirrored task, or NotFound (an unsafe id is simply unknown)."""
    task = Task.objects.filter(task_id=task_id).first() if amp.is_safe_id(task_id) else None
    if task is None:
        raise NotFound(f"No task {task_id[:80]!r}.")
    return task


def task_timeline(task_id: str, *, limit: int = TIMELINE_LIMIT) -> list[Message]:
    """The task's messages, oldest first (the latest `limit` of them)."""
    latest = Message.objects.filter(task_id=task_id).order_by("-timestamp", "-msg_id")[:limit]
    return sorted(latest, key=lambda message: (message.timestamp, message.msg_id))


def task_audit(task_id: str, *, limit: int = AUDIT_LIMIT) -> list[AuditEntry]:
    """The task's audit lines, oldest first (the latest `limit` of them)."""
    latest = AuditEntry.objects.filter(task_id=task_id).order_by("-timestamp", "-id")[:limit]
    return sorted(latest, key=lambda entry: (entry.timestamp, entry.pk))


def message_list() -> QuerySet[Message]:
    """Messages without their envelopes (the list shows the payload beside the columns)."""
    return Message.objects.defer("envelope")


def audit_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def latest_decision(document: dict[str, Any]) -> dict[str, Any] | None:
    """The most recent admin decision a task document records: action, by, at, reason."""
    found = []
    for action, by, at, reason in DECISIONS:
        when = _when(document.get(at))
        if when is not None:
            entry = {
                "action": action,
                "by": document.get(by),
                "at": document[at],
                "reason": document.get(reason),
            }
            found.append((when, entry))
    return max(found, key=lambda item: item[0])[1] if found else None


def decision_state(task_id: str) -> dict[str, Any] | None:
    """What the decision long-poll answers for a task, or None when there is no such task."""
    row = Task.objects.filter(task_id=task_id).values("status", "blob_sha", "document").first()
    if row is None:
        return None
    decided = row["status"] != Task.AWAITING_APPROVAL
    return {
        "task_id": task_id,
        "status": row["status"],
        "decided": decided,
        "blob_sha": row["blob_sha"],
        "decision": latest_decision(row["document"]) if decided else None,
    }


def sync_status() -> dict[str, Any]:
    """Where the mirror stands against the configured SSOT; nothing is created by reading it."""
    label = repository_label()
    state = SyncState.objects.filter(backend=settings.SSOT_BACKEND, repository=label, branch=branch()).first()
    return {
        "backend": settings.SSOT_BACKEND,
        "repository": label,
        "branch": branch(),
        "head": state.head if state else "",
        "last_sync_at": state.last_sync_at if state else None,
        "last_success_at": state.last_success_at if state else None,
        "last_error": state.last_error if state else "",
        "last_error_at": state.last_error_at if state else None,
        "consecutive_errors": state.consecutive_errors if state else 0,
        "last_report": state.last_report if state else {},
        "quarantined": QuarantinedFile.objects.count(),
    }


def policy_summary() -> dict[str, Any]:
    """The approval policy in force, its source, and an invalid version of the file that is not in force."""
    policy = policy_in_force()
    quarantined = QuarantinedFile.objects.filter(path=POLICY_PATH).only("blob_sha", "errors").first()
    return {
        "path": POLICY_PATH,
        "source": policy.source,
        "policy": policy.as_dict(),
        "quarantined": {"blob_sha": quarantined.blob_sha, "errors": quarantined.errors}
        if quarantined
        else None,
    }
