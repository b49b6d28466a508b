"""Rows mirrored from the SSOT, and the bookkeeping that keeps the mirror true.

Every row here is written only by ssot/services.py and ssot/sync.py (and monitoring's services,
which call them). Models hold data and constants, never behaviour that writes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from ssot.fields import MirroredJSONField


class RiskLevel(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Task(models.Model):
    """A task document `tasks/{task_id}.json`, kept whole in `document` beside indexed columns."""

    AWAITING_APPROVAL = "awaiting_approval"

    task_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=64)
    risk_level = models.CharField(max_length=16, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    branch = models.CharField(max_length=255, blank=True, default="")
    assignee = models.CharField(max_length=128, blank=True, default="")
    # 64-bit, as SPEC section 4 bounds every integer that becomes a column.
    reject_count = models.PositiveBigIntegerField(default=0)
    last_writer = models.CharField(max_length=128, blank=True, default="")
    document = MirroredJSONField()
    ssot_path = models.CharField(max_length=300, unique=True)
    blob_sha = models.CharField(max_length=64)
    # From webhooks, keyed by branch: {check_name: {"state", "conclusion", "url", "at", "source"}}.
    ci_status = MirroredJSONField(default=dict, blank=True)
    ci_state = models.CharField(max_length=16, blank=True, default="")
    pr_number = models.PositiveBigIntegerField(null=True, blank=True)
    pr_state = models.CharField(max_length=32, blank=True, default="")
    pr_url = models.URLField(max_length=500, blank=True, default="")
    pr_title = models.CharField(max_length=500, blank=True, default="")
    # The task reached approved/rejected in a commit without a sealed decision line of the control plane
    # (ssot.seals.decision_seal): the commit, its author; the file is not changed (SPEC section 5).
    decision_unverified = models.BooleanField(default=False)
    decision_unverified_in = models.CharField(max_length=64, blank=True, default="")
    decision_unverified_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        permissions = [
            ("approve_task", "Can approve or reject a task"),
            ("override_task", "Can override a task's status and trigger a resync"),
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="task_status_updated"),
            models.Index(fields=["risk_level"], name="task_risk"),
            models.Index(fields=["branch"], name="task_branch"),
            models.Index(fields=["ci_state"], name="task_ci_state"),
            models.Index(fields=["-updated_at", "-id"], name="task_updated"),
        ]

    def __str__(self) -> str:
        return self.task_id


class TaskApprovals(models.Model):
    """`approvals/{task_id}.json`: approvals of one task version (`task_blob_sha`) below the count."""

    task_id = models.CharField(max_length=128, unique=True)
    task_blob_sha = models.CharField(max_length=64)
    # [{"by", "at", "reason"}], in the order given.
    approvals = MirroredJSONField(default=list)
    ssot_path = models.CharField(max_length=300, unique=True)
    blob_sha = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "task approvals"

    def __str__(self) -> str:
        return self.task_id


class ApprovalPolicy(models.Model):
    """The last valid `policy/approvals.json`: the policy in force; no row means the built-in default.

    An invalid file is quarantined and leaves this row as it was: the previous valid policy stays in force.
    """

    ssot_path = models.CharField(max_length=300, unique=True)
    document = MirroredJSONField()
    blob_sha = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "approval policy"

    def __str__(self) -> str:
        return f"{self.ssot_path} @ {self.blob_sha[:10]}"


class Message(models.Model):
    """An AMP/1.0 envelope `messages/{msg_id}.json` with its ACK state."""

    class AckState(models.TextChoices):
        NOT_REQUIRED = "not_required"
        PENDING = "pending"
        ACKED = "acked"
        OVERDUE = "overdue"

    msg_id = models.CharField(max_length=128, unique=True)
    protocol_version = models.CharField(max_length=16)
    type = models.CharField(max_length=32)
    sender = models.CharField(max_length=32)
    recipient = models.CharField(max_length=32)
    task_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()
    requires_ack = models.BooleanField(default=False)
    ack_timeout_sec = models.PositiveBigIntegerField(default=0)
    context_ref = MirroredJSONField(default=list, blank=True)
    payload = MirroredJSONField(default=dict)
    envelope = MirroredJSONField()
    ssot_path = models.CharField(max_length=300, unique=True)
    blob_sha = models.CharField(max_length=64)
    ack_state = models.CharField(max_length=16, choices=AckState.choices, default=AckState.NOT_REQUIRED)
    ack_deadline = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["-timestamp", "-id"], name="msg_time"),
            models.Index(fields=["task_id", "timestamp"], name="msg_task_time"),
            models.Index(fields=["type", "-timestamp"], name="msg_type_time"),
            models.Index(fields=["sender", "-timestamp"], name="msg_sender_time"),
            models.Index(fields=["recipient", "-timestamp"], name="msg_recipient_time"),
            # The ACK scan: pending messages by deadline, and nothing else.
            models.Index(
                fields=["ack_deadline"],
                name="msg_ack_pending_deadline",
                condition=Q(ack_state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return self.msg_id


class Ack(models.Model):
    """An acknowledgement of a message by its addressee."""

    class Via(models.TextChoices):
        FILE = "file", "acks/ file"
        CONTEXT_REF = "context_ref", "later message"
        API = "api", "API"

    msg_id = models.CharField(max_length=128, unique=True)
    by = models.CharField(max_length=32)
    at = models.DateTimeField()
    via = models.CharField(max_length=16, choices=Via.choices)
    source_msg_id = models.CharField(max_length=128, blank=True, default="")
    # NULL for an ACK by a later message (no file of its own); unique among ACK files.
    ssot_path = models.CharField(max_length=300, null=True, blank=True, unique=True)
    blob_sha = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="ack_time"),
            models.Index(fields=["by", "-at"], name="ack_by_time"),
        ]

    def __str__(self) -> str:
        return f"{self.msg_id} by {self.by}"


class Agent(models.Model):
    """A monitored agent: when it last wrote to the SSOT and its health."""

    class Status(models.TextChoices):
        UNKNOWN = "unknown"
        OK = "ok"
        MONITOR = "monitor"
        TIMEOUT = "timeout"

    name = models.CharField(max_length=128, unique=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_seen_via = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    status_since = models.DateTimeField(null=True, blank=True)
    # The heartbeat_timeout escalation of the current episode, claimed before it is written.
    timeout_msg_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status"], name="agent_status")]

    def __str__(self) -> str:
        return self.name


class Escalation(models.Model):
    """An escalation message and its handling by the admin (state changes are audit lines in the SSOT)."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="escalation")
    msg_id = models.CharField(max_length=128, unique=True)
    task_id = models.CharField(max_length=128)
    escalation_type = models.CharField(max_length=64)
    severity = models.CharField(max_length=16)
    triggered_by = models.CharField(max_length=64)
    description = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # What the escalation is about, for the monitors' exactly-once claims: an agent or a message.
    subject = models.CharField(max_length=160, blank=True, default="")
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="esc_created"),
            models.Index(fields=["status", "-created_at"], name="esc_status_created"),
            models.Index(fields=["escalation_type", "subject"], name="esc_type_subject"),
        ]

    def __str__(self) -> str:
        return self.msg_id


