"""The live events of the SSOT mirror, built here and sent only after the DB commit (SPEC section 9)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Coroutine, Mapping
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.dispatch import Signal

from core.bounded import renderable
from ssot.models import Ack, AuditEntry, Escalation, Message, SyncState, Task
from ssot.policy import Counted, approval_counts
from ssot.selectors import latest_decision

log = logging.getLogger(__name__)

GROUP = "events"
# Per-task groups (`task.<task_id>`): what a decision long-poll listens to, instead of every event; and
# the group of the syncs too large for per-row events (a waiter must re-read its row then).
TASK_GROUP_PREFIX = "task."
RELOAD_GROUP = "events.reload"

# Sent in this process once an event's transaction has committed (keyword `event`), before the
# broadcast: how the apps above ssot (monitoring's approval notifications) hear of a change at once.
# A receiver must not raise; one that does is logged and the others still run.
committed = Signal()


def task_group(task_id: str) -> str:
    """The channel-layer group of one task's events. Channels allows only ASCII letters, digits, `-_.`
    in a group name, under 100 characters: a task id is path-safe, so only its length is bounded."""
    if len(task_id) <= 90:
        return f"{TASK_GROUP_PREFIX}{task_id}"
    return f"{TASK_GROUP_PREFIX}{task_id[:60]}.{hashlib.sha256(task_id.encode()).hexdigest()[:24]}"


def broadcast_on_commit(event: dict[str, Any]) -> None:
    """Send `event` to every connected client once the current transaction commits."""
    transaction.on_commit(lambda: _committed(event))


def _committed(event: dict[str, Any]) -> None:
    for _receiver, result in committed.send_robust(sender=None, event=event):
        if isinstance(result, Exception):
            log.error("a receiver of %s events failed: %r", event.get("type"), result)
    send_now(event)


def broadcast_all_on_commit(events: list[dict[str, Any]]) -> None:
    """Send these events, in order, once the current transaction commits: in one hop to the event loop
    (a group commit's mirror makes one event per change; a hop each cost more than the commit)."""
    if events:
        batch = list(events)
        transaction.on_commit(lambda: _committed_all(batch))


def _committed_all(events: list[dict[str, Any]]) -> None:
    for event in events:
        for _receiver, result in committed.send_robust(sender=None, event=event):
            if isinstance(result, Exception):
                log.error("a receiver of %s events failed: %r", event.get("type"), result)
    send_all_now(events)


SEND_TIMEOUT_SEC = 10


def send_now(event: dict[str, Any]) -> None:
    """Send an event at once; a channel layer failure is logged, never raised into the write path."""
    send_all_now([event])


def send_all_now(events: list[dict[str, Any]]) -> None:
    """Send events at once, in order, in one hop to the loop; a channel layer failure is logged, never
    raised into the write path."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        sends = [(groups_of(event), {"type": "event.forward", "event": event}) for event in events]
        if _server_loop_behind_this_thread():
            # A view's thread under daphne: the send runs on daphne's loop, where its clients are.
            async_to_sync(_send_each)(layer, sends)
        else:
            _process_loop.run(_send_each(layer, sends))
    except Exception:
        log.exception("could not broadcast %s", ", ".join(sorted({str(e.get("type")) for e in events})))


async def _send_each(layer: Any, sends: list[tuple[list[str], dict[str, Any]]]) -> None:
    for groups, message in sends:
        await _send_all(layer, groups, message)


def groups_of(event: dict[str, Any]) -> list[str]:
    """Every client gets every event (`events`); an event about one task goes to its group as well, and a
    sync too large for per-row events to the reload group."""
    task_id = event.get("task_id")
    if isinstance(task_id, str) and task_id:
        return [GROUP, task_group(task_id)]
    report = event.get("report")
    if event.get("type") == "sync" and isinstance(report, dict) and report.get("reload"):
        return [GROUP, RELOAD_GROUP]
    return [GROUP]


async def _send_all(layer: Any, groups: list[str], message: dict[str, Any]) -> None:
    for group in groups:
        await layer.group_send(group, message)


def _server_loop_behind_this_thread() -> bool:
    """Whether this thread was called from an event loop of this process (asgiref's sync_to_async
    records it, and async_to_sync then runs coroutines there)."""
    threadlocal = SyncToAsync.threadlocal
    return (
        getattr(threadlocal, "main_event_loop", None) is not None
        and getattr(threadlocal, "main_event_loop_pid", None) == os.getpid()
    )


class _ProcessLoop:
    """An event loop of the process's own, in a daemon thread, for sends from code no server loop
    drives (the django-q2 worker, management commands). `async_to_sync` would start a new loop for
    every call, and channels-redis a new connection with it: measured, 0.9 ms per event on the
    embedded layer and 3.8 ms with Redis, most of a webhook delivery's processing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        return future.result(timeout=SEND_TIMEOUT_SEC)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="events-loop", daemon=True).start()
            return self._loop

    def forget(self) -> None:
        """After a fork: the loop's thread did not come along; the child starts its own."""
        self._lock = threading.Lock()
        self._loop = None


_process_loop = _ProcessLoop()
os.register_at_fork(after_in_child=_process_loop.forget)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def task_summary(task: Task, counts: Mapping[str, Counted] | None = None) -> dict[str, Any]:
    """A task as the dashboard lists it. `approvals`, for a task awaiting approval, is how many approvals
    count for the version shown and how many are needed ("1 of 2"); `counts` is what
    `ssot.policy.approval_counts` gave for a list of tasks (read for this task alone when absent)."""
    return {
        "task_id": task.task_id,
        "title": task.title,
        "status": task.status,
        "risk_level": task.risk_level,
        "branch": task.branch,
        "assignee": task.assignee,
        "reject_count": task.reject_count,
        "last_writer": task.last_writer,
        "blob_sha": task.blob_sha,
        "ci_state": task.ci_state,
        "ci_status": renderable(task.ci_status),
        "pr": _pr(task),
        "decision_unverified": task.decision_unverified,
        "approvals": _approvals(task, counts),
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
    }


def _approvals(task: Task, counts: Mapping[str, Counted] | None) -> dict[str, int] | None:
    if task.status != Task.AWAITING_APPROVAL:
        return None
    if counts is None:
        counts = approval_counts([task])
    counted = counts.get(task.task_id)
    return {"have": counted.have, "need": counted.need} if counted else None


def _pr(task: Task) -> dict[str, Any] | None:
    if not task.pr_number:
        return None
    return {"number": task.pr_number, "state": task.pr_state, "url": task.pr_url, "title": task.pr_title}


# The fields message_summary reads: a query for the events of new messages loads only these.
MESSAGE_SUMMARY_FIELDS = (
    "msg_id",
    "type",
    "sender",
    "recipient",
    "task_id",
    "timestamp",
    "requires_ack",
    "ack_state",
    "ack_deadline",
    "acked_at",
    "context_ref",
)


def message_summary(message: Message) -> dict[str, Any]:
    return {
        "msg_id": message.msg_id,
        "type": message.type,
        "from": message.sender,
        "to": message.recipient,
        "task_id": message.task_id,
        "timestamp": _iso(message.timestamp),
        "requires_ack": message.requires_ack,
        "ack_state": message.ack_state,
        "ack_deadline": _iso(message.ack_deadline),
        "acked_at": _iso(message.acked_at),
        "context_ref": renderable(message.context_ref),
    }


def escalation_summary(escalation: Escalation) -> dict[str, Any]:
    return {
        "id": escalation.pk,
        "msg_id": escalation.msg_id,
        "task_id": escalation.task_id,
        "escalation_type": escalation.escalation_type,
        "severity": escalation.severity,
        "triggered_by": escalation.triggered_by,
        "description": escalation.description,
        "subject": escalation.subject,
        "status": escalation.status,
        "acknowledged_by": escalation.acknowledged_by,
        "acknowledged_at": _iso(escalation.acknowledged_at),
        "resolved_by": escalation.resolved_by,
        "resolved_at": _iso(escalation.resolved_at),
        "resolution": escalation.resolution,
        "created_at": _iso(escalation.created_at),
    }


def audit_summary(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "timestamp": _iso(entry.timestamp),
        "actor": entry.actor,
        "action": entry.action,
        "task_id": entry.task_id,
        "msg_id": entry.msg_id,
        "detail": entry.detail,
        "in_ssot": entry.in_ssot,
    }


def decision_of(task: Task) -> dict[str, Any] | None:
    """What the decision long-poll answers with, carried by the task's events so no waiter re-reads."""
    if task.status == Task.AWAITING_APPROVAL or not isinstance(task.document, dict):
        return None
    return latest_decision(task.document)


def task_update(task: Task, counts: Mapping[str, Counted] | None = None) -> dict[str, Any]:
    return {
        "type": "task_update",
        "task_id": task.task_id,
        "task": task_summary(task, counts),
        "decision": decision_of(task),
    }


def task_removed(task_id: str) -> dict[str, Any]:
    return {"type": "task_update", "task_id": task_id, "task": None, "removed": True}


def task_decision(kind: str, task: Task, *, actor: str, reason: str, prev_status: str) -> dict[str, Any]:
    """`task_approved`, `task_rejected` or `task_override`."""
    return {
        "type": kind,
        "task_id": task.task_id,
        "actor": actor,
        "reason": reason,
        "prev_status": prev_status,
        "status": task.status,
        "task": task_summary(task),
        "decision": decision_of(task),
    }


def approval_progress(*, task_id: str, blob_sha: str, have: int, need: int, by: str) -> dict[str, Any]:
    """An approval below the policy's count was recorded: `have` of `need` for version `blob_sha`."""
    return {
        "type": "approval_progress",
        "task_id": task_id,
        "blob_sha": blob_sha,
        "have": have,
        "need": need,
        "by": by,
    }


def message(message: Message) -> dict[str, Any]:
    return {"type": "message", "msg_id": message.msg_id, "message": message_summary(message)}


def ack(ack: Ack) -> dict[str, Any]:
    return {
        "type": "ack",
        "msg_id": ack.msg_id,
        "by": ack.by,
        "at": _iso(ack.at),
        "via": ack.via,
    }


def escalation(escalation: Escalation) -> dict[str, Any]:
    return {"type": "escalation", "msg_id": escalation.msg_id, "escalation": escalation_summary(escalation)}


def ci_update(task: Task, *, source: str, check: str, state: str, branch: str) -> dict[str, Any]:
    return {
        "type": "ci_update",
        "task_id": task.task_id,
        "branch": branch,
        "source": source,
        "check": check,
        "state": state,
        "ci_state": task.ci_state,
        "ci_status": renderable(task.ci_status),
    }


def pr_update(task: Task, *, action: str) -> dict[str, Any]:
    return {
        "type": "pr_update",
        "task_id": task.task_id,
        "action": action,
        "branch": task.branch,
        "pr": _pr(task),
    }


def sync(state: SyncState, report: dict[str, Any]) -> dict[str, Any]:
    """Where the mirror stands after a sync; `failing` while the last one failed, with its reason."""
    failing = state.consecutive_errors > 0
    return {
        "type": "sync",
        "backend": state.backend,
        "branch": state.branch,
        "head": state.head,
        "last_sync_at": _iso(state.last_sync_at),
        "failing": failing,
        "consecutive_errors": state.consecutive_errors,
        "last_error": state.last_error if failing else "",
        "report": report,
    }


def audit(entry: AuditEntry) -> dict[str, Any]:
    return {"type": "audit", "entry": audit_summary(entry)}
