"""The webhooks' django-q2 entry point: the durable retries."""

from __future__ import annotations

import pytest

from webhooks import tasks

pytestmark = pytest.mark.django_db


def test_the_webhook_retry_task_runs_the_due_deliveries():
    assert tasks.webhook_retries() == 0
