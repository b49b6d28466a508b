"""The events WebSocket through the whole ASGI app: who may connect, the snapshot, every event's payload."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

import amp
from monitoring.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from ssot import audit, events, services
from ssot.documents import dump_json
from ssot.events import GROUP
from ssot.models import Message, Task
from ssot.stores.base import git_blob_sha
from ssot.sync import sync
from testing.content import task_doc
from testing.factories import AgentFactory, EscalationFactory, UserFactory
from testing.git import git_push
from testing.live import (
    access_token,
    close_code,
    events_until,
    next_event,
    open_socket,
    session_cookie,
)

# Other threads (the consumer's DB calls) must see the rows, and the groups from the migrations must
# survive the flush between tests.
pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("deciders"),
]

NO_PASSWORD = "!"


@pytest.fixture(autouse=True)
async def _close_worker_connections():
    """Close the DB connection of the thread that runs the consumer's queries, so the test DB can go."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def approver():
    return UserFactory(username="alice", password=NO_PASSWORD, groups=["approvers"])


@pytest.fixture
def operator():
    return UserFactory(username="olga", password=NO_PASSWORD, groups=["operators"])


@pytest.fixture
def outsider():
    return UserFactory(username="mallory", password=NO_PASSWORD, is_staff=False)


@pytest.fixture
def seeded(store):
    """An SSOT with one task awaiting approval and one in progress, mirrored."""
    store.commit(
        parent=store.head(),
        writes={
            "tasks/T-100.json": dump_json(task_doc("T-100", "awaiting_approval", risk_level="high")),
            "tasks/T-101.json": dump_json(task_doc("T-101", "in_progress")),
        },
        message="seed",
        author="coordinator",
    )
    sync()
    return store


async def _high_risk_needs(store, approvals: int) -> None:
    """Commit a policy needing `approvals` approvers at high risk (T-100's level); the caller syncs."""
    await sync_to_async(store.commit)(
        parent=store.head(),
        writes={
            "policy/approvals.json": dump_json(
                {"levels": {"high": {"approvals": approvals, "groups": ["approvers"]}}}
            )
        },
        message=f"{approvals} approvers for high risk",
        author="alice",
    )


async def connected(user) -> WebsocketCommunicator:
    """A socket of `user` (by session cookie) past its `init` message."""
    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(user))
    init = await communicator.receive_json_from(timeout=5)
    assert init["type"] == "init"
    return communicator


# -- who may connect ------------------------------------------------------------------------------


async def test_a_socket_without_credentials_is_closed_with_4401():
    communicator = await open_socket()
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"])
async def test_a_socket_with_a_malformed_token_is_closed_with_4401(token):
    communicator = await open_socket(token=token)
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_an_expired_token_is_closed_with_4401(approver):
    token = AccessToken.for_user(approver)
    token.set_exp(lifetime=timedelta(seconds=-1))
    communicator = await open_socket(token=str(token))
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_refresh_token_is_not_an_access_token(approver):
    communicator = await open_socket(token=str(RefreshToken.for_user(approver)))
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_bad_token_is_refused_even_beside_a_valid_session(approver):
    cookie = await sync_to_async(session_cookie)(approver)
    communicator = await open_socket(cookie=cookie, token="forged")
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_the_token_of_a_deactivated_user_is_refused(approver):
    token = access_token(approver)
    approver.is_active = False
    await database_sync_to_async(approver.save)(update_fields=["is_active"])
    communicator = await open_socket(token=token)
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_user_neither_staff_nor_agent_is_closed_with_4403_by_session(outsider):
    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(outsider))
    assert await close_code(communicator) == CLOSE_FORBIDDEN


async def test_a_user_neither_staff_nor_agent_is_closed_with_4403_by_token(outsider):
    communicator = await open_socket(token=access_token(outsider))
    assert await close_code(communicator) == CLOSE_FORBIDDEN


async def test_an_agent_connects_with_its_token():
    agent = await database_sync_to_async(UserFactory)(
        username="executor", is_staff=False, password=NO_PASSWORD, groups=["agents"]
    )
    communicator = await open_socket(token=access_token(agent))
    assert (await communicator.receive_json_from(timeout=5))["type"] == "init"
    await communicator.disconnect()


