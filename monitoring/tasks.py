"""django-q2 entry points of the monitor (`manage.py setup_schedules` registers them): thin calls."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from monitoring import notify, services


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
