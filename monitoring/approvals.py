"""Asking reaches the approvers (SPEC section 5): a task entering `awaiting_approval` is notified once per
version, at once, with a link to its page; reminded while it waits; escalated once when it expires.

How it is heard at once: `ssot.events.committed` tells `on_event` of every task event after its commit
(whoever wrote it: an agent's push through the sync, the API, the admin), and `on_event` queues
`monitoring.tasks.approval_watch` for that task on django-q2, so the notification is claimed and sent by
a worker a moment later, never inside the writer's request or sync. The monitor's check runs the same
`watch` over every waiting task as the safety net (a lost queue entry, a sync too large for events, a
restart), and the reminders and the expiry (monitoring.services). Every claim is a conditional UPDATE of
the task's `ApprovalWait` row with its `Notification` created in the same transaction.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import ApprovalWait, Notification
from ssot.models import Task

log = logging.getLogger(__name__)

AWAITING = Task.AWAITING_APPROVAL
TITLE_CHARS = 60
WATCH_FUNCTION = "monitoring.tasks.approval_watch"
_TASK_EVENTS = {"task_update", "task_approved", "task_rejected", "task_override"}


# -- links and texts ---------------------------------------------------------------------------------------


def public_url(path: str, **query: str) -> str:
    """`PUBLIC_URL` + an absolute path (+ a query)."""
    url = f"{settings.PUBLIC_URL.rstrip('/')}{path}"
    return f"{url}?{urlencode(query)}" if query else url


def task_link(task_id: str, blob_sha: str = "") -> str:
    path = f"/dashboard/tasks/{quote(task_id, safe='')}/"
    return public_url(path, sha=blob_sha) if blob_sha else public_url(path)


def escalation_link(msg_id: str) -> str:
    return public_url(f"/dashboard/escalations/{quote(msg_id, safe='')}/")


def _line(text: Any, limit: int = 200) -> str:
    """One line of a notification: control characters become spaces, long text is cut (at a word when
    there is one in its second half) with an ellipsis."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def subject(task: Task) -> str:
    """`DEMO-1 (high): Add offline mode…` (the title cut at TITLE_CHARS)."""
    title = _line(task.title, TITLE_CHARS)
    return f"{task.task_id} ({task.risk_level})" + (f": {title}" if title else "")


def _ci(task: Task) -> str:
    checks = task.ci_status if isinstance(task.ci_status, dict) else {}
    if not checks:
        return "no checks reported"
    states = ", ".join(
        f"{_line(name, 60)} {_line(entry.get('state', '?') if isinstance(entry, dict) else '?', 20)}"
        for name, entry in sorted(checks.items())[:10]
    )
    return f"{task.ci_state or 'unknown'} ({states})"


def details(task: Task) -> str:
    """Branch, who asked, CI and PR: what the approver needs before opening the page."""
    pr = f"#{task.pr_number} {task.pr_state}".strip() if task.pr_number else "none"
    if task.pr_number and task.pr_url:
        pr += f" {task.pr_url}"
    return "\n".join(
        [
            f"Branch: {_line(task.branch) or '(none)'}",
            f"Asked by: {_line(task.last_writer) or '(unknown)'}",
            f"CI: {_ci(task)}",
            f"PR: {_line(pr, 300)}",
        ]
    )


# -- the claims --------------------------------------------------------------------------------------------


def _notify(title: str, body: str, link: str, now: datetime, *, escalate: bool = False) -> Notification:
    return Notification.objects.create(
        title=title[:250], body=body, link=link, escalate=escalate, next_attempt_at=now
    )


def watch(task_id: str, *, now: datetime | None = None) -> Notification | None:
    """Bring the task's wait up to date with its row: claim `asked` or `changed`, or end the wait.

    Returns the notification this call claimed, if any."""
    now = now or timezone.now()
    task = Task.objects.filter(task_id=task_id).first()
    if task is None or task.status != AWAITING:
        ApprovalWait.objects.filter(task_id=task_id, active=True).update(active=False)
        return None
    ApprovalWait.objects.bulk_create([ApprovalWait(task_id=task_id)], ignore_conflicts=True)
    wait = ApprovalWait.objects.get(task_id=task_id)
    if wait.active and wait.blob_sha == task.blob_sha:
        return None
    with transaction.atomic():
        if not wait.active:
            claimed = ApprovalWait.objects.filter(pk=wait.pk, active=False).update(
                active=True, blob_sha=task.blob_sha, started_at=now, reminders=0, expired_msg_id=""
            )
            if not claimed:
                return None
            notification = _notify(
                f"[approval] {subject(task)}",
                f"{details(task)}\nWaiting for approval since {now:%Y-%m-%d %H:%M} UTC.",
                task_link(task.task_id, task.blob_sha),
                now,
            )
        else:
            claimed = ApprovalWait.objects.filter(pk=wait.pk, active=True, blob_sha=wait.blob_sha).update(
                blob_sha=task.blob_sha
            )
            if not claimed:
                return None
            notification = _notify(
                f"[approval] {subject(task)} (changed)",
                f"The task changed while it waits for approval (now version {task.blob_sha[:10]}).\n"
                f"{details(task)}",
                task_link(task.task_id, task.blob_sha),
                now,
            )
    log.info("approval of %s (%s) notified: %s", task.task_id, task.blob_sha[:10], notification.title)
    return notification


def missing_watches() -> list[str]:
    """Tasks whose wait is not up to date: awaiting without an active wait on their version, or an
    active wait whose task no longer awaits (two queries, whatever the number of tasks)."""
    waiting = dict(Task.objects.filter(status=AWAITING).values_list("task_id", "blob_sha"))
    active = dict(ApprovalWait.objects.filter(active=True).values_list("task_id", "blob_sha"))
    stale = [task_id for task_id, sha in waiting.items() if active.get(task_id) != sha]
    gone = [task_id for task_id in active if task_id not in waiting]
    return sorted(stale + gone)


# -- hearing of a change at once ---------------------------------------------------------------------------


@functools.cache
def _broker() -> Any:
    from django_q.brokers import get_broker

    return get_broker()


def enqueue(task_id: str) -> None:
    """Queue `approval_watch(task_id)`; if the broker fails, the monitor's next check does it."""
    from django_q.tasks import async_task

    inline = bool(settings.Q_CLUSTER.get("sync", False))
    try:
        with contextlib.nullcontext() if inline else transaction.atomic():
            async_task(
                WATCH_FUNCTION,
                task_id,
                task_name=f"approval-{task_id}"[:100],
                save=False,
                sync=inline,
                broker=_broker(),
            )
    except Exception:
        log.exception("could not queue the approval watch of %s; the next check does it", task_id)


def on_event(sender: Any = None, *, event: dict[str, Any], **kwargs: Any) -> None:
    """`ssot.events.committed` receiver: a task that now awaits approval, or stopped waiting, is watched."""
    kind = event.get("type")
    if kind == "sync" and isinstance(event.get("report"), dict) and event["report"].get("reload"):
        # Too many changes for one event each: the safety net's query finds them.
        for missing in missing_watches():
            enqueue(missing)
        return
    task_id = event.get("task_id")
    if kind not in _TASK_EVENTS or not isinstance(task_id, str):
        return
    task = event.get("task")
    status = task.get("status") if isinstance(task, dict) else None
    if status == AWAITING or ApprovalWait.objects.filter(task_id=task_id, active=True).exists():
        enqueue(task_id)
