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
    # The page it is about under PUBLIC_URL, sent after the body.
    link = models.CharField(max_length=600, blank=True, default="")
    # A reminder past the ladder's rung: NOTIFY_ESCALATE_URLS get it too.
    escalate = models.BooleanField(default=False)
    # A claim that has no row of its own (an escalation's n-th reminder): unique when set.
    key = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="notify_created"),
            models.Index(fields=["next_attempt_at"], name="notify_due", condition=Q(state="pending")),
            models.Index(fields=["escalation_msg_id", "created_at"], name="notify_escalation"),
        ]
        constraints = [models.UniqueConstraint(fields=["key"], condition=~Q(key=""), name="notify_key_once")]

    def __str__(self) -> str:
        return self.title


class ApprovalWait(models.Model):
    """A task's current wait for approval (one row per task): the claims of its notifications.

    Entering `awaiting_approval` claims `active` False -> True; a new version while waiting claims
    `blob_sha` old -> new; a reminder claims `reminders` n -> m; the expiry claims `expired_msg_id`
    "" -> its escalation. Each claim is a conditional UPDATE whose Notification is created in the same
    transaction, so two workers or a restart never notify twice.
    """

    task_id = models.CharField(max_length=128, unique=True)
    active = models.BooleanField(default=False)
    blob_sha = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    reminders = models.PositiveIntegerField(default=0)
    expired_msg_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["task_id"], name="approval_wait_active", condition=Q(active=True))]

    def __str__(self) -> str:
        return f"{self.task_id} ({'waiting' if self.active else 'idle'})"
