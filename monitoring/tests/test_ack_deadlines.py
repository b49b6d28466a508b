"""ACK deadlines (SPEC section 6): one ack_timeout escalation per overdue message; a late ACK resolves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring import envelopes, services
from monitoring.models import Notification
from ssot import services as ssot_services
from ssot.models import Escalation, Message
from ssot.sync import sync
from testing.monitor import (
    T0,
    ack_file,
    at,
    audit_lines,
    check,
    concurrently,
    heartbeat,
    send,
    ssot_json,
    ssot_paths,
)

pytestmark = pytest.mark.django_db

DEADLINE = 300  # task_dispatch's ACK timeout (SPEC section 6)
MEANS = ["ack-file", "context-ref", "api"]


@pytest.fixture(autouse=True)
def _monitor(monitor_settings):
    monitor_settings.HEARTBEAT_TIMEOUT_SEC = 3600  # agents' silences are not what these tests are about


@pytest.fixture
def dispatch(store, time_machine):
    """A task_dispatch from the coordinator to the executor at T0, due to be acknowledged at T0 + 300 s."""
    time_machine.move_to(T0, tick=False)
    return send(store, sender="coordinator", recipient="executor", task_id="T-1", when=T0)


def acknowledge(store, time_machine, msg_id: str, means: str, seconds: float) -> None:
    when = at(seconds)
    time_machine.move_to(when, tick=False)
    if means == "ack-file":
        ack_file(store, msg_id, by="executor", when=when)
    elif means == "context-ref":
        send(
            store,
            msg_type="task_result",
            sender="executor",
            recipient="coordinator",
            when=when,
            context_ref=(msg_id,),
        )
    else:
        ssot_services.message_ack(msg_id=msg_id, by="executor")


def escalation_id(msg_id: str) -> str:
    return f"escalation-ack-{msg_id}"


def test_a_message_is_not_late_at_its_deadline_but_just_after(store, time_machine, dispatch):
    on_time = check(time_machine, at(DEADLINE))
    late = check(time_machine, at(DEADLINE) + timedelta(microseconds=1))

    assert on_time.overdue == []
    assert late.overdue == [dispatch["msg_id"]]
    assert late.raised == [escalation_id(dispatch["msg_id"])]


def test_an_unacknowledged_message_gets_one_ack_timeout_escalation(store, time_machine, dispatch):
    msg_id = dispatch["msg_id"]
    first = check(time_machine, at(DEADLINE + 5))
    later = [check(time_machine, at(DEADLINE + 5 + 10 * n)) for n in range(1, 4)]

    assert first.raised == [escalation_id(msg_id)]
    assert all(report.raised == [] and report.overdue == [] for report in later)
    envelope = ssot_json(store, f"messages/{escalation_id(msg_id)}.json")
    assert (envelope["from"], envelope["to"], envelope["task_id"]) == ("system", "admin", "T-1")
    assert envelope["context_ref"] == [msg_id]
    payload = envelope["payload"]
    assert (payload["escalation_type"], payload["severity"], payload["affected_msgs"]) == (
        "ack_timeout",
        "warning",
        [msg_id],
    )
    assert payload["description"] == (
        f"executor has not acknowledged task_dispatch {msg_id} from coordinator (task T-1); "
        "the ACK was due at 2026-03-02T09:05:00.000Z."
    )
    assert payload["system_state_snapshot"] == {
        "subject": f"msg:{msg_id}",
        "msg_id": msg_id,
        "type": "task_dispatch",
        "from": "coordinator",
        "to": "executor",
        "sent_at": "2026-03-02T09:00:00.000Z",
        "ack_deadline": "2026-03-02T09:05:00.000Z",
    }
    assert Message.objects.get(msg_id=msg_id).ack_state == "overdue"
    assert Escalation.objects.get(msg_id=escalation_id(msg_id)).subject == f"msg:{msg_id}"
    assert Notification.objects.get().title == f"[warning] ack_timeout: {msg_id}"


@pytest.mark.parametrize("means", MEANS)
def test_an_ack_in_time_prevents_the_escalation(store, time_machine, dispatch, means):
    acknowledge(store, time_machine, dispatch["msg_id"], means, DEADLINE - 10)

    report = check(time_machine, at(DEADLINE + 5))

    assert report.overdue == [] and report.raised == []
    assert Message.objects.get(msg_id=dispatch["msg_id"]).ack_state == "acked"
    assert not [path for path in ssot_paths(store, "messages/") if "escalation-" in path]


@pytest.mark.parametrize("means", MEANS)
def test_a_late_ack_resolves_the_escalation(store, time_machine, dispatch, means):
    msg_id = dispatch["msg_id"]
    check(time_machine, at(DEADLINE + 5))
    acknowledge(store, time_machine, msg_id, means, DEADLINE + 20)

    report = check(time_machine, at(DEADLINE + 25))

    assert report.resolved == [escalation_id(msg_id)]
    escalation = Escalation.objects.get(msg_id=escalation_id(msg_id))
    assert (escalation.status, escalation.resolved_by) == ("resolved", "system")
    assert escalation.resolution.startswith(f"acknowledged late: {msg_id} by executor at ")
    [line] = [line for line in audit_lines(store) if line["action"] == "escalation_resolved"]
    assert (line["msg_id"], line["detail"]) == (escalation_id(msg_id), escalation.resolution)
    assert check(time_machine, at(DEADLINE + 35)).resolved == []


def test_an_ack_by_someone_else_is_no_ack(store, time_machine, dispatch):
    time_machine.move_to(at(10), tick=False)
    ack_file(store, dispatch["msg_id"], by="reviewer", when=at(10))

    report = check(time_machine, at(DEADLINE + 5))

    assert report.overdue == [dispatch["msg_id"]]


# Threads on their own connections must see the rows; serialized rollback leaves the migrations' rows
# (content types, groups) as the next serialized test expects them.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_scans_claim_a_message_once(store, time_machine, dispatch):
    time_machine.move_to(at(DEADLINE + 5), tick=False)
    sync()

    reports = concurrently(services.run_checks)

    assert sorted(len(report.overdue) for report in reports) == [0, 1]
    assert [line["msg_id"] for line in audit_lines(store) if line["action"] == "escalation"] == [
        escalation_id(dispatch["msg_id"])
    ]
    assert Notification.objects.count() == 1


def test_a_long_message_id_gets_a_bounded_escalation_id(store, time_machine):
    time_machine.move_to(T0, tick=False)
    dispatch = send(store, sender="coordinator", recipient="executor", task_id="T-" + "x" * 95, when=T0)

    report = check(time_machine, at(DEADLINE + 5))

    [raised] = report.raised
    assert len(raised) <= 128 and raised.startswith("escalation-ack-task_dispatch-T-xxx")
    assert raised == envelopes.ack_escalation_id(dispatch["msg_id"])
    assert envelopes.overdue_message(raised).msg_id == dispatch["msg_id"]
    assert Escalation.objects.get(msg_id=raised).subject == f"msg:{dispatch['msg_id']}"


def test_the_scan_is_one_query_on_the_partial_index(store, time_machine, dispatch):
    time_machine.move_to(at(10), tick=False)
    heartbeat(store, "executor", at(10))
    monitor = services.Monitor()
    monitor.read_health()

    with CaptureQueriesContext(connection) as queries:
        monitor.scan_acks()

    [query] = queries.captured_queries
    assert '"ack_state" = ' in query["sql"] and '"ack_deadline" < ' in query["sql"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"].replace("%s", "?"))
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert "msg_ack_pending_deadline" in plan


def test_a_restart_between_claim_and_write_writes_exactly_one(store, time_machine, dispatch):
    time_machine.move_to(at(DEADLINE + 5), tick=False)
    sync()
    monitor = services.Monitor()
    monitor.read_health()
    # The worker claims the overdue message, then dies before writing to the SSOT.
    assert monitor.claim_overdue(Message.objects.get(msg_id=dispatch["msg_id"])) is not None

    later = check(time_machine, at(DEADLINE + 45))
    again = check(time_machine, at(DEADLINE + 55))

    assert later.raised == [escalation_id(dispatch["msg_id"])] and later.overdue == []
    assert again.raised == []
    assert [line["msg_id"] for line in audit_lines(store) if line["action"] == "escalation"] == [
        escalation_id(dispatch["msg_id"])
    ]
