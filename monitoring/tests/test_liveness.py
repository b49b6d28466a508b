"""Agents' liveness: a row per configured agent, each status boundary, and what counts as a write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring import services
from ssot import services as ssot_services
from ssot.models import Agent
from testing.monitor import T0, TIMEOUT, ack_file, at, check, heartbeat, send, task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]

JUST = timedelta(microseconds=1)


def status(name: str) -> str:
    return Agent.objects.get(name=name).status


def test_every_configured_agent_gets_a_row_and_starts_unknown(store, time_machine):
    report = check(time_machine, T0)

    assert sorted(Agent.objects.values_list("name", "status")) == [
        ("coordinator", "unknown"),
        ("executor", "unknown"),
        ("reviewer", "unknown"),
    ]
    assert report.changes == []


@pytest.mark.parametrize(
    ("silence", "expected"),
    [
        (timedelta(0), "ok"),
        (timedelta(seconds=TIMEOUT * 0.6), "ok"),
        (timedelta(seconds=TIMEOUT * 0.6) + JUST, "monitor"),
        (timedelta(seconds=TIMEOUT), "monitor"),
        (timedelta(seconds=TIMEOUT) + JUST, "timeout"),
    ],
    ids=["fresh", "exactly-60%", "just-over-60%", "exactly-timeout", "just-over-timeout"],
)
def test_each_status_boundary(store, time_machine, silence, expected):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)

    check(time_machine, T0 + silence)

    assert status("executor") == expected
    assert status("reviewer") == "unknown"


def test_a_change_is_reported_once_and_a_steady_status_not_at_all(store, time_machine):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)

    first = check(time_machine, at(1))
    again = check(time_machine, at(2))
    later = check(time_machine, at(181))

    assert first.changes == [("executor", "unknown", "ok")]
    assert again.changes == []
    assert later.changes == [("executor", "ok", "monitor")]
    assert Agent.objects.get(name="executor").status_since == at(181)


@pytest.mark.parametrize("means", ["message", "ack", "heartbeat-file", "task-last-writer", "api-heartbeat"])
def test_any_write_by_the_agent_brings_it_back(store, time_machine, means):
    time_machine.move_to(T0, tick=False)
    dispatch = send(store, sender="coordinator", recipient="executor", when=T0)
    heartbeat(store, "executor", T0)
    check(time_machine, at(TIMEOUT + 1))
    assert status("executor") == "timeout"

    time_machine.move_to(at(TIMEOUT + 5), tick=False)
    now = at(TIMEOUT + 5)
    if means == "message":
        send(store, msg_type="task_result", sender="executor", recipient="coordinator", when=now)
    elif means == "ack":
        ack_file(store, dispatch["msg_id"], by="executor", when=now)
    elif means == "heartbeat-file":
        heartbeat(store, "executor", now)
    elif means == "task-last-writer":
        task(store, "T-1", last_writer="executor")
    else:
        ssot_services.agent_heartbeat(agent="executor")
    report = check(time_machine, at(TIMEOUT + 10))

    assert ("executor", "timeout", "ok") in report.changes
    assert status("executor") == "ok"


def test_an_agent_missing_from_the_settings_is_not_monitored(store, time_machine, settings):
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    settings.AGENTS = ["coordinator"]

    check(time_machine, at(TIMEOUT + 1))

    assert status("executor") == "unknown"
    assert services.Monitor().names == ["coordinator"]
