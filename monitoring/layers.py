"""The embedded channel layer: in memory, plus group sends carried to the other processes of the machine.

With no REDIS_URL, `make run` is daphne and a django-q2 worker side by side; the worker's syncs (webhook
pushes, the poll) and monitor checks send events too, and a purely in-memory layer would lose them in
the worker. Here every process keeps its groups in memory; a process that has group members (daphne)
listens on a Unix datagram socket, and a group send is delivered locally and written once to every
listening peer that shares this deployment's database. A peer that keeps up gets every event (the
kernel queues only a few datagrams per socket, so a burst waits for it briefly); a peer that does not
read within SEND_TIMEOUT_SEC is skipped for SKIP_SEC and logged, like channels' capacity rule drops
messages for a full channel. Single-machine by nature, as SQLite is; with Redis, channels-redis is used.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

MAX_DATAGRAM = 200_000
# channels' in-memory layer scans every channel and group for expired messages on each receive and
# send: quadratic with a thousand clients. Once a second is enough to drop what has expired.
CLEAN_EVERY_SEC = 1.0
SEND_TIMEOUT_SEC = 0.25
SKIP_SEC = 5.0


def peers_directory() -> Path:
    """One directory per deployment: the same prefix, var/ directory and database share events."""
    database = str(connections["default"].settings_dict["NAME"])
    key = f"{settings.CHANNEL_LAYER_PREFIX}|{Path(settings.VAR_DIR).resolve()}|{database}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    # Under the temporary directory: a socket path must stay short (108 bytes), wherever var/ is.
    return Path(tempfile.gettempdir()) / f"agentos-layer-{os.getuid()}-{digest}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_sockets() -> None:
    """Remove the sockets of processes that died without removing them (killed), of every deployment."""
    for directory in Path(tempfile.gettempdir()).glob(f"agentos-layer-{os.getuid()}-*"):
        for path in directory.glob("*.sock"):
            pid = path.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()


def _check_private(directory: Path) -> None:
    """Refuse a peers directory someone else made or can enter: its sockets carry every event."""
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{directory} is not a private directory of this user; remove it")


class LocalChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer whose group sends also reach the listening processes of the deployment."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory: Path | None = None
        self.address: Path | None = None
        self.listener: socket.socket | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sender.settimeout(SEND_TIMEOUT_SEC)
        self.skipped_until: dict[str, float] = {}
        self.next_clean = 0.0

    def _directory(self) -> Path:
        if self.directory is None:
            self.directory = peers_directory()
        return self.directory

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now >= self.next_clean:
            self.next_clean = now + CLEAN_EVERY_SEC
            super()._clean_expired()  # type: ignore[misc]  # channels' private method, not in its stubs

    # -- listening (processes with group members) ------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._listen(asyncio.get_running_loop())

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.listener is None:
            sweep_dead_sockets()
            address = self._directory() / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            for attempt in range(3):
                self._directory().mkdir(mode=0o700, exist_ok=True)
                _check_private(self._directory())
                try:
                    listener.bind(str(address))
                    break
                except FileNotFoundError:
                    # Another process swept the (then empty) directory between our mkdir and bind.
                    if attempt == 2:
                        raise
            listener.setblocking(False)
            self.address, self.listener = address, listener
            atexit.register(self._unlink)
        if self.loop is not loop:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(self.listener.fileno())
            loop.add_reader(self.listener.fileno(), self._readable)
            self.loop = loop

    def _readable(self) -> None:
        assert self.listener is not None  # a reader only of the listener `_listen` made
        while True:
            try:
                data = self.listener.recv(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return
            try:
                group, message = json.loads(data)
            except (ValueError, TypeError):
                log.warning("dropped a malformed datagram on %s", self.address)
                continue
            self._deliver(group, message)

    def _unlink(self) -> None:
        if self.address is not None:
            with contextlib.suppress(OSError):
                self.address.unlink()
            # The last listener of the deployment leaves nothing behind.
            with contextlib.suppress(OSError):
                self.address.parent.rmdir()

    # -- sending ---------------------------------------------------------------------------------

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self._deliver(group, message)
        self._fan_out(group, message)

    def _deliver(self, group: str, message: dict[str, Any]) -> None:
        """Queue the message for every member here; a full channel is skipped, as channels does."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        # One copy for all the members (consumers only read what they receive), and no task per member:
        # with a thousand clients the copies and tasks cost more than the sends.
        entry = (time.time() + self.expiry, copy.deepcopy(message))
        for channel in list(self.groups.get(group, ())):
            queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(entry)

    def _fan_out(self, group: str, message: dict[str, Any]) -> None:
        # No directory yet: no process of the deployment listens (glob finds nothing).
        peers = [path for path in self._directory().glob("*.sock") if path != self.address]
        if not peers:
            return
        data = json.dumps([group, message], separators=(",", ":")).encode()
        if len(data) > MAX_DATAGRAM:
            log.warning("a %s message of %d bytes is too big for the other processes", group, len(data))
            return
        for peer in peers:
            if self.skipped_until.get(peer.name, 0.0) > time.monotonic():
                continue
            try:
                self.sender.sendto(data, str(peer))
            except (ConnectionRefusedError, FileNotFoundError):
                # Its process is gone without removing its socket.
                with contextlib.suppress(OSError):
                    peer.unlink()
            except (TimeoutError, BlockingIOError):
                self.skipped_until[peer.name] = time.monotonic() + SKIP_SEC
                log.warning("process socket %s is not read; skipped for %.0f s", peer.name, SKIP_SEC)
            except OSError as exc:
                log.warning("could not reach %s: %s", peer.name, exc)

    async def close(self) -> None:
        if self.listener is not None:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(self.listener.fileno())
            self.listener.close()
            self._unlink()
            self.listener = self.loop = self.address = None
