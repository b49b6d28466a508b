"""factory-boy factories for every model (SSOT-consistent: a task's columns agree with its document)."""

from __future__ import annotations

import json

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.utils import timezone

from monitoring.models import Notification
from ssot import models
from ssot.stores.base import git_blob_sha
from webhooks.models import WebhookDelivery


def _blob(document: dict) -> str:
    return git_blob_sha(json.dumps(document, indent=2).encode())


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(*(Group.objects.get(name=name) for name in extracted))


class AgentUserFactory(UserFactory):
    """A user in the `agents` group, named after the agent."""

    username = "executor"  # type: ignore[assignment]  # a fixed value where the base has a sequence
    is_staff = False

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create:
            self.groups.add(*(Group.objects.get(name=name) for name in ["agents", *(extracted or [])]))


class TaskFactory(factory.django.DjangoModelFactory[models.Task]):
    class Meta:
        model = models.Task
        django_get_or_create = ("task_id",)

    task_id = factory.Sequence(lambda n: f"T-{n:04d}")
    title = factory.Faker("sentence", nb_words=5)
    status = "in_progress"
    risk_level = "medium"
    branch = factory.LazyAttribute(lambda t: f"feature/{t.task_id.lower()}")
    reject_count = 0
    last_writer = "coordinator"
    document = factory.LazyAttribute(
        lambda t: {
            "task_id": t.task_id,
            "title": t.title,
            "status": t.status,
            "risk_level": t.risk_level,
            "branch": t.branch,
            "reject_count": t.reject_count,
            "last_writer": t.last_writer,
        }
    )
    ssot_path = factory.LazyAttribute(lambda t: f"tasks/{t.task_id}.json")
    blob_sha = factory.LazyAttribute(lambda t: _blob(t.document))


class MessageFactory(factory.django.DjangoModelFactory[models.Message]):
    class Meta:
        model = models.Message

    msg_id = factory.Sequence(lambda n: f"task_result-T-0001-{1760000000000 + n}")
    protocol_version = "AMP/1.0"
    type = "task_result"
    sender = "executor"
    recipient = "coordinator"
    task_id = "T-0001"
    timestamp = factory.LazyFunction(timezone.now)
    requires_ack = False
    ack_timeout_sec = 0
    context_ref = factory.LazyFunction(list)
    payload = factory.LazyFunction(lambda: {"summary": "done"})
    envelope = factory.LazyAttribute(
        lambda m: {
            "msg_id": m.msg_id,
            "protocol_version": m.protocol_version,
            "type": m.type,
            "from": m.sender,
            "to": m.recipient,
            "task_id": m.task_id,
            "timestamp": m.timestamp.isoformat(),
            "requires_ack": m.requires_ack,
            "ack_timeout_sec": m.ack_timeout_sec,
            "context_ref": m.context_ref,
            "payload": m.payload,
        }
    )
    ssot_path = factory.LazyAttribute(lambda m: f"messages/{m.msg_id}.json")
    blob_sha = factory.LazyAttribute(lambda m: _blob(m.envelope))
    ack_state = factory.LazyAttribute(
        lambda m: models.Message.AckState.PENDING if m.requires_ack else models.Message.AckState.NOT_REQUIRED
    )


class AckFactory(factory.django.DjangoModelFactory[models.Ack]):
    class Meta:
        model = models.Ack

    msg_id = factory.Sequence(lambda n: f"task_dispatch-T-0001-{1760000000000 + n}")
    by = "executor"
    at = factory.LazyFunction(timezone.now)
    via = models.Ack.Via.FILE
    ssot_path = factory.LazyAttribute(lambda a: f"acks/{a.msg_id}.json")
    blob_sha = factory.Sequence(lambda n: f"{n:040x}")


class AgentFactory(factory.django.DjangoModelFactory[models.Agent]):
    class Meta:
        model = models.Agent
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"agent{n}")
    last_seen = factory.LazyFunction(timezone.now)
    last_seen_via = "message"
    status = models.Agent.Status.OK
    status_since = factory.LazyFunction(timezone.now)


class EscalationFactory(factory.django.DjangoModelFactory[models.Escalation]):
    class Meta:
        model = models.Escalation

    message = factory.SubFactory(
        MessageFactory,
        type="escalation",
        sender="system",
        recipient="admin",
        msg_id=factory.Sequence(lambda n: f"escalation-T-0001-{1770000000000 + n}"),
        payload=factory.LazyFunction(
            lambda: {
                "escalation_type": "heartbeat_timeout",
                "severity": "critical",
                "triggered_by": "system",
                "description": "executor has not written to the SSOT for 31 minutes",
            }
        ),
    )
    msg_id = factory.LazyAttribute(lambda e: e.message.msg_id)
    task_id = factory.LazyAttribute(lambda e: e.message.task_id)
    escalation_type = "heartbeat_timeout"
    severity = "critical"
    triggered_by = "system"
    description = "executor has not written to the SSOT for 31 minutes"
    subject = "agent:executor"
    created_at = factory.LazyFunction(timezone.now)


class AuditEntryFactory(factory.django.DjangoModelFactory[models.AuditEntry]):
    class Meta:
        model = models.AuditEntry

    timestamp = factory.LazyFunction(timezone.now)
    actor = "admin"
    action = "approved"
    task_id = "T-0001"
    detail = "looks good"
    raw = factory.LazyAttribute(
        lambda a: json.dumps(
            {
                "timestamp": a.timestamp.isoformat(),
                "actor": a.actor,
                "action": a.action,
                "task_id": a.task_id,
                "detail": a.detail,
            }
        )
    )
    in_ssot = False


class WebhookDeliveryFactory(factory.django.DjangoModelFactory[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery

    source = "github"
    guid = factory.Faker("uuid4")
    event = "ping"
    headers = factory.LazyFunction(lambda: {"X-GitHub-Event": "ping"})
    body = b'{"zen": "Keep it logically awesome."}'


class SyncStateFactory(factory.django.DjangoModelFactory[models.SyncState]):
    class Meta:
        model = models.SyncState
        django_get_or_create = ("backend", "repository", "branch")

    backend = "local"
    branch = "main"
    repository = "var/ssot.git"
    head = factory.Sequence(lambda n: f"{n:040x}")
    last_sync_at = factory.LazyFunction(timezone.now)
    last_success_at = factory.LazyFunction(timezone.now)


class SsotFileFactory(factory.django.DjangoModelFactory[models.SsotFile]):
    class Meta:
        model = models.SsotFile

    path = factory.Sequence(lambda n: f"tasks/T-{n:04d}.json")
    kind = models.SsotFile.Kind.TASK
    blob_sha = factory.Sequence(lambda n: f"{n:040x}")


class QuarantinedFileFactory(factory.django.DjangoModelFactory[models.QuarantinedFile]):
    class Meta:
        model = models.QuarantinedFile

    path = factory.Sequence(lambda n: f"tasks/broken-{n}.json")
    kind = models.SsotFile.Kind.TASK
    raw = b"{not json"
    blob_sha = factory.LazyAttribute(lambda q: git_blob_sha(q.raw))
    errors = factory.LazyFunction(lambda: [{"path": "", "message": "not valid JSON"}])
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    title = factory.Sequence(lambda n: f"[warning] ack_timeout: task_dispatch-T-{n:04d}-1760000000000")
    body = "executor has not acknowledged task_dispatch T-0001 from coordinator."
    escalation_msg_id = ""
    state = Notification.State.PENDING
    next_attempt_at = factory.LazyFunction(timezone.now)