async def test_a_staff_user_connects_with_the_session_cookie(approver):
    communicator = await connected(approver)
    await communicator.disconnect()


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_a_foreign_or_missing_origin_is_refused_at_the_handshake(approver, origin):
    from channels.testing import WebsocketCommunicator

    from agentos_site.asgi import application

    headers = [(b"cookie", f"sessionid={await sync_to_async(session_cookie)(approver)}".encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    accepted, _ = await communicator.connect(timeout=5)
    assert not accepted
    await communicator.disconnect()


# -- the snapshot ---------------------------------------------------------------------------------


async def test_the_init_snapshot_holds_tasks_agents_open_escalations_and_audit(seeded, approver):
    await database_sync_to_async(AgentFactory)(name="executor")
    open_one = await database_sync_to_async(EscalationFactory)()
    await database_sync_to_async(EscalationFactory)(status="resolved")
    await database_sync_to_async(audit.audit_queue)(actor="system", action="note", detail="hello")

    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(approver))
    init = await communicator.receive_json_from(timeout=5)

    assert init["type"] == "init"
    tasks = {task["task_id"]: task for task in init["tasks"]}
    assert set(tasks) == {"T-100", "T-101"}
    assert tasks["T-100"]["status"] == "awaiting_approval"
    assert tasks["T-100"]["blob_sha"] == git_blob_sha(
        dump_json(task_doc("T-100", "awaiting_approval", risk_level="high"))
    )
    assert tasks["T-100"]["risk_level"] == "high"
    assert tasks["T-100"]["branch"] == "feature/t-100"
    assert init["tasks_total"] == 2
    agents = {agent["name"]: agent for agent in init["agents"]}
    assert set(agents) >= set(settings.AGENTS)
    assert agents["executor"]["status"] == "ok"
    assert agents["executor"]["last_seen"] is not None
    assert agents["reviewer"]["status"] == "unknown"
    assert [e["msg_id"] for e in init["escalations"]] == [open_one.msg_id]
    assert init["audit"][0]["detail"] == "hello"
    assert init["sync"]["head"] == seeded.head()
    assert init["ping_sec"] == settings.WS_PING_SEC
    await communicator.disconnect()


async def test_a_reconnecting_client_gets_a_fresh_snapshot_with_what_it_missed(seeded, approver):
    first = await connected(approver)
    await first.disconnect()

    await database_sync_to_async(services.task_approve)(task_id="T-100", actor="alice", reason="fine")

    second = await open_socket(cookie=await sync_to_async(session_cookie)(approver))
    init = await second.receive_json_from(timeout=5)
    assert {t["task_id"]: t["status"] for t in init["tasks"]}["T-100"] == "approved"
    await second.disconnect()


# -- each event's payload -------------------------------------------------------------------------


async def test_a_pushed_task_change_arrives_as_task_update_and_sync(seeded, ssot_path, approver):
    communicator = await connected(approver)
    changed = dump_json(task_doc("T-101", "awaiting_approval", last_writer="executor"))

    await sync_to_async(git_push)(ssot_path, {"tasks/T-101.json": changed}, author="executor")
    await database_sync_to_async(sync)()

    seen = await events_until(communicator, {"task_update", "sync"})
    update = seen["task_update"]
    assert update["task_id"] == "T-101"
    assert update["task"]["status"] == "awaiting_approval"
    assert update["task"]["last_writer"] == "executor"
    assert update["task"]["blob_sha"] == git_blob_sha(changed)
    head = await sync_to_async(seeded.head)()
    assert seen["sync"]["head"] == head
    assert seen["sync"]["backend"] == "local"
    assert seen["sync"]["branch"] == "main"
    assert seen["sync"]["report"]["mode"] == "incremental"
    assert seen["sync"]["report"]["files_read"] == 1
    assert seen["sync"]["report"]["reload"] is False
    assert (seen["sync"]["failing"], seen["sync"]["consecutive_errors"], seen["sync"]["last_error"]) == (
        False,
        0,
        "",
    )
    await communicator.disconnect()


async def test_a_failing_sync_arrives_as_a_sync_event_with_its_reason(seeded, ssot_path, approver):
    from core.errors import SyncFailed
    from testing.dbfaults import table_missing

    communicator = await connected(approver)
    await sync_to_async(git_push)(ssot_path, {"tasks/T-102.json": dump_json(task_doc("T-102", "new"))})

    def failing_sync() -> None:
        with table_missing("ssot_task"), pytest.raises(SyncFailed):
            sync()

    await database_sync_to_async(failing_sync)()
    seen = await events_until(communicator, {"sync"})
    assert (seen["sync"]["failing"], seen["sync"]["consecutive_errors"]) == (True, 1)
    assert seen["sync"]["last_error"].startswith("mirroring tasks/T-102.json: ")
    assert seen["sync"]["report"] == {"failed": True}
    await communicator.disconnect()


async def test_a_sync_with_too_many_rows_for_an_event_each_asks_clients_to_reload(seeded, approver):
    communicator = await connected(approver)
    lines = "".join(
        json.dumps({"timestamp": "2026-01-01T00:00:00+00:00", "actor": "executor", "action": f"step {n}"})
        + "\n"
        for n in range(250)
    )

    await sync_to_async(seeded.commit)(
        parent=seeded.head(),
        writes={"audit/2026/01/01.jsonl": lines.encode()},
        message="log",
        author="executor",
    )
    await database_sync_to_async(sync)()

    # One file, 250 rows: no event per row, and the sync event says to take a fresh snapshot.
    event = await communicator.receive_json_from(timeout=5)
    assert event["type"] == "sync"
    assert event["report"]["reload"] is True
    assert event["report"]["files_read"] == 1
    await communicator.disconnect()


async def test_a_deleted_task_arrives_as_a_removed_task_update(seeded, ssot_path, approver):
    communicator = await connected(approver)

    await sync_to_async(seeded.commit)(
        parent=seeded.head(), writes={}, deletes=["tasks/T-101.json"], message="drop", author="coordinator"
    )
    await database_sync_to_async(sync)()

    update = await next_event(communicator, "task_update")
    assert update == {"type": "task_update", "task_id": "T-101", "task": None, "removed": True}
    await communicator.disconnect()


async def test_approve_sends_exactly_task_update_audit_and_task_approved(seeded, approver):
    communicator = await connected(approver)

    await database_sync_to_async(services.task_approve)(task_id="T-100", actor="alice", reason="ship it")

    seen = await events_until(communicator, {"task_update", "audit", "task_approved"})
    approved = seen["task_approved"]
    assert approved["task_id"] == "T-100"
    assert approved["actor"] == "alice"
    assert approved["reason"] == "ship it"
    assert approved["prev_status"] == "awaiting_approval"
    assert approved["status"] == "approved"
    assert approved["task"]["status"] == "approved"
    assert approved["task"]["last_writer"] == "admin"
    assert seen["audit"]["entry"]["action"] == "approved"
    assert seen["audit"]["entry"]["actor"] == "alice"
    assert seen["audit"]["entry"]["in_ssot"] is True
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_a_partial_approval_sends_exactly_its_audit_line_and_approval_progress(seeded, approver):
    await _high_risk_needs(seeded, 2)
    await database_sync_to_async(sync)()
    communicator = await connected(approver)

    await database_sync_to_async(services.task_approve)(task_id="T-100", actor="alice", reason="half")

    seen = await events_until(communicator, {"audit", "approval_progress"})
    assert seen["approval_progress"] == {
        "type": "approval_progress",
        "task_id": "T-100",
        "blob_sha": await database_sync_to_async(lambda: Task.objects.get(task_id="T-100").blob_sha)(),
        "have": 1,
        "need": 2,
        "by": "alice",
    }
    assert seen["audit"]["entry"]["action"] == "approval_recorded"
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_the_snapshot_and_a_pushed_approvals_change_count_a_tasks_approvals(seeded, approver):
    """The dashboard's "1 of 2": in the snapshot for each task awaiting approval (none for the others),
    and in the task_update a push of the task's approvals file brings (here, its removal by an agent)."""
    await _high_risk_needs(seeded, 2)
    await database_sync_to_async(sync)()
    await database_sync_to_async(services.task_approve)(task_id="T-100", actor="alice", reason="half")

    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(approver))
    init = await communicator.receive_json_from(timeout=5)
    tasks = {task["task_id"]: task for task in init["tasks"]}
    assert tasks["T-100"]["approvals"] == {"have": 1, "need": 2}
    assert tasks["T-101"]["approvals"] is None

    await sync_to_async(seeded.commit)(
        parent=seeded.head(), writes={}, deletes=["approvals/T-100.json"], message="drop", author="executor"
    )
    await database_sync_to_async(sync)()
    update = await next_event(communicator, "task_update")
    assert (update["task_id"], update["task"]["approvals"]) == ("T-100", {"have": 0, "need": 2})
    await communicator.disconnect()


