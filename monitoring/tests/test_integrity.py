"""The admin is told (issue 15): one `audit_rewritten` escalation per commit that rewrote mirrored audit
lines, naming its author; one `decision_unverified` escalation per task decided outside the control plane;
none for decisions made through it. On the local store, as the monitor's other tests (the clock stands
still here, which GitHub's write budget would not survive); ssot/tests/test_audit_integrity.py covers both
stores."""

from __future__ import annotations

import pytest

from monitoring.envelopes import audit_escalation_id, decision_escalation_id
from ssot import services
from ssot.models import AuditEntry, Escalation, Task
from ssot.sync import sync
from testing.api import make_user
from testing.content import commit, task_doc
from testing.monitor import T0, at, check

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings", "api_settings")]


def integrity_escalations() -> list[Escalation]:
    return list(
        Escalation.objects.filter(escalation_type__in=["audit_rewritten", "decision_unverified"]).order_by(
            "pk"
        )
    )


def approve_t1(store) -> str:
    """T-1 approved by alice through the control plane; the path of the audit file that records it."""
    make_user("approver", username="alice")
    commit(store, {"tasks/T-1.json": task_doc("T-1", "awaiting_approval")})
    sync()
    services.task_approve(task_id="T-1", actor="alice")
    sync()
    return AuditEntry.objects.get(action="approved").ssot_path


def without(store, path: str, needle: str) -> bytes:
    text = store.read(store.entry(store.head(), path).sha).decode()
    return "".join(line + "\n" for line in text.splitlines() if needle not in line).encode()


def test_an_erased_approval_line_is_escalated_once_naming_the_author(store, time_machine):
    time_machine.move_to(T0, tick=False)
    path = approve_t1(store)
    head = commit(store, {path: without(store, path, '"action": "approved"')}, author="executor")

    first = check(time_machine, at(10))
    again = check(time_machine, at(70))

    [escalation] = integrity_escalations()
    assert escalation.msg_id == audit_escalation_id(head)
    assert (escalation.escalation_type, escalation.severity) == ("audit_rewritten", "critical")
    assert escalation.subject == f"commit:{head}"
    assert "executor" in escalation.description and head in escalation.description
    assert escalation.message.payload["system_state_snapshot"]["lines"][0]["action"] == "approved"
    assert first.raised == [escalation.msg_id] and again.raised == []


def test_two_rewriting_commits_are_two_escalations_however_many_lines(store, time_machine):
    time_machine.move_to(T0, tick=False)
    path = approve_t1(store)
    services.task_override(task_id="T-1", actor="alice", reason="reopen", status="in_progress")
    sync()
    one = commit(store, {path: without(store, path, '"action": "approved"')}, author="executor")
    check(time_machine, at(10))
    two = commit(store, {path: without(store, path, '"action": "override"')}, author="reviewer")
    check(time_machine, at(70))

    assert [e.msg_id for e in integrity_escalations()] == [audit_escalation_id(one), audit_escalation_id(two)]
    assert "reviewer" in integrity_escalations()[1].description


def test_an_agents_approved_push_is_escalated_once(store, time_machine):
    time_machine.move_to(T0, tick=False)
    commit(store, {"tasks/T-2.json": task_doc("T-2", "awaiting_approval")})
    sync()
    commit(store, {"tasks/T-2.json": task_doc("T-2", "approved")}, author="executor")

    check(time_machine, at(10))
    check(time_machine, at(70))

    task = Task.objects.get(task_id="T-2")
    [escalation] = integrity_escalations()
    assert escalation.msg_id == decision_escalation_id("T-2", task.blob_sha)
    assert (escalation.escalation_type, escalation.task_id) == ("decision_unverified", "T-2")
    assert "executor" in escalation.description


def test_the_flag_shows_on_the_dashboard_task_page(store, client):
    commit(store, {"tasks/T-2.json": task_doc("T-2", "awaiting_approval")})
    sync()
    commit(store, {"tasks/T-2.json": task_doc("T-2", "approved")}, author="executor")
    sync()
    client.force_login(make_user("staff"))

    page = client.get("/dashboard/tasks/T-2/").content.decode()

    assert 'id="decision-unverified"' in page
    assert "executor" in page


def test_decisions_through_the_control_plane_raise_nothing(store, time_machine):
    time_machine.move_to(T0, tick=False)
    approve_t1(store)
    commit(store, {"tasks/T-3.json": task_doc("T-3", "awaiting_approval")})
    sync()
    services.task_reject(task_id="T-3", actor="alice", reason="no")

    check(time_machine, at(10))

    assert integrity_escalations() == []
