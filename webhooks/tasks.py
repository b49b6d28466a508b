"""django-q2 entry point of the webhooks' durable retries (`manage.py setup_schedules` registers it).

Each delivery's own processing is queued by the view as `webhooks.processing.process_delivery`.
"""

from __future__ import annotations

from webhooks.processing import retry_due


def webhook_retries() -> int:
    """Process webhook deliveries whose processing failed or was lost."""
    return retry_due()