async def test_a_policy_change_asks_clients_to_reload(seeded, approver):
    """What every task awaiting approval needs may have changed: a fresh snapshot, not an event per task."""
    communicator = await connected(approver)
    await _high_risk_needs(seeded, 3)
    await database_sync_to_async(sync)()
    seen = await events_until(communicator, {"sync"})
    assert seen["sync"]["report"]["reload"] is True
    await communicator.disconnect()


async def test_reject_sends_task_rejected_with_the_reason(seeded, approver):
    communicator = await connected(approver)

    await database_sync_to_async(services.task_reject)(task_id="T-100", actor="alice", reason="no tests")

    rejected = await next_event(communicator, "task_rejected")
    assert rejected["task_id"] == "T-100"
    assert rejected["reason"] == "no tests"
    assert rejected["prev_status"] == "awaiting_approval"
    assert rejected["status"] == "rejected"
    assert rejected["task"]["reject_count"] == 1
    await communicator.disconnect()


async def test_override_sends_task_override_with_the_new_status(seeded, operator):
    communicator = await connected(operator)

    await database_sync_to_async(services.task_override)(
        task_id="T-101", actor="olga", reason="stuck", status="blocked"
    )

    override = await next_event(communicator, "task_override")
    assert override["task_id"] == "T-101"
    assert override["actor"] == "olga"
    assert override["reason"] == "stuck"
    assert override["prev_status"] == "in_progress"
    assert override["status"] == "blocked"
    assert override["task"]["status"] == "blocked"
    await communicator.disconnect()


