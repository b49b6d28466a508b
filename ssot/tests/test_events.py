"""Sending events from code no server loop drives (the worker, commands): one loop per process."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from ssot import events
from testing.forks import in_forked_child


@pytest.fixture
def member():
    """A channel in the events group; returns a function that reads what arrived, in order."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.GROUP, channel)

    def received(count: int) -> list[dict]:
        """The next `count` events this test sent (tagged `test_events`); others' events are skipped."""

        async def read() -> list[dict]:
            mine: list[dict] = []
            while len(mine) < count:
                event = (await asyncio.wait_for(layer.receive(channel), 5))["event"]
                if event.get("entry", {}).get("source") == "test_events":
                    mine.append(event)
            return mine

        return async_to_sync(read)()

    yield received
    async_to_sync(layer.group_discard)(events.GROUP, channel)


def test_sends_without_a_server_loop_share_one_process_loop(member):
    loops = []

    def worker_thread():
        for number in range(3):
            events.send_now({"type": "audit", "entry": {"id": number, "source": "test_events"}})
            loops.append(events._process_loop._loop)

    thread = threading.Thread(target=worker_thread)
    thread.start()
    thread.join(10)

    assert [event["entry"]["id"] for event in member(3)] == [0, 1, 2]
    assert len({id(loop) for loop in loops}) == 1 and loops[0].is_running()
    assert any(t.name == "events-loop" for t in threading.enumerate())


async def test_a_view_thread_under_a_server_loop_sends_on_that_loop(monkeypatch):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.GROUP, channel)
    used = []
    monkeypatch.setattr(events._process_loop, "run", lambda coroutine: used.append(coroutine))
    try:
        await sync_to_async(events.send_now)({"type": "audit", "entry": {"id": 7}})
        message = await asyncio.wait_for(layer.receive(channel), 5)
    finally:
        await layer.group_discard(events.GROUP, channel)

    assert message["event"]["entry"]["id"] == 7
    assert used == []  # the process loop was not involved


def test_a_forked_child_starts_its_own_loop():
    events.send_now({"type": "audit", "entry": {"id": 1}})
    parent_loop = events._process_loop._loop

    def child() -> str:
        forgot = events._process_loop._loop is None
        events.send_now({"type": "audit", "entry": {"id": 2}})
        own = events._process_loop._loop
        return f"{forgot} {own is not None and own.is_running()}"

    assert in_forked_child(child) == "True True"
    assert events._process_loop._loop is parent_loop and parent_loop.is_running()
