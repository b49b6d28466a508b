"""django-q2 entry points of the monitor (`manage.py setup_schedules` registers them): thin calls."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from monitoring import approvals, notify, services


def heartbeat_check() -> dict[str, Any]:
    """One heartbeat check and one ACK scan, then the notifications they queued (after their commits)."""
    report = services.run_checks()
    sent = notify.notifications_send()
    return {**report.as_dict(), "notifications": asdict(sent)}


def ack_scan() -> dict[str, Any]:
    """The ACK scan on its own (the heartbeat schedule runs it too)."""
    return services.ack_scan().as_dict()


def notifications_send() -> dict[str, int]:
    """Send the due notifications (new ones, and retries whose backoff is over)."""
    return asdict(notify.notifications_send())


def approval_watch(task_id: str) -> dict[str, Any]:
    """Queued by `approvals.on_event` when a task enters, changes in or leaves `awaiting_approval`:
    claim its notification, then send what is due (at once, not at the next check)."""
    notification = approvals.watch(task_id)
    sent = notify.notifications_send() if notification is not None else notify.SendReport()
    return {"task_id": task_id, "notified": notification.title if notification else "", **asdict(sent)}