def _dispatch() -> dict:
    return amp.build_envelope(
        msg_type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id="T-101",
        payload={"branch": "feature/t-101", "acceptance_criteria": ["tests pass"]},
    )


async def test_a_new_message_arrives_as_message(seeded, approver):
    communicator = await connected(approver)
    envelope = _dispatch()

    await database_sync_to_async(services.message_create)(raw=envelope, sender="coordinator")

    event = await next_event(communicator, "message")
    assert event["msg_id"] == envelope["msg_id"]
    message = event["message"]
    assert message["type"] == "task_dispatch"
    assert message["from"] == "coordinator"
    assert message["to"] == "executor"
    assert message["task_id"] == "T-101"
    assert message["requires_ack"] is True
    assert message["ack_state"] == "pending"
    assert message["ack_deadline"] is not None
    await communicator.disconnect()


async def test_an_ack_by_the_addressee_arrives_as_ack(seeded, approver):
    envelope = _dispatch()
    await database_sync_to_async(services.message_create)(raw=envelope, sender="coordinator")
    communicator = await connected(approver)

    await database_sync_to_async(services.message_ack)(msg_id=envelope["msg_id"], by="executor")

    ack = await next_event(communicator, "ack")
    assert ack["msg_id"] == envelope["msg_id"]
    assert ack["by"] == "executor"
    assert ack["via"] == "file"
    assert ack["at"] is not None
    state = await database_sync_to_async(lambda: Message.objects.get(msg_id=envelope["msg_id"]).ack_state)()
    assert state == "acked"
    await communicator.disconnect()


async def test_a_raised_escalation_arrives_as_escalation(seeded, approver):
    communicator = await connected(approver)
    envelope = amp.build_escalation(
        task_id="T-101",
        escalation_type="blocked",
        severity="warning",
        triggered_by="executor",
        description="cannot reach the build server",
    )

    await database_sync_to_async(services.escalation_raise)(envelope=envelope, actor="system")

    event = await next_event(communicator, "escalation")
    assert event["msg_id"] == envelope["msg_id"]
    escalation = event["escalation"]
    assert escalation["escalation_type"] == "blocked"
    assert escalation["severity"] == "warning"
    assert escalation["description"] == "cannot reach the build server"
    assert escalation["status"] == "open"
    assert escalation["task_id"] == "T-101"
    await communicator.disconnect()


async def test_a_resolved_escalation_arrives_with_its_resolution(seeded, approver):
    envelope = amp.build_escalation(
        task_id="T-101", escalation_type="blocked", severity="info", triggered_by="executor", description="x"
    )
    await database_sync_to_async(services.escalation_raise)(envelope=envelope, actor="system")
    communicator = await connected(approver)

    await database_sync_to_async(services.escalation_resolve)(
        escalation_id=envelope["msg_id"], actor="alice", reason="build server is back"
    )

    event = await next_event(communicator, "escalation")
    assert event["escalation"]["status"] == "resolved"
    assert event["escalation"]["resolved_by"] == "alice"
    assert event["escalation"]["resolution"] == "build server is back"
    await communicator.disconnect()


