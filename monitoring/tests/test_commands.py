"""`heartbeat_check`, `setup_schedules` and the django-q2 entry points."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from monitoring import tasks
from monitoring.models import Notification
from monitoring.tests.kit import T0, TIMEOUT, at, configure, heartbeat, send
from ssot.models import AuditEntry, SyncState
from ssot.services import audit_queue
from ssot.stores.factory import reset_store
from ssot.sync import sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _monitor(settings, store):
    configure(settings)


def run(command: str, **options) -> str:
    out = StringIO()
    call_command(command, stdout=out, **options)
    return out.getvalue()


def test_heartbeat_check_prints_what_changed(store, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    dispatch = send(store, sender="coordinator", recipient="reviewer", msg_type="review_request", when=T0)
    time_machine.move_to(at(601), tick=False)
    sync()

    output = run("heartbeat_check")

    assert output.splitlines() == [
        "coordinator: unknown -> timeout",
        "executor: unknown -> timeout",
        f"ACK overdue: {dispatch['msg_id']}",
        "escalation written: escalation-agent-coordinator-1772442000000",
        "escalation written: escalation-agent-executor-1772442000000",
        f"escalation written: escalation-ack-{dispatch['msg_id']}",
        "notification queued: [critical] heartbeat_timeout: coordinator",
        "notification queued: [critical] heartbeat_timeout: executor",
        f"notification queued: [warning] ack_timeout: {dispatch['msg_id']}",
        "notifications: 3 sent, 0 to retry, 0 given up",
    ]
    assert run("heartbeat_check") == "no change\n"


def test_heartbeat_check_says_why_it_suspends_timeouts(store, time_machine):
    time_machine.move_to(T0, tick=False)
    sync()
    time_machine.move_to(at(TIMEOUT), tick=False)

    output = run("heartbeat_check", no_notify=True)

    assert "timeouts and ACK deadlines suspended: no successful sync for 300 s" in output
    assert Notification.objects.get().state == "pending"


def test_setup_schedules_registers_every_schedule_once(settings):
    settings.HEARTBEAT_INTERVAL_SEC, settings.SSOT_POLL_SEC, settings.AUDIT_FLUSH_SEC = 60, 60, 120

    first = run("setup_schedules")
    second = run("setup_schedules")

    assert sorted(Schedule.objects.values_list("name", "func", "schedule_type", "minutes")) == [
        ("agentos: SSOT poll", "monitoring.tasks.ssot_poll", "I", 1),
        ("agentos: audit flush", "monitoring.tasks.audit_flush", "I", 2),
        ("agentos: heartbeat check", "monitoring.tasks.heartbeat_check", "I", 1),
        ("agentos: notifications", "monitoring.tasks.notifications_send", "I", 1),
        ("agentos: prune", "monitoring.tasks.prune", "I", 1440),
        ("agentos: webhook retries", "monitoring.tasks.webhook_retries", "I", 1),
    ]
    assert first.count("created: ") == 6
    assert second.count("unchanged: ") == 6
    assert "notifications every 1 min (every 30 s, rounded up)" in second


def test_setup_schedules_follows_the_settings(settings):
    run("setup_schedules")
    settings.HEARTBEAT_INTERVAL_SEC = 150
    before = Schedule.objects.get(name="agentos: heartbeat check")

    output = run("setup_schedules")

    after = Schedule.objects.get(name="agentos: heartbeat check")
    assert "updated: agentos: heartbeat check every 3 min (every 150 s, rounded up)" in output
    assert (after.pk, after.minutes, after.next_run) == (before.pk, 3, before.next_run)
    assert Schedule.objects.count() == 6


def test_the_poll_task_syncs_and_reports_a_failure_without_raising(store, ssot_path):
    heartbeat(store, "executor", T0)

    assert tasks.ssot_poll()["mode"] == "noop"
    ssot_path.rename(ssot_path.with_name("away.git"))
    reset_store()
    failed = tasks.ssot_poll()
    assert "SSOT unavailable" in failed["error"]
    assert SyncState.objects.get().consecutive_errors == 1


def test_the_audit_flush_task_commits_queued_lines(store):
    audit_queue(actor="system", action="webhook", detail="ping")

    assert tasks.audit_flush() == 1
    assert AuditEntry.objects.get(action="webhook").in_ssot


def test_the_webhook_retry_task_runs_the_due_deliveries():
    assert tasks.webhook_retries() == 0


def test_the_ack_scan_and_notification_tasks_return_what_they_did(store, time_machine):
    time_machine.move_to(T0, tick=False)
    send(store, when=T0)
    time_machine.move_to(at(301), tick=False)
    sync()

    scanned = tasks.ack_scan()
    sent = tasks.notifications_send()

    assert len(scanned["overdue"]) == 1 and len(scanned["raised"]) == 1
    assert sent == {"sent": 1, "retrying": 0, "failed": 0}
