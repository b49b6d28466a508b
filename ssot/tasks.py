"""django-q2 entry points of the SSOT mirror (`manage.py setup_schedules` registers them)."""

from __future__ import annotations

import logging
from typing import Any

from core.errors import SsotUnavailable
from ssot import services
from ssot.sync import sync

log = logging.getLogger(__name__)


def ssot_poll() -> dict[str, Any]:
    """The safety-net poll of the SSOT head (missed webhooks); a failure is recorded by the sync itself."""
    try:
        return sync().as_dict()
    except SsotUnavailable as exc:
        log.warning("SSOT poll failed: %s", exc)
        return {"error": str(exc)}


def audit_flush() -> int:
    """Commit the queued audit lines to the SSOT in one commit."""
    return services.audit_flush()
