"""`heartbeat_check` and the monitor's django-q2 entry points."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from monitoring import tasks
from monitoring.models import Notification
from ssot.sync import sync
from testing.monitor import T0, TIMEOUT, at, heartbeat, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]


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


def test_the_ack_scan_and_notification_tasks_return_what_they_did(store, time_machine):
    time_machine.move_to(T0, tick=False)
    send(store, when=T0)
    time_machine.move_to(at(301), tick=False)
    sync()

    scanned = tasks.ack_scan()
    sent = tasks.notifications_send()

    assert len(scanned["overdue"]) == 1 and len(scanned["raised"]) == 1
    assert sent == {"sent": 1, "retrying": 0, "failed": 0}
