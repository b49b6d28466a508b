"""django-q2 entry points (`manage.py setup_schedules` registers them): thin calls into the services."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from monitoring import notify, services
from monitoring import prune as pruning
from ssot.errors import SsotUnavailable

log = logging.getLogger(__name__)


def heartbeat_check() -> dict[str, Any]:
    """One heartbeat check and one ACK scan, then the notifications they queued (after their commits)."""
    report = services.run_checks()
    sent = notify.notifications_send()
    return {**report.as_dict(), "notifications": asdict(sent)}


def ack_scan() -> dict[str, Any]:
    """The ACK scan on its own (the heartbeat schedule runs it too)."""
    return services.ack_scan().as_dict()


def ssot_poll() -> dict[str, Any]:
    """The safety-net poll of the SSOT head (missed webhooks); a failure is recorded by the sync itself."""
    from ssot.sync import sync

    try:
        return sync().as_dict()
    except SsotUnavailable as exc:
        log.warning("SSOT poll failed: %s", exc)
        return {"error": str(exc)}


def audit_flush() -> int:
    """Commit the queued audit lines to the SSOT in one commit."""
    from ssot.services import audit_flush as flush

    return flush()


def webhook_retries() -> int:
    """Process webhook deliveries whose processing failed or was lost."""
    from ssot.webhooks.processing import retry_due

    return retry_due()


def notifications_send() -> dict[str, int]:
    """Send the due notifications (new ones, and retries whose backoff is over)."""
    return asdict(notify.notifications_send())


def prune() -> dict[str, int]:
    """Delete the database-only rows past their age or count (monitoring/prune.py)."""
    report = pruning.prune()
    log.info("%s", pruning.describe(report))
    return report.as_dict()
