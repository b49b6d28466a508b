"""Audit lines: their exact text in the SSOT, and the queue of lines that wait for the batched flush.

Below the write path and the sync alike (both record lines), so that neither imports the other's caller:
`services.audit_flush` commits the queue.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils import timezone

from ssot import events
from ssot.models import AuditEntry


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


DECISION_ACTIONS = ("approved", "rejected", "override")


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
