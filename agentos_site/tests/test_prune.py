"""prune (SPEC section 15): database-only rows go once old (webhook deliveries, notifications, django-q2's
task records), what is pending or mirrors the SSOT stays, and the daily schedule runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Failure, Schedule, Success
from django_q.models import Task as QTask

from agentos_site import tasks
from agentos_site.prune import prune
from monitoring.models import Notification
from ssot.models import Agent, AuditEntry, Escalation, Message, QuarantinedFile, SsotFile, Task
from testing.factories import (
    AgentFactory,
    AuditEntryFactory,
    EscalationFactory,
    NotificationFactory,
    QuarantinedFileFactory,
    SsotFileFactory,
    TaskFactory,
    WebhookDeliveryFactory,
)
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
State = WebhookDelivery.State


def delivery(state: str, *, processed: bool = True, retry: bool = False) -> WebhookDelivery:
    now = timezone.now()
    return WebhookDeliveryFactory.create(
        state=state,
        processed_at=now if processed else None,
        next_attempt_at=now + timedelta(seconds=30) if retry else None,
    )


def notification(state: str) -> Notification:
    now = timezone.now()
    return NotificationFactory.create(state=state, sent_at=now if state == Notification.State.SENT else None)


def task_record(*, success: bool, func: str = "monitoring.tasks.heartbeat_check", stopped: datetime) -> QTask:
    return QTask.objects.create(
        id=f"{func[-8:]}{stopped.timestamp():.0f}{success:d}"[-32:],
        name=f"{func}-{stopped.timestamp()}",
        func=func,
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=success,
    )


def _remaining(model, **filters) -> int:
    return model.objects.filter(**filters).count()


def test_deliveries_and_notifications_older_than_30_days_go_and_the_rest_stays(time_machine):
    time_machine.move_to(T0, tick=False)
    old = {
        "done": delivery(State.DONE),
        "ignored": delivery(State.IGNORED),
        "given_up": delivery(State.FAILED, processed=False),
        "retrying": delivery(State.FAILED, processed=False, retry=True),
        "pending": delivery(State.PENDING, processed=False),
        "processing": delivery(State.PROCESSING, processed=False, retry=True),
    }
    old_sent, old_failed, old_pending = (notification(state) for state in ("sent", "failed", "pending"))
    time_machine.move_to(T0 + timedelta(days=29), tick=False)
    recent_done = delivery(State.DONE)
    recent_sent = notification("sent")

    time_machine.move_to(T0 + timedelta(days=30, seconds=1), tick=False)
    report = prune()

    assert (report.webhook_deliveries, report.notifications) == (3, 2)
    kept = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert kept == {old[name].pk for name in ("retrying", "pending", "processing")} | {recent_done.pk}
    assert set(Notification.objects.values_list("pk", flat=True)) == {old_pending.pk, recent_sent.pk}
    assert not Notification.objects.filter(pk__in=[old_sent.pk, old_failed.pk]).exists()


def test_nothing_is_pruned_before_its_age(time_machine):
    time_machine.move_to(T0, tick=False)
    delivery(State.DONE)
    notification("sent")
    time_machine.move_to(T0 + timedelta(days=29, hours=23), tick=False)
    assert prune().as_dict() == {
        "webhook_deliveries": 0,
        "notifications": 0,
        "task_successes": 0,
        "task_failures": 0,
    }


def test_the_ages_follow_the_settings(time_machine, settings):
    settings.PRUNE_WEBHOOKS_DAYS, settings.PRUNE_NOTIFICATIONS_DAYS = 7, 90
    time_machine.move_to(T0, tick=False)
    delivery(State.DONE)
    notification("failed")
    time_machine.move_to(T0 + timedelta(days=8), tick=False)
    report = prune()
    assert (report.webhook_deliveries, report.notifications) == (1, 0)
    time_machine.move_to(T0 + timedelta(days=91), tick=False)
    assert prune().notifications == 1


def test_more_rows_than_a_batch_are_all_pruned(time_machine, monkeypatch):
    from core import batches

    monkeypatch.setattr(batches, "BATCH", 7)
    time_machine.move_to(T0, tick=False)
    for _ in range(20):
        delivery(State.DONE)
    time_machine.move_to(T0 + timedelta(days=31), tick=False)
    assert prune().webhook_deliveries == 20
    assert WebhookDelivery.objects.count() == 0


def test_nothing_of_the_ssot_is_pruned(time_machine):
    time_machine.move_to(T0, tick=False)
    TaskFactory()
    EscalationFactory()
    AuditEntryFactory(in_ssot=True, ssot_path="audit/2026/01/05.jsonl", line_no=1)
    AgentFactory(name="executor")
    SsotFileFactory()
    QuarantinedFileFactory()
    counts: dict[Any, int] = {
        model: model.objects.count() for model in (Task, Message, Escalation, AuditEntry, Agent, SsotFile)
    }
    counts[QuarantinedFile] = QuarantinedFile.objects.count()
    time_machine.move_to(T0 + timedelta(days=3650), tick=False)
    prune()
    assert {model: model.objects.count() for model in counts} == counts


def test_django_q_failures_are_kept_to_the_newest_ones(settings):
    settings.PRUNE_TASK_FAILURES_KEEP = 3
    for minute in range(5):
        task_record(success=False, stopped=T0 + timedelta(minutes=minute))
    assert prune().task_failures == 2
    assert sorted(Failure.objects.values_list("stopped", flat=True)) == [
        T0 + timedelta(minutes=minute) for minute in (2, 3, 4)
    ]


def test_django_q_successes_are_trimmed_to_the_save_limit_per_function(monkeypatch):
    monkeypatch.setattr(Conf, "SAVE_LIMIT", 2)
    monkeypatch.setattr(Conf, "SAVE_LIMIT_PER", "func")
    for minute in range(4):
        task_record(success=True, stopped=T0 + timedelta(minutes=minute))
    task_record(success=True, func="agentos_site.tasks.prune", stopped=T0)
    assert prune().task_successes == 2
    assert _remaining(Success, func="monitoring.tasks.heartbeat_check") == 2
    assert _remaining(Success, func="agentos_site.tasks.prune") == 1
    assert min(
        Success.objects.filter(func="monitoring.tasks.heartbeat_check").values_list("stopped", flat=True)
    ) == (T0 + timedelta(minutes=2))


def test_the_settings_bound_django_q_successes_per_function():
    from django.conf import settings

    assert settings.Q_CLUSTER["save_limit"] == 250
    assert settings.Q_CLUSTER["save_limit_per"] == "func"


def test_the_command_prints_what_it_pruned(time_machine):
    time_machine.move_to(T0, tick=False)
    delivery(State.IGNORED)
    time_machine.move_to(T0 + timedelta(days=31), tick=False)
    out = StringIO()
    call_command("prune", stdout=out)
    assert out.getvalue().strip() == (
        "pruned 1 webhook deliveries, 0 notifications, 0 task successes, 0 task failures"
    )


def test_the_daily_schedule_runs_the_prune_task(time_machine):
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="agentos: prune")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "agentos_site.tasks.prune",
        "I",
        24 * 60,
    )
    time_machine.move_to(T0, tick=False)
    notification("sent")
    time_machine.move_to(T0 + timedelta(days=31), tick=False)
    assert tasks.prune()["notifications"] == 1
    assert Notification.objects.count() == 0
