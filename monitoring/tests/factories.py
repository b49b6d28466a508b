"""factory-boy factories of monitoring's own rows."""

from __future__ import annotations

import factory
from django.utils import timezone

from monitoring.models import Notification


class NotificationFactory(factory.django.DjangoModelFactory[Notification]):
    class Meta:
        model = Notification

    title = factory.Sequence(lambda n: f"[warning] ack_timeout: task_dispatch-T-{n:04d}-1760000000000")
    body = "executor has not acknowledged task_dispatch T-0001 from coordinator."
    escalation_msg_id = ""
    state = Notification.State.PENDING
    next_attempt_at = factory.LazyFunction(timezone.now)
