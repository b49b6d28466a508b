"""The agent_health event: its payload, and that the monitor sends it once per change, after commit."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from monitoring import events, services
from ssot.events import GROUP
from ssot.models import Agent
from ssot.sync import sync
from testing.factories import AgentFactory
from testing.monitor import T0, TIMEOUT, at, heartbeat


@pytest.mark.django_db
def test_agent_health_carries_the_row_the_previous_status_and_the_silence():
    agent = AgentFactory.build(
        name="executor", last_seen=T0, last_seen_via="heartbeat", status="monitor", status_since=at(61)
    )

    assert events.agent_health(agent, previous="ok", now=at(61)) == {
        "type": "agent_health",
        "agent": {
            "name": "executor",
            "status": "monitor",
            "status_since": "2026-03-02T09:01:01+00:00",
            "last_seen": "2026-03-02T09:00:00+00:00",
            "last_seen_via": "heartbeat",
        },
        "previous": "ok",
        "elapsed_sec": 61,
    }


def test_agent_health_of_an_agent_never_seen_has_no_silence():
    event = events.agent_health(Agent(name="reviewer"), previous="ok", now=T0)

    assert (event["agent"]["last_seen"], event["elapsed_sec"]) == (None, None)


async def sent_so_far(layer, channel) -> list[dict]:
    """The events the group got before now: a marker sent now arrives after them.

    Channels are FIFO as long as time moves: channels-redis orders a channel's messages by send time,
    so this test lets the clock tick.
    """
    marker = {"type": "marker", "id": id(object())}
    await layer.group_send(GROUP, {"type": "event.forward", "event": marker})
    got = []
    while (event := (await asyncio.wait_for(layer.receive(channel), timeout=10))["event"]) != marker:
        got.append(event)
    return got


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_check_sends_agent_health_once_per_change(monitor_settings, store, time_machine):
    time_machine.move_to(T0, tick=False)
    await sync_to_async(heartbeat)(store, "executor", T0)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    await sent_so_far(layer, channel)

    def check_at(seconds: float) -> None:
        time_machine.move_to(at(seconds), tick=True)
        sync()
        services.run_checks()

    await sync_to_async(check_at)(1)
    first = [e for e in await sent_so_far(layer, channel) if e["type"] == "agent_health"]
    await sync_to_async(check_at)(2)
    steady = [e for e in await sent_so_far(layer, channel) if e["type"] == "agent_health"]
    await sync_to_async(check_at)(TIMEOUT * 0.6 + 1)
    warned = [e for e in await sent_so_far(layer, channel) if e["type"] == "agent_health"]
    await sync_to_async(connections.close_all)()

    assert [(e["agent"]["name"], e["previous"], e["agent"]["status"]) for e in first] == [
        ("executor", "unknown", "ok")
    ]
    assert steady == []
    assert [(e["previous"], e["agent"]["status"], e["elapsed_sec"]) for e in warned] == [
        ("ok", "monitor", 181)
    ]
