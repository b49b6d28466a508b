"""A sync that fails on something other than the SSOT is recorded, seen everywhere, escalated once."""

from __future__ import annotations

import pytest

from core.errors import SyncFailed
from monitoring import services
from monitoring.models import Notification
from ssot.models import Escalation, Task
from ssot.sync import sync, sync_state
from testing.api import jwt_client, make_user
from testing.content import commit, task_doc
from testing.dbfaults import table_missing
from testing.monitor import T0, at, audit_lines, check, ssot_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings", "api_settings")]

EPISODE = "escalation-syncfail-" + str(int(T0.timestamp() * 1000))


def failing_sync() -> SyncFailed:
    with pytest.raises(SyncFailed) as failed:
        sync()
    return failed.value


def test_a_failing_sync_is_recorded_seen_escalated_once_and_resolved(store, client, time_machine):
    time_machine.move_to(T0, tick=False)
    sync()
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    staff = jwt_client(make_user("staff"))

    with table_missing("ssot_task"):
        time_machine.move_to(at(10), tick=False)
        error = failing_sync()
        state = sync_state()
        assert state.consecutive_errors == 1
        assert state.last_error_at == at(10)
        assert "tasks/T-1.json" in state.last_error and "ssot_task" in state.last_error
        assert error.detail == f"Sync failed: {state.last_error}"

        health = client.get("/healthz")
        assert (health.status_code, health.json()["status"]) == (200, "degraded")
        assert health.json()["checks"]["ssot_sync"] == "failing"
        assert client.get("/healthz?ready=1").status_code == 503
        api = staff.get("/api/sync/").json()
        assert (api["consecutive_errors"], api["last_error"]) == (1, state.last_error)

        first = services.run_checks()
        assert first.raised == [] and "the last 1 sync(s) failed" in first.suppressed
        assert not Notification.objects.exists()

        failing_sync()
        second = check(time_machine, at(70), poll=False)
        third = check(time_machine, at(80), poll=False)

    assert second.raised == [EPISODE] and third.raised == [] and third.notified == []
    assert list(Notification.objects.values_list("title", flat=True)) == [
        "[critical] ssot_sync_failed: the sync fails"
    ]
    escalation = Escalation.objects.get()
    assert (escalation.msg_id, escalation.escalation_type, escalation.severity) == (
        EPISODE,
        "ssot_sync_failed",
        "critical",
    )
    assert "tasks/T-1.json" in ssot_json(store, f"messages/{EPISODE}.json")["payload"]["description"]

    back = check(time_machine, at(90))  # the poll succeeds, then the check
    assert Task.objects.filter(task_id="T-1").exists()
    assert sync_state().consecutive_errors == 0
    assert client.get("/healthz?ready=1").json()["checks"]["ssot_sync"] == "ok"
    assert back.resolved == [EPISODE]
    assert Escalation.objects.get().status == "resolved"
    assert [line["action"] for line in audit_lines(store) if line["msg_id"] == EPISODE] == [
        "escalation",
        "escalation_resolved",
    ]
    recovered = Notification.objects.order_by("id").last()
    assert recovered.title == "[recovered] ssot_sync_failed: the sync is healthy again"


# Threads on their own connections must see the rows.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_monitors_checking_at_once_raise_the_failure_once(store, time_machine):
    from testing.monitor import concurrently

    time_machine.move_to(T0, tick=False)
    sync()
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    with table_missing("ssot_task"):
        failing_sync()
        failing_sync()
    # The table is back but no sync has run yet: the state still says failing.
    reports = concurrently(services.run_checks)
    assert sorted(len(report.raised) for report in reports) == [0, 1]
    assert Notification.objects.filter(escalation_msg_id=EPISODE).count() == 1


def test_a_stale_episode_is_not_escalated_again_as_failed(store, time_machine):
    time_machine.move_to(T0, tick=False)
    sync()
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    stale = check(time_machine, at(400), poll=False)
    assert stale.raised == ["escalation-sync-" + str(int(T0.timestamp() * 1000))]
    with table_missing("ssot_task"):
        failing_sync()
        failing_sync()
        again = check(time_machine, at(410), poll=False)
    assert again.raised == [] and again.notified == []
    assert Escalation.objects.count() == 1


def test_a_resync_asked_through_the_api_that_fails_is_a_503_with_the_reason(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    operator = jwt_client(make_user("operator"))
    with table_missing("ssot_task"):
        response = operator.post("/api/sync/", {"full": True}, format="json")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "sync_failed"
    assert body["detail"].startswith("Sync failed: mirroring tasks/T-1.json: ")
    assert sync_state().consecutive_errors == 1
