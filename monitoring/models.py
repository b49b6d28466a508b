"""Monitoring's own rows: the notification outbox (agents and escalations mirror the SSOT in ssot.models)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Notification(models.Model):
    """A message for the humans, sent through Apprise after commit and retried with backoff."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    title = models.CharField(max_length=250)
    body = models.TextField()
    escalation_msg_id = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Targets that have it (hashes, never URLs: those hold tokens); a retry goes only to the others.
    delivered_to = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notify_due", condition=Q(state="pending")),
        ]

    def __str__(self) -> str:
        return self.title