class AuditEntry(models.Model):
    """One line of the audit log; `in_ssot` is False while it waits for the batched flush."""

    timestamp = models.DateTimeField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    task_id = models.CharField(max_length=128, blank=True, default="")
    msg_id = models.CharField(max_length=128, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    # The exact JSON line as it stands (or will stand) in the SSOT file, extra fields included.
    raw = models.TextField()
    in_ssot = models.BooleanField(default=False)
    # NULL, not "", while queued: the unique (ssot_path, line_no) pair must not collide for queued lines.
    ssot_path = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001
    line_no = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A mirrored line a later commit removed or changed (the log is append-only): the row is kept, out of
    # its file (ssot_path and line_no NULL, where it stood in rewritten_path/line), with that commit.
    rewritten_at = models.DateTimeField(null=True, blank=True)
    rewritten_in = models.CharField(max_length=64, blank=True, default="")
    rewritten_by = models.CharField(max_length=255, blank=True, default="")
    rewritten_how = models.CharField(max_length=16, blank=True, default="")
    rewritten_path = models.CharField(max_length=300, blank=True, default="")
    rewritten_line = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "audit entries"
        constraints = [
            models.UniqueConstraint(fields=["ssot_path", "line_no"], name="audit_unique_line"),
        ]
        indexes = [
            models.Index(fields=["-timestamp"], name="audit_time"),
            models.Index(fields=["task_id", "-timestamp"], name="audit_task_time"),
            models.Index(fields=["actor", "-timestamp"], name="audit_actor_time"),
            models.Index(fields=["action", "-timestamp"], name="audit_action_time"),
            models.Index(fields=["msg_id"], name="audit_msg"),
            models.Index(fields=["created_at"], name="audit_unflushed", condition=Q(in_ssot=False)),
            models.Index(fields=["rewritten_in"], name="audit_rewritten", condition=~Q(rewritten_in="")),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"


class SyncState(models.Model):
    """Where the mirror stands: which head of which backend and branch it reflects."""

    backend = models.CharField(max_length=16)
    branch = models.CharField(max_length=255)
    repository = models.CharField(max_length=500, blank=True, default="")
    head = models.CharField(max_length=64, blank=True, default="")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_errors = models.PositiveIntegerField(default=0)
    last_report = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["backend", "repository", "branch"], name="sync_state_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.backend}:{self.repository}@{self.branch}"


class SsotFile(models.Model):
    """The sync's ledger: the blob SHA mirrored for every SSOT path, so an unchanged file is never read."""

    class Kind(models.TextChoices):
        TASK = "task"
        MESSAGE = "message"
        ACK = "ack"
        HEARTBEAT = "heartbeat"
        AUDIT = "audit"
        APPROVALS = "approvals"
        POLICY = "policy"

    path = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    blob_sha = models.CharField(max_length=64)
    quarantined = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.path


class QuarantinedFile(models.Model):
    """An SSOT file that failed validation, kept verbatim with every error."""

    path = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=16, choices=SsotFile.Kind.choices)
    blob_sha = models.CharField(max_length=64)
    raw = models.BinaryField()
    errors = models.JSONField(default=list)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [models.Index(fields=["-last_seen", "-id"], name="quarantine_seen")]

    def __str__(self) -> str:
        return self.path


class WriteBudget(models.Model):
    """The content-creating requests made to one GitHub repository in the last hour, shared by every
    process: `spent` holds their times (seconds since the epoch, oldest first), so `ssot.budget` can
    keep any 60 s window under GITHUB_WRITES_PER_MIN and any hour under GITHUB_WRITES_PER_HOUR, as GitHub
    counts, and `next_at` spaces the requests evenly over the minute. `paused_until` holds back every
    writer while GitHub's own rate limit is in force.
    """

    repository = models.CharField(max_length=500, unique=True)
    spent = models.JSONField(default=list)
    # When the next request is due, pacing the minute's budget evenly (GCRA's theoretical arrival time).
    next_at = models.FloatField(default=0.0)
    paused_until = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.repository}: {len(self.spent)} requests in the last hour"


class ApiKey(models.Model):
    """A long-lived bearer credential `agos_<key_id>_<secret>` (SPEC section 7); only a hash is kept.

    The secret is 256 random bits, so one SHA-256 is enough to make the stored hash useless to a thief
    (docs/security.md): a slow password hasher would only slow every request down.
    """

    key_id = models.CharField(max_length=16, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    secret_sha256 = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Written at most once a minute (ssot.credentials.LAST_USED_EVERY).
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="apikey_created")]
        verbose_name = "API key"
        permissions = [("manage_keys", "Can list, create and revoke the API keys of every user")]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.name})"


class TokenCutoff(models.Model):
    """When a user's JWTs were last invalidated (password change, deactivation, "sign out everywhere").

    Tokens carry the cutoff they were issued under (claim `auth_epoch`); any other value is refused.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="token_cutoff"
    )
    valid_after = models.DateTimeField()
    reason = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id} after {self.valid_after:%Y-%m-%d %H:%M:%S}"
