"""The live events WebSocket `/ws/events/` (SPEC section 9).

The consumer only authenticates, joins the `events` group, sends the `init` snapshot and forwards what
the services broadcast, with a keep-alive `ping`. It never builds an event itself. A slow client cannot
hold up the others: group sends drop messages for a channel that is full (CHANNEL_CAPACITY) instead of
waiting, and daphne closes a connection that stops answering its WebSocket pings.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from monitoring import snapshot
from monitoring.ws_auth import may_watch, still_allowed
from ssot.events import GROUP

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class EventsConsumer(AsyncJsonWebsocketConsumer):
    pinger: asyncio.Task | None = None
    guard: asyncio.Task | None = None
    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        # Accept first: a close before the handshake completes reaches the client as a bare HTTP 403.
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await may_watch(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join before the snapshot is read: an event racing it arrives after `init` and is re-applied.
        await self.channel_layer.group_add(GROUP, self.channel_name)
        self.joined = True
        await self.send_json(await database_sync_to_async(snapshot.build)())
        self.pinger = asyncio.create_task(self._ping())
        self.guard = asyncio.create_task(self._recheck())

    async def disconnect(self, code: int) -> None:
        for task in (self.pinger, self.guard):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.joined:
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Clients have nothing to say on this socket; whatever they send is ignored."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Forwarding touches no database: skip channels' per-message hop to the DB thread (to close old
        # connections), which would push every delivery to every client through that one thread.
        if message["type"] == "event.forward":
            await self.event_forward(message)
            return
        await super().dispatch(message)

    async def event_forward(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])

    async def _recheck(self) -> None:
        """Close the socket (4401) once its credential no longer holds: a revoked or expired key or
        token, a deactivated user. Checked every WS_AUTH_RECHECK_SEC."""
        while True:
            await asyncio.sleep(settings.WS_AUTH_RECHECK_SEC)
            if not await still_allowed(self.scope):
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(settings.WS_PING_SEC)
            await self.send_json({"type": "ping"})
