"""Our outage is not theirs: while the mirror cannot be trusted, nobody times out; one escalation says why."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from core.errors import SsotUnavailable
from monitoring import services
from monitoring.models import Notification
from ssot.models import Agent, Escalation, Message, SyncState
from ssot.stores.factory import reset_store
from ssot.sync import sync
from testing.monitor import (
    STALE,
    T0,
    TIMEOUT,
    at,
    audit_lines,
    check,
    heartbeat,
    send,
    ssot_json,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]

OUTAGE = "escalation-sync-" + str(int(T0.timestamp() * 1000))


@contextmanager
def ssot_down(ssot_path):
    """The SSOT cannot be read: its repository is gone for a while (a fresh store sees it gone)."""
    away = ssot_path.with_name("away.git")
    ssot_path.rename(away)
    reset_store()
    try:
        yield
    finally:
        away.rename(ssot_path)
        reset_store()


def failed_poll(time_machine, when) -> None:
    time_machine.move_to(when, tick=False)
    with pytest.raises(SsotUnavailable):
        sync()


def test_an_unreachable_ssot_suppresses_timeouts_and_is_notified_at_once(store, ssot_path, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    with ssot_down(ssot_path):
        failed_poll(time_machine, at(TIMEOUT + 1))
        report = check(time_machine, at(TIMEOUT + 1), poll=False)

    assert Agent.objects.get(name="executor").status == "monitor"
    assert report.raised == [] and report.failed_writes == [OUTAGE]
    assert "the SSOT head cannot be read" in report.suppressed
    assert "the last 1 sync(s) failed" in report.suppressed
    [notification] = Notification.objects.all()
    assert notification.title == "[critical] ssot_sync_stale: monitoring is blind"
    assert notification.escalation_msg_id == OUTAGE
    assert not Escalation.objects.exists()


def test_the_outage_escalation_is_written_when_the_ssot_answers_then_resolved(store, ssot_path, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    with ssot_down(ssot_path):
        failed_poll(time_machine, at(TIMEOUT + 1))
        check(time_machine, at(TIMEOUT + 1), poll=False)
        failed_poll(time_machine, at(TIMEOUT + 11))
        during = check(time_machine, at(TIMEOUT + 11), poll=False)

    after = check(time_machine, at(TIMEOUT + 60))

    assert during.failed_writes == [] and during.notified == []  # claimed once, by the first check
    assert OUTAGE in after.raised and OUTAGE in after.resolved
    envelope = ssot_json(store, f"messages/{OUTAGE}.json")
    payload = envelope["payload"]
    assert (envelope["from"], envelope["to"], envelope["task_id"]) == ("system", "admin", "sync")
    assert (payload["escalation_type"], payload["severity"]) == ("ssot_sync_stale", "critical")
    assert payload["system_state_snapshot"]["subject"] == "sync"
    assert payload["system_state_snapshot"]["last_success_at"] == "2026-03-02T09:00:00.000Z"
    assert envelope["timestamp"] == "2026-03-02T09:05:01.000Z"
    escalation = Escalation.objects.get(msg_id=OUTAGE)
    assert (escalation.subject, escalation.status, escalation.resolved_by) == ("sync", "resolved", "system")
    assert escalation.resolution.startswith("recovered: the SSOT sync is healthy again")
    assert [line["action"] for line in audit_lines(store) if line["msg_id"] == OUTAGE] == [
        "escalation",
        "escalation_resolved",
    ]
    # Trusted again: the silent agent is timed out now, not before.
    assert Agent.objects.get(name="executor").status == "timeout"
    assert Escalation.objects.filter(escalation_type="heartbeat_timeout").count() == 1
    assert list(Notification.objects.order_by("id").values_list("title", flat=True)) == [
        "[critical] ssot_sync_stale: monitoring is blind",
        "[critical] heartbeat_timeout: executor",
        "[recovered] ssot_sync_stale: the sync is healthy again",
    ]


def test_one_failed_poll_suppresses_without_escalating(store, ssot_path, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    check(time_machine, at(TIMEOUT - 5))
    with ssot_down(ssot_path):
        failed_poll(time_machine, at(TIMEOUT + 1))
    report = check(time_machine, at(TIMEOUT + 2), poll=False)

    assert "the last 1 sync(s) failed" in report.suppressed
    assert Agent.objects.get(name="executor").status == "monitor"
    assert not Notification.objects.exists()


def test_a_mirror_nobody_polls_is_stale_and_says_so_once(store, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)

    reports = [check(time_machine, at(TIMEOUT + 1 + 10 * n), poll=False) for n in range(3)]

    assert all("no successful sync for" in report.suppressed for report in reports)
    assert reports[0].raised == [OUTAGE] and reports[1].raised == reports[2].raised == []
    assert Agent.objects.get(name="executor").status == "monitor"
    assert Escalation.objects.get().escalation_type == "ssot_sync_stale"
    assert Notification.objects.count() == 1

    back = check(time_machine, at(TIMEOUT + 40))

    assert back.resolved == [OUTAGE] and back.suppressed == ""
    assert Escalation.objects.get(msg_id=OUTAGE).status == "resolved"


def test_acks_are_not_called_late_while_the_mirror_is_stale(store, time_machine):
    time_machine.move_to(T0, tick=False)
    dispatch = send(store, when=T0)

    report = check(time_machine, at(301), poll=False)

    assert report.overdue == []
    assert Message.objects.get(msg_id=dispatch["msg_id"]).ack_state == "pending"


def test_an_agent_already_timed_out_stays_timed_out_during_an_outage(store, ssot_path, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    check(time_machine, at(TIMEOUT + 1))
    with ssot_down(ssot_path):
        failed_poll(time_machine, at(TIMEOUT + 5))
        report = check(time_machine, at(TIMEOUT + 5), poll=False)

    assert report.changes == []
    assert Agent.objects.get(name="executor").status == "timeout"


def test_sync_health_reads_the_failure_count_and_the_age(store, time_machine):
    time_machine.move_to(T0, tick=False)
    sync()
    state = SyncState.objects.get()

    assert services.sync_stale_after().total_seconds() == STALE
    assert services.sync_health(state, at(STALE)).trusted
    stale = services.sync_health(state, at(STALE + 1))
    assert (stale.trusted, stale.escalate, stale.reason) == (False, True, "no successful sync for 211 s")
    state.consecutive_errors, state.last_error = 2, "SSOT unavailable: boom"
    unreadable = services.sync_health(state, at(1))
    assert (unreadable.trusted, unreadable.escalate, unreadable.kind) == (False, False, "ssot_sync_stale")
    assert unreadable.reason == "the last 2 sync(s) failed: SSOT unavailable: boom"
    # The SSOT answers but the sync itself failed twice in a row: our own failure, escalated at once.
    state.last_error = "mirroring tasks/T-1.json: OperationalError: no such table"
    failing = services.sync_health(state, at(1))
    assert (failing.trusted, failing.escalate, failing.kind) == (False, True, "ssot_sync_failed")
    state.consecutive_errors = 1
    assert not services.sync_health(state, at(1)).escalate
