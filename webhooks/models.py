"""The webhook deliveries, stored verbatim before they are processed (SPEC section 8)."""

from __future__ import annotations

from django.db import models


class WebhookDelivery(models.Model):
    """A webhook delivery, stored verbatim before it is processed."""

    class State(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"
        IGNORED = "ignored"

    source = models.CharField(max_length=16)
    guid = models.CharField(max_length=128, unique=True)
    event = models.CharField(max_length=64)
    action = models.CharField(max_length=64, blank=True, default="")
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["-received_at", "-id"], name="webhook_received"),
            models.Index(fields=["state", "next_attempt_at"], name="webhook_state_next"),
            models.Index(fields=["event", "-received_at"], name="webhook_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.event}:{self.guid}"
