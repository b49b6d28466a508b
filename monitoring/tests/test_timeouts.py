"""Entering timeout writes one heartbeat_timeout escalation per episode; recovery resolves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import amp
from monitoring import services
from monitoring.models import Notification
from ssot import services as ssot_services
from ssot.models import Agent, Escalation
from ssot.paths import heartbeat_path
from ssot.sync import sync
from testing.monitor import (
    T0,
    TIMEOUT,
    at,
    audit_lines,
    check,
    commit,
    concurrently,
    heartbeat,
    send,
    ssot_json,
    ssot_paths,
    task,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]

EPISODE = "escalation-agent-executor-" + str(int(T0.timestamp() * 1000))


def silent_executor(store, time_machine) -> None:
    """The executor's last write is at T0."""
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)


def escalation_files(store) -> list[str]:
    return [path for path in ssot_paths(store, "messages/") if "/escalation-" in path]


def test_entering_timeout_writes_one_escalation_to_the_ssot(store, time_machine):
    silent_executor(store, time_machine)

    report = check(time_machine, at(TIMEOUT + 30))

    assert report.raised == [EPISODE]
    envelope = ssot_json(store, f"messages/{EPISODE}.json")
    assert envelope == {
        "msg_id": EPISODE,
        "protocol_version": "AMP/1.0",
        "type": "escalation",
        "from": "system",
        "to": "admin",
        "task_id": "agent-executor",
        "timestamp": "2026-03-02T09:05:30.000Z",
        "requires_ack": False,
        "ack_timeout_sec": 0,
        "context_ref": [],
        "payload": {
            "escalation_type": "heartbeat_timeout",
            "severity": "critical",
            "triggered_by": "system",
            "description": "EXECUTOR has not written to SSOT for 5 minutes. "
            "Last heartbeat: 2026-03-02T09:00:00.000Z. System is suspending dependent operations.",
            "affected_msgs": [],
            "system_state_snapshot": {
                "subject": "agent:executor",
                "agent": "executor",
                "last_seen": "2026-03-02T09:00:00.000Z",
                "last_heartbeat": "2026-03-02T09:00:00.000Z",
                "elapsed_sec": 330,
                "timeout_sec": TIMEOUT,
            },
            "suggested_actions": [
                "Manually restart executor CLI",
                "Check Mac Studio process list",
                "Verify API credentials have not expired",
            ],
            "auto_suspended": True,
        },
    }
    [line] = [line for line in audit_lines(store) if line["msg_id"] == EPISODE]
    assert (line["actor"], line["action"], line["escalation_type"]) == (
        "system",
        "escalation",
        "heartbeat_timeout",
    )
    escalation = Escalation.objects.get(msg_id=EPISODE)
    assert (escalation.subject, escalation.status, escalation.severity) == (
        "agent:executor",
        "open",
        "critical",
    )
    agent = Agent.objects.get(name="executor")
    assert (agent.status, agent.timeout_msg_id, agent.status_since) == ("timeout", EPISODE, at(TIMEOUT + 30))
    [notification] = Notification.objects.all()
    assert notification.title == "[critical] heartbeat_timeout: executor"
    assert notification.escalation_msg_id == EPISODE


def test_later_checks_of_the_same_silence_write_nothing_more(store, time_machine):
    silent_executor(store, time_machine)
    check(time_machine, at(TIMEOUT + 1))

    later = [check(time_machine, at(TIMEOUT + 1 + 10 * n)) for n in range(1, 5)]

    assert all(report.raised == [] and report.changes == [] for report in later)
    assert escalation_files(store) == [f"messages/{EPISODE}.json"]
    assert Notification.objects.count() == 1


def test_the_escalation_names_the_task_the_agent_was_last_on(store, time_machine):
    time_machine.move_to(T0, tick=False)
    send(store, sender="coordinator", recipient="executor", task_id="T-7", when=T0 - timedelta(seconds=50))
    send(store, msg_type="task_result", sender="executor", recipient="coordinator", task_id="T-8", when=T0)
    send(store, sender="coordinator", recipient="reviewer", task_id="T-9", when=T0)

    check(time_machine, at(TIMEOUT + 1))

    assert Escalation.objects.get(subject="agent:executor").task_id == "T-8"


def test_without_messages_the_task_it_is_assigned_to_is_named(store, time_machine):
    time_machine.move_to(T0, tick=False)
    task(store, "T-3", assignee="executor", last_writer="coordinator")
    heartbeat(store, "executor", T0)

    check(time_machine, at(TIMEOUT + 1))

    assert Escalation.objects.get(subject="agent:executor").task_id == "T-3"


# Threads on their own connections must see the rows; serialized rollback leaves the migrations' rows
# (content types, groups) as the next serialized test expects them.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_checks_write_one_escalation(store, time_machine):
    silent_executor(store, time_machine)
    time_machine.move_to(at(TIMEOUT + 1), tick=False)
    sync()

    reports = concurrently(services.run_checks)

    assert sorted(len(report.raised) for report in reports) == [0, 1]
    assert sorted(len(report.changes) for report in reports) == [0, 1]
    assert escalation_files(store) == [f"messages/{EPISODE}.json"]
    assert [line["msg_id"] for line in audit_lines(store) if line["action"] == "escalation"] == [EPISODE]
    assert Notification.objects.count() == 1
    assert Escalation.objects.count() == 1