async def test_a_queued_audit_line_arrives_as_audit(approver):
    communicator = await connected(approver)

    entry = await database_sync_to_async(audit.audit_queue)(
        actor="github", action="webhook_received", task_id="T-1", detail="push"
    )

    event = await next_event(communicator, "audit")
    assert event == {"type": "audit", "entry": events.audit_summary(entry)}
    assert event["entry"]["in_ssot"] is False
    await communicator.disconnect()


# -- keep-alive, and a slow client --------------------------------------------------------------


async def test_a_ping_is_sent_every_ws_ping_sec(settings, approver):
    settings.WS_PING_SEC = 0.05
    communicator = await connected(approver)

    assert await communicator.receive_json_from(timeout=2) == {"type": "ping"}
    assert await communicator.receive_json_from(timeout=2) == {"type": "ping"}
    await communicator.disconnect()


async def test_what_a_client_sends_is_ignored(approver):
    communicator = await connected(approver)

    await communicator.send_to(text_data="not json at all")
    await communicator.send_json_to({"type": "anything"})

    assert await communicator.receive_nothing(timeout=0.2)
    await sync_to_async(events.send_now)({"type": "audit", "entry": {"id": 1}})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "audit"
    await communicator.disconnect()


async def test_a_client_that_never_reads_does_not_hold_up_the_others(approver):
    layer = get_channel_layer()
    stuck = await layer.new_channel()
    await layer.group_add(GROUP, stuck)
    reader = await connected(approver)
    burst = settings.CHANNEL_CAPACITY + 50
    slowest = 0.0
    try:
        for number in range(burst):
            started = time.monotonic()
            await sync_to_async(events.send_now)({"type": "audit", "entry": {"id": number}})
            received = await reader.receive_json_from(timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert received["entry"]["id"] == number
        # The stuck client's buffer holds at most CHANNEL_CAPACITY events; the rest were dropped for it.
        buffered = 0
        while True:
            try:
                await asyncio.wait_for(layer.receive(stuck), timeout=0.2)
            except TimeoutError:
                break
            buffered += 1
        assert buffered == settings.CHANNEL_CAPACITY
    finally:
        await layer.group_discard(GROUP, stuck)
        await reader.disconnect()
    assert slowest < 1.0


async def test_a_ci_check_on_a_task_branch_arrives_as_ci_update(seeded, approver):
    from webhooks.payloads import CheckUpdate
    from webhooks.services import task_ci_update

    communicator = await connected(approver)
    update = CheckUpdate(
        branch="feature/t-101",
        check="tests",
        state="failure",
        conclusion="failure",
        url="https://ci.example/run/1",
        at="2026-01-01T00:00:00+00:00",
        source="github",
        event="check_run",
    )

    await database_sync_to_async(task_ci_update)(update=update)

    event = await next_event(communicator, "ci_update")
    assert event["task_id"] == "T-101"
    assert event["branch"] == "feature/t-101"
    assert event["source"] == "github"
    assert event["check"] == "tests"
    assert event["state"] == "failure"
    assert event["ci_state"] == "failure"
    assert event["ci_status"]["tests"]["url"] == "https://ci.example/run/1"
    await communicator.disconnect()


async def test_a_pull_request_on_a_task_branch_arrives_as_pr_update(seeded, approver):
    from webhooks.payloads import PrUpdate
    from webhooks.services import task_pr_update

    communicator = await connected(approver)
    update = PrUpdate(
        branch="feature/t-100",
        number=42,
        state="open",
        url="https://github.example/o/r/pull/42",
        title="Offline mode",
        action="opened",
    )

    await database_sync_to_async(task_pr_update)(update=update)

    event = await next_event(communicator, "pr_update")
    assert event == {
        "type": "pr_update",
        "task_id": "T-100",
        "action": "opened",
        "branch": "feature/t-100",
        "pr": {
            "number": 42,
            "state": "open",
            "url": "https://github.example/o/r/pull/42",
            "title": "Offline mode",
        },
    }
    await communicator.disconnect()


async def test_an_agent_seen_by_the_monitor_arrives_as_agent_health(seeded, approver):
    from django.utils import timezone

    from monitoring.services import heartbeat_check

    await database_sync_to_async(AgentFactory)(name="executor", status="unknown", last_seen=timezone.now())
    communicator = await connected(approver)

    await database_sync_to_async(heartbeat_check)()

    event = await next_event(communicator, "agent_health")
    assert event["agent"]["name"] == "executor"
    assert event["agent"]["status"] == "ok"
    assert event["agent"]["last_seen"] is not None
    assert event["previous"] == "unknown"
    await communicator.disconnect()
