"""Audit lines: their exact text in the SSOT, and the queue of lines that wait for the batched flush.

Below the write path and the sync alike (both record lines), so that neither imports the other's caller:
`services.audit_flush` commits the queue.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

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
SEAL_SALT = "agentos.decision-seal"


def decision_seal(
    *, task_id: str, action: str, status: str, task_sha: str, secret: str | bytes | None = None
) -> str:
    """The HMAC a decision line of the control plane carries: agents, without the secret, cannot forge it."""
    message = f"{task_id}\0{action}\0{status}\0{task_sha}"
    return salted_hmac(SEAL_SALT, message, secret=secret, algorithm="sha256").hexdigest()


def seal_holds(data: dict[str, Any]) -> bool:
    """Whether an audit line's `seal` is the control plane's for its task, action, status and task blob."""
    fields = [data.get(name) for name in ("task_id", "action", "status", "task_sha", "seal")]
    if not all(isinstance(value, str) and value for value in fields):
        return False
    task_id, action, status, task_sha, seal = (str(value) for value in fields)
    return any(
        constant_time_compare(
            seal, decision_seal(task_id=task_id, action=action, status=status, task_sha=task_sha, secret=key)
        )
        for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    )


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
