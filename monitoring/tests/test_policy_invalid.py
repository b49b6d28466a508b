"""An invalid approval policy file raises one policy_invalid escalation, resolved once the file is fixed."""

from __future__ import annotations

import pytest

from monitoring.models import Notification
from ssot.models import Escalation, QuarantinedFile
from ssot.paths import POLICY_PATH
from ssot.policy import policy_in_force
from ssot.verify import differences
from testing.content import commit
from testing.monitor import T0, at, check, ssot_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]

VALID = {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}


def test_an_invalid_policy_is_escalated_once_and_resolved_when_fixed(store, time_machine):
    time_machine.move_to(T0, tick=False)
    commit(store, {POLICY_PATH: VALID})
    check(time_machine, at(1))
    valid_source = policy_in_force().source

    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 7, "groups": ["approvers"]}}}})
    first = check(time_machine, at(60))
    second = check(time_machine, at(120))
    bad_blob = QuarantinedFile.objects.get(path=POLICY_PATH).blob_sha
    msg_id = f"escalation-policy-{bad_blob}"
    assert (first.raised, second.raised, second.notified) == ([msg_id], [], [])
    assert policy_in_force().source == valid_source, "the previous valid policy stays in force"
    escalation = Escalation.objects.get()
    assert (escalation.escalation_type, escalation.severity, escalation.task_id) == (
        "policy_invalid",
        "warning",
        "policy",
    )
    payload = ssot_json(store, f"messages/{msg_id}.json")["payload"]
    assert "levels.high.approvals" in payload["description"]
    assert payload["system_state_snapshot"]["errors"][0]["path"] == "levels.high.approvals"
    assert (
        Notification.objects.get().title == "[warning] policy_invalid: policy/approvals.json is quarantined"
    )

    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 3, "groups": ["approvers"]}}}})
    fixed = check(time_machine, at(180))
    assert fixed.resolved == [msg_id] and fixed.raised == []
    assert Escalation.objects.get().status == "resolved"
    assert policy_in_force().level("high").approvals == 3
    check(time_machine, at(240))
    assert differences(store) == []
