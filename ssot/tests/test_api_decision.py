"""GET /api/tasks/{id}/decision/?wait=N: a long-poll that answers as soon as the decision lands."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import AsyncClient

from ssot import services
from ssot.events import RELOAD_GROUP as GROUP
from ssot.sync import sync
from testing.api import awaiting, jwt_client, make_user, put_tasks, token_for
from testing.content import commit, task_doc

pytestmark = pytest.mark.usefixtures("api_settings")


@pytest.fixture
def tasks(store):
    put_tasks(store, awaiting("T-1"), task_doc("T-2", status="in_progress"))
    return store


@pytest.fixture
def bearer(tasks, deciders) -> dict[str, str]:
    make_user("coordinator")
    return {"Authorization": f"Bearer {token_for('coordinator')}"}


async def _listeners() -> set:
    """The channels waiting on decisions: every long-poll joins the reload group (stale ones included)."""
    layer: Any = get_channel_layer()  # the in-memory or the Redis layer: each is read its own way
    if hasattr(layer, "groups"):
        return set(layer.groups.get(GROUP, {}))
    connection = layer.connection(layer.consistent_hash(GROUP))
    return set(await connection.zrange(layer._group_key(GROUP), 0, -1))


async def answer(request: Any) -> tuple[Any, dict[str, Any]]:
    """A long-poll's response and its JSON body: a waiting answer streams its body (read here, as the
    server does at once), any other is a plain response."""
    response = await request
    if response.streaming:
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = response.content
    return response, json.loads(body)


async def until_waiting(before: set) -> set:
    """The listeners that joined since `before`, once there is one (a long-poll subscribes before reading)."""
    deadline = time.monotonic() + 10
    while not (joined := await _listeners() - before):
        assert time.monotonic() < deadline, "the long-poll never subscribed to the events"
        await asyncio.sleep(0.01)
    return joined


# -- answers at once -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_wait_it_answers_at_once_undecided(bearer):
    response = jwt_client(make_user("approver")).get("/api/tasks/T-1/decision/")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "task_id": "T-1",
        "status": "awaiting_approval",
        "decided": False,
        "blob_sha": body["blob_sha"],
        "decision": None,
        "waited": body["waited"],
    }
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_decided_task_answers_at_once_even_with_a_long_wait(bearer):
    services.task_reject(task_id="T-1", actor="alice", reason="needs tests")
    started = time.monotonic()
    response = jwt_client(make_user("approver")).get("/api/tasks/T-1/decision?wait=90")
    assert time.monotonic() - started < 5
    body = response.json()
    assert (body["status"], body["decided"]) == ("rejected", True)
    assert body["decision"]["action"] == "rejected"
    assert (body["decision"]["by"], body["decision"]["reason"]) == ("alice", "needs tests")


@pytest.mark.django_db
def test_the_session_of_a_staff_user_is_enough(bearer, client):
    client.force_login(make_user("staff"))
    assert client.get("/api/tasks/T-1/decision/").json()["decided"] is False


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_a_401_with_a_bearer_challenge(bearer, client):
    response = client.get("/api/tasks/T-1/decision/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_a_forged_token_is_a_401(bearer, client):
    response = client.get("/api/tasks/T-1/decision/", headers={"Authorization": "Bearer forged.token.here"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_a_token_of_an_inactive_user_is_a_401(bearer, client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="coordinator").update(is_active=False)
    assert client.get("/api/tasks/T-1/decision/", headers=bearer).status_code == 401


@pytest.mark.django_db
def test_a_user_neither_staff_nor_agent_is_a_403(bearer):
    response = jwt_client(make_user("outsider")).get("/api/tasks/T-1/decision/")
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["-1", "91", "abc", "nan", "inf", "1e400", "0x10", "9" * 5000, "%00"])
def test_a_bad_wait_is_a_400_naming_it(bearer, client, wait):
    response = client.get(f"/api/tasks/T-1/decision/?wait={wait}", headers=bearer)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "wait must be a number of seconds from 0 to 90."
    assert body["errors"] == [{"path": "wait", "message": "Must be a number of seconds from 0 to 90."}]


@pytest.mark.django_db
@pytest.mark.parametrize("task_id", ["T-404", "..", "..%2Fsecret", "a%20b"])
def test_an_unknown_or_unsafe_task_is_a_404(bearer, client, task_id):
    response = client.get(f"/api/tasks/{task_id}/decision/?wait=0", headers=bearer)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_other_methods_are_a_405(bearer, client):
    response = client.post("/api/tasks/T-1/decision/", headers=bearer)
    assert response.status_code == 405
    assert response["Allow"] == "GET"


# -- waiting -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_it_answers_as_soon_as_the_task_is_approved(bearer):
    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
    joined = await until_waiting(before)
    await sync_to_async(services.task_approve)(task_id="T-1", actor="alice", reason="ship it")
    _, body = await asyncio.wait_for(poll, timeout=10)
    assert (body["status"], body["decided"]) == ("approved", True)
    assert body["decision"] == {
        "action": "approved",
        "by": "alice",
        "at": body["decision"]["at"],
        "reason": "ship it",
    }
    assert 0 < body["waited"] < 10
    assert not joined & await _listeners()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_it_answers_when_the_coordinator_moves_the_task_on_through_the_ssot(bearer, tasks):
    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
    await until_waiting(before)

    def coordinator_withdraws() -> None:
        commit(tasks, {"tasks/T-1.json": task_doc("T-1", status="in_progress")})
        sync()

    await sync_to_async(coordinator_withdraws)()
    body = (await asyncio.wait_for(poll, timeout=10))[1]
    assert (body["status"], body["decided"], body["decision"]) == ("in_progress", True, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_without_a_decision_it_answers_undecided_when_the_wait_runs_out(bearer):
    started = time.monotonic()
    _, body = await answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=0.5", headers=bearer))
    elapsed = time.monotonic() - started
    assert (body["status"], body["decided"]) == ("awaiting_approval", False)
    assert 0.5 <= body["waited"] < 3
    assert 0.5 <= elapsed < 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_events_about_other_tasks_do_not_end_the_wait(bearer):
    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=1", headers=bearer)))
    await until_waiting(before)
    await sync_to_async(services.task_override)(task_id="T-2", actor="olga", reason="parked", status="parked")
    body = (await asyncio.wait_for(poll, timeout=10))[1]
    assert (body["task_id"], body["decided"]) == ("T-1", False)
    assert body["waited"] >= 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_a_partial_approval_does_not_end_the_wait_and_the_last_one_does(bearer, tasks):
    def two_approvers() -> None:
        commit(
            tasks,
            {"policy/approvals.json": {"levels": {"medium": {"approvals": 2, "groups": ["approvers"]}}}},
        )
        sync()

    await sync_to_async(two_approvers)()
    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=1", headers=bearer)))
    await until_waiting(before)
    partial = await sync_to_async(services.task_approve)(task_id="T-1", actor="alice")
    assert (partial.have, partial.need) == (1, 2)
    body = (await asyncio.wait_for(poll, timeout=10))[1]
    assert (body["status"], body["decided"]) == ("awaiting_approval", False)
    assert body["waited"] >= 1

    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
    await until_waiting(before)
    await sync_to_async(services.task_approve)(task_id="T-1", actor="bob", reason="second")
    body = (await asyncio.wait_for(poll, timeout=10))[1]
    assert (body["status"], body["decided"], body["decision"]["by"]) == ("approved", True, "bob")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_many_waits_each_end_with_their_deadline(bearer):
    """Twenty concurrent waits with nothing to answer: each ends undecided, after its own deadline.
    (That waits hold no thread is shown by the thirty waiters below, all subscribed at once.)"""
    client = AsyncClient()
    answers = await asyncio.gather(
        *(answer(client.get("/api/tasks/T-1/decision/?wait=1", headers=bearer)) for _ in range(20))
    )
    assert all(body["decided"] is False and body["waited"] >= 1 for _, body in answers)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_with_the_channel_layer_down_it_polls_the_database(bearer, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1"]},
        }
    }
    polling = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Told(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "polling the database instead" in record.getMessage():
                loop.call_soon_threadsafe(polling.set)

    told = Told()
    logging.getLogger("ssot.api.longpoll").addHandler(told)
    try:
        poll = asyncio.create_task(
            answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=30", headers=bearer))
        )
        await asyncio.wait_for(polling.wait(), timeout=30)  # the poll found no layer and polls instead
    finally:
        logging.getLogger("ssot.api.longpoll").removeHandler(told)
    await sync_to_async(services.task_approve)(task_id="T-1", actor="alice")
    body = (await asyncio.wait_for(poll, timeout=30))[1]
    assert (body["status"], body["decided"]) == ("approved", True)
    assert body["waited"] < 30  # read from the database before its deadline, with no event to wake it


# -- one group per task, the answer carried by the event -------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_a_waiter_listens_on_its_tasks_group_not_on_every_event(bearer):
    from ssot.events import GROUP as EVERY_EVENT
    from ssot.events import task_group

    layer: Any = get_channel_layer()
    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
    [channel] = await until_waiting(before)

    async def members(group: str) -> set:
        if hasattr(layer, "groups"):
            return set(layer.groups.get(group, {}))
        connection = layer.connection(layer.consistent_hash(group))
        return set(await connection.zrange(layer._group_key(group), 0, -1))

    assert channel in await members(task_group("T-1"))
    assert channel not in await members(EVERY_EVENT)
    assert channel not in await members(task_group("T-2"))
    await sync_to_async(services.task_approve)(task_id="T-1", actor="alice")
    assert (await asyncio.wait_for(poll, timeout=10))[1]["decided"] is True
    assert channel not in await members(task_group("T-1"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_answer_is_built_from_the_decision_event_without_reading_the_row(bearer):
    """An event that says T-1 was approved, while the row still says awaiting: the waiter answers from
    the event (a re-read would have kept it waiting)."""
    from ssot import events
    from ssot.models import Task

    before = await _listeners()
    poll = asyncio.create_task(answer(AsyncClient().get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
    await until_waiting(before)
    task = await Task.objects.aget(task_id="T-1")
    task.status = "approved"
    task.document = {
        **task.document,
        "status": "approved",
        "approved_by": "bob",
        "approved_at": "2026-11-30T20:00:00+00:00",
    }
    event = events.task_decision(
        "task_approved", task, actor="bob", reason="", prev_status="awaiting_approval"
    )
    await sync_to_async(events.send_now)(event)

    body = (await asyncio.wait_for(poll, timeout=10))[1]

    assert (body["status"], body["decided"], body["blob_sha"]) == ("approved", True, task.blob_sha)
    assert body["decision"] == {
        "action": "approved",
        "by": "bob",
        "at": "2026-11-30T20:00:00+00:00",
        "reason": None,
    }
    assert (await Task.objects.aget(task_id="T-1")).status == "awaiting_approval"


def test_long_task_ids_get_valid_group_names():
    from channels.layers import BaseChannelLayer

    from ssot.events import task_group

    for task_id in ("T-1", "a" * 90, "b" * 128, "x.y_z-1" * 18):
        name = task_group(task_id[:128])
        assert BaseChannelLayer().require_valid_group_name(name)
    assert task_group("a" * 127 + "b") != task_group("a" * 127 + "c")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_waiters_on_one_task_share_one_subscription_and_are_all_answered(bearer):
    """Thirty waiters on T-1: one channel in its group (the layer delivers one copy to the process)."""
    from ssot.events import task_group

    layer: Any = get_channel_layer()

    async def members(group: str) -> set:
        if hasattr(layer, "groups"):
            return set(layer.groups.get(group, {}))
        connection = layer.connection(layer.consistent_hash(group))
        return set(await connection.zrange(layer._group_key(group), 0, -1))

    before = await members(task_group("T-1"))
    client = AsyncClient()
    polls = [
        asyncio.create_task(answer(client.get("/api/tasks/T-1/decision/?wait=60", headers=bearer)))
        for _ in range(30)
    ]
    from ssot.api.longpoll import _Subscription

    deadline = time.monotonic() + 60  # a guard against a hang, not a timing: a loaded machine is slow
    while sum(len(sub.queues) for sub in _Subscription._open.values()) < 30:
        assert time.monotonic() < deadline, "the thirty long-polls never all subscribed"
        await asyncio.sleep(0.01)
    assert len(await members(task_group("T-1")) - before) == 1
    await sync_to_async(services.task_approve)(task_id="T-1", actor="alice")
    answers = await asyncio.wait_for(asyncio.gather(*polls), timeout=20)
    assert all(body["decided"] and body["status"] == "approved" for _, body in answers)
    assert await members(task_group("T-1")) - before == set()
    assert not _Subscription._open
