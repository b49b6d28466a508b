"""Scale-out (SPEC section 13): daphne processes on one Redis channel layer, real WebSocket clients.

The servers always use Redis (REDIS_URL, else the local Redis every machine here and CI runs), each test
with a channel-layer prefix of its own, and share the test database and SSOT with this process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from ssot.documents import dump_json
from ssot.events import GROUP
from ssot.sync import sync
from testing.content import task_doc
from testing.factories import UserFactory
from testing.live import access_token
from testing.server import LOCAL_REDIS, Daphne, post_json, server_env, start_all

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REDIS_URL = settings.REDIS_URL or LOCAL_REDIS
ORIGIN = Origin("http://127.0.0.1")
WAIT_SEC = 10


@pytest.fixture
def prefix() -> str:
    return f"scaleout_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def approver():
    return UserFactory(username="alice", password="!", groups=["approvers"])


@pytest.fixture
def seeded(store):
    store.commit(
        parent=store.head(),
        writes={"tasks/T-200.json": dump_json(task_doc("T-200", "awaiting_approval"))},
        message="seed",
        author="coordinator",
    )
    sync()
    return store


def _servers(count: int, ssot_path, prefix: str) -> Iterator[list[Daphne]]:
    env = server_env(ssot_path=ssot_path, redis_url=REDIS_URL, prefix=prefix)
    servers = [Daphne(env, name=f"daphne-{index}") for index in range(count)]
    try:
        start_all(servers)
        yield servers
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def two_servers(ssot_path, prefix):
    yield from _servers(2, ssot_path, prefix)


@pytest.fixture
def one_server(ssot_path, prefix):
    yield from _servers(1, ssot_path, prefix)


async def receive(client: ClientConnection, kind: str) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(client.recv(), timeout=WAIT_SEC))
        if event["type"] == kind:
            return event


async def test_a_change_made_through_one_server_reaches_the_clients_of_both(seeded, two_servers, approver):
    token = access_token(approver)
    first, second = two_servers
    async with (
        connect(f"{first.ws_url}?token={token}", origin=ORIGIN) as client_first,
        connect(f"{second.ws_url}?token={token}", origin=ORIGIN) as client_second,
    ):
        for client in (client_first, client_second):
            init = await receive(client, "init")
            assert [task["status"] for task in init["tasks"]] == ["awaiting_approval"]

        status, body = await asyncio.to_thread(
            post_json,
            f"{first.url}/api/tasks/T-200/approve/",
            json.dumps({"reason": "scaled"}).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert status == 200, body

        for client in (client_first, client_second):
            approved = await receive(client, "task_approved")
            assert approved["task_id"] == "T-200"
            assert approved["actor"] == "alice"
            assert approved["reason"] == "scaled"
            assert approved["task"]["status"] == "approved"


def _stalled_socket(server: Daphne, token: str) -> socket.socket:
    """A WebSocket client that completes the handshake, reads its `init`, then never reads again."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_SEC)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/events/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Origin: {ORIGIN}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    seen = b""
    while b'"init"' not in seen:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the stalled client before its init"
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 101")
    return sock


async def test_a_stalled_socket_does_not_delay_the_other_clients(one_server, approver, prefix):
    (server,) = one_server
    token = access_token(approver)
    stalled = await asyncio.to_thread(_stalled_socket, server, token)
    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    padding = "x" * 8000
    slowest = 0.0
    try:
        async with connect(f"{server.ws_url}?token={token}", origin=ORIGIN) as client:
            await receive(client, "init")
            # Far more than the stalled client's socket buffers and its channel's capacity can hold.
            for number in range(300):
                started = time.monotonic()
                event = {"type": "audit", "entry": {"id": number, "detail": padding}}
                await layer.group_send(GROUP, {"type": "event.forward", "event": event})
                received = await receive(client, "audit")
                slowest = max(slowest, time.monotonic() - started)
                assert received["entry"]["id"] == number
    finally:
        stalled.close()
        await layer.flush()
        await layer.close_pools()
    assert slowest < 1.0
