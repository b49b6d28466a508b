"""The embedded channel layer carries group sends between the processes of one deployment."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import uuid

import pytest

from monitoring.layers import SEND_TIMEOUT_SEC, LocalChannelLayer, peers_directory


@pytest.fixture
def deployment(settings):
    """A deployment of its own, so that no other process of the machine takes part."""
    settings.CHANNEL_LAYER_PREFIX = f"layertest_{uuid.uuid4().hex[:10]}"
    yield peers_directory()
    shutil.rmtree(peers_directory(), ignore_errors=True)


async def member(layer: LocalChannelLayer, group: str = "events") -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def test_a_group_send_reaches_the_members_in_another_process(deployment):
    worker, server = LocalChannelLayer(), LocalChannelLayer()
    channel = await member(server)

    await worker.group_send("events", {"type": "event.forward", "event": {"type": "ping"}})

    assert await asyncio.wait_for(server.receive(channel), 2) == {
        "type": "event.forward",
        "event": {"type": "ping"},
    }
    await server.close()


async def test_local_members_get_a_message_once(deployment):
    server, other = LocalChannelLayer(), LocalChannelLayer()
    mine, theirs = await member(server), await member(other)

    await server.group_send("events", {"type": "event.forward", "n": 1})

    assert (await asyncio.wait_for(server.receive(mine), 2))["n"] == 1
    assert (await asyncio.wait_for(other.receive(theirs), 2))["n"] == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.receive(mine), 0.2)
    await server.close()
    await other.close()


async def test_other_groups_are_not_disturbed(deployment):
    worker, server = LocalChannelLayer(), LocalChannelLayer()
    channel = await member(server, "events")

    await worker.group_send("elsewhere", {"type": "event.forward"})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.receive(channel), 0.2)
    await server.close()


async def test_the_socket_of_a_dead_process_is_removed(deployment):
    deployment.mkdir(mode=0o700, exist_ok=True)
    dead = deployment / "99999999-dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(dead))

    await LocalChannelLayer().group_send("events", {"type": "event.forward"})

    assert not dead.exists()


async def test_a_process_that_stops_reading_is_skipped_without_holding_up_the_sender(deployment):
    deployment.mkdir(mode=0o700, exist_ok=True)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck.bind(str(deployment / "1-stuck.sock"))
    worker, server = LocalChannelLayer(), LocalChannelLayer()
    channel = await member(server)
    started = time.monotonic()
    try:
        for number in range(100):
            await worker.group_send("events", {"type": "event.forward", "n": number})
            assert (await asyncio.wait_for(server.receive(channel), 2))["n"] == number
    finally:
        stuck.close()
        await server.close()
    # The stuck socket cost one send timeout, once; then it was skipped.
    assert time.monotonic() - started < SEND_TIMEOUT_SEC + 2


async def test_listening_sweeps_the_sockets_of_killed_processes(deployment):
    other = deployment.with_name(deployment.name + "x")
    other.mkdir(mode=0o700)
    dead = other / "99999999-killed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(dead))
    server = LocalChannelLayer()

    await member(server)

    assert not dead.exists()
    assert not other.exists()
    await server.close()


async def test_a_peers_directory_others_can_enter_is_refused(deployment):
    deployment.mkdir(mode=0o755)
    deployment.chmod(0o755)
    (deployment / "planted").write_text("not ours to sweep")
    layer = LocalChannelLayer()
    with pytest.raises(PermissionError, match="not a private directory"):
        await member(layer)