def test_a_restart_between_claim_and_write_writes_exactly_one(store, time_machine):
    silent_executor(store, time_machine)
    time_machine.move_to(at(TIMEOUT + 1), tick=False)
    sync()
    monitor = services.Monitor()
    monitor.read_health()
    # The worker claims the episode, then dies before writing to the SSOT.
    notification = monitor.claim_timeout(Agent.objects.get(name="executor"))
    assert notification is not None and escalation_files(store) == []

    soon = check(time_machine, at(TIMEOUT + 11))
    later = check(time_machine, at(TIMEOUT + 41))
    again = check(time_machine, at(TIMEOUT + 51))

    assert soon.raised == []  # younger than the grace: its own worker may still be writing it
    assert later.raised == [EPISODE]
    assert again.raised == []
    assert escalation_files(store) == [f"messages/{EPISODE}.json"]
    envelope = ssot_json(store, f"messages/{EPISODE}.json")
    assert envelope["timestamp"] == "2026-03-02T09:05:01.000Z"  # the claim's time, not the retry's
    assert Notification.objects.count() == 1


def test_recovery_resolves_the_escalation_in_the_ssot_too(store, time_machine):
    silent_executor(store, time_machine)
    check(time_machine, at(TIMEOUT + 1))
    time_machine.move_to(at(TIMEOUT + 20), tick=False)
    heartbeat(store, "executor", at(TIMEOUT + 20))

    report = check(time_machine, at(TIMEOUT + 25))

    assert report.changes == [("executor", "timeout", "ok")]
    assert report.resolved == [EPISODE]
    escalation = Escalation.objects.get(msg_id=EPISODE)
    assert (escalation.status, escalation.resolved_by) == ("resolved", "system")
    assert (
        escalation.resolution
        == "recovered: executor wrote to the SSOT at 2026-03-02T09:05:20.000Z (heartbeat)"
    )
    [line] = [line for line in audit_lines(store) if line["action"] == "escalation_resolved"]
    assert (line["msg_id"], line["actor"], line["detail"]) == (EPISODE, "system", escalation.resolution)
    agent = Agent.objects.get(name="executor")
    assert (agent.status, agent.timeout_msg_id) == ("ok", "")
    assert list(Notification.objects.order_by("created_at").values_list("title", flat=True)) == [
        "[critical] heartbeat_timeout: executor",
        "[recovered] heartbeat: executor",
    ]


def test_a_new_silence_after_recovery_is_a_new_episode(store, time_machine):
    silent_executor(store, time_machine)
    check(time_machine, at(TIMEOUT + 1))
    time_machine.move_to(at(400), tick=False)
    heartbeat(store, "executor", at(400))
    check(time_machine, at(401))

    report = check(time_machine, at(400 + TIMEOUT + 1))

    second = "escalation-agent-executor-" + str(int(at(400).timestamp() * 1000))
    assert report.raised == [second]
    assert escalation_files(store) == sorted([f"messages/{EPISODE}.json", f"messages/{second}.json"])
    assert Escalation.objects.get(msg_id=second).status == "open"


def test_an_escalation_the_admin_already_resolved_stays_resolved_on_recovery(store, time_machine):
    silent_executor(store, time_machine)
    check(time_machine, at(TIMEOUT + 1))
    ssot_services.escalation_resolve(escalation_id=EPISODE, actor="alice", reason="restarted it myself")
    time_machine.move_to(at(TIMEOUT + 20), tick=False)
    heartbeat(store, "executor", at(TIMEOUT + 20))

    report = check(time_machine, at(TIMEOUT + 25))

    assert report.changes == [("executor", "timeout", "ok")]
    escalation = Escalation.objects.get(msg_id=EPISODE)
    assert (escalation.resolved_by, escalation.resolution) == ("alice", "restarted it myself")
    assert [line["actor"] for line in audit_lines(store) if line["action"] == "escalation_resolved"] == [
        "alice"
    ]
    assert Agent.objects.get(name="executor").timeout_msg_id == ""


def test_a_heartbeat_dated_at_the_epoch_times_out_like_any_other(store, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", datetime(1970, 1, 1, tzinfo=UTC))

    report = check(time_machine, at(30))

    assert report.raised == ["escalation-agent-executor-0"]
    envelope = ssot_json(store, "messages/escalation-agent-executor-0.json")
    assert envelope["payload"]["system_state_snapshot"]["last_heartbeat"] == "1970-01-01T00:00:00.000Z"
    assert Escalation.objects.get(msg_id="escalation-agent-executor-0").status == Escalation.Status.OPEN


@pytest.mark.parametrize("written_at", ["1969-12-31T23:59:59.500000+00:00", "0001-01-01T00:00:00+00:00"])
def test_a_heartbeat_dated_before_the_epoch_still_raises_and_writes_its_escalation(
    store, time_machine, written_at
):
    time_machine.move_to(T0, tick=False)
    commit(store, {heartbeat_path("executor"): {"agent": "executor", "at": written_at}}, author="executor")

    report = check(time_machine, at(30))

    # An id's number has no sign: the episode counts from the epoch; the description keeps the date.
    assert report.raised == ["escalation-agent-executor-0"]
    envelope = ssot_json(store, "messages/escalation-agent-executor-0.json")
    assert envelope["payload"]["system_state_snapshot"]["last_heartbeat"] == "1970-01-01T00:00:00.000Z"
    assert (
        f"Last heartbeat: {amp.make_timestamp(datetime.fromisoformat(written_at))}"
        in (envelope["payload"]["description"])
    )
