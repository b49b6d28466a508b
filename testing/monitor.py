"""Helpers of the monitor's tests: real SSOT writes (commit + sync), time, and a local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db import connection

import amp
from monitoring import services
from ssot.paths import ack_path, heartbeat_path, message_path, task_path
from ssot.stores.base import Store
from ssot.sync import sync
from testing import content

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIMEOUT = 300  # HEARTBEAT_TIMEOUT_SEC in these tests: monitor after 180 s, timeout after 300 s.
# SSOT_POLL_SEC and HEARTBEAT_INTERVAL_SEC: the mirror is stale after 2 x 60 + 60 + 30 = 210 s unsynced.
POLL = 60
STALE = 210


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def commit(store: Store, writes: dict[str, Any], *, author: str) -> str:
    """Commit files as `author` (dicts are written as the control plane writes JSON), then sync the mirror."""
    head = content.commit(store, writes, author=author, message=f"test by {author}")
    sync()
    return head


def heartbeat(store: Store, agent: str, when: datetime) -> None:
    commit(store, {heartbeat_path(agent): {"agent": agent, "at": when.isoformat()}}, author=agent)


PAYLOADS: dict[str, dict[str, Any]] = {
    "task_dispatch": {"branch": "feature/t-1", "acceptance_criteria": ["tests pass"]},
    "task_result": {"summary": "done"},
    "review_request": {"summary": "please review"},
    "review_verdict": {"verdict": "approve"},
}


def send(
    store: Store,
    *,
    msg_type: str = "task_dispatch",
    sender: str = "coordinator",
    recipient: str = "executor",
    task_id: str = "T-1",
    when: datetime,
    context_ref: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An AMP message committed by its sender (as an agent pushes it), then synced."""
    envelope = amp.build_envelope(
        msg_type=msg_type,
        sender=sender,
        recipient=recipient,
        task_id=task_id,
        payload=PAYLOADS[msg_type],
        context_ref=context_ref,
        now=when,
    )
    commit(store, {message_path(envelope["msg_id"]): envelope}, author=sender)
    return envelope


def ack_file(store: Store, msg_id: str, *, by: str, when: datetime) -> None:
    commit(store, {ack_path(msg_id): {"msg_id": msg_id, "by": by, "at": when.isoformat()}}, author=by)


def task(store: Store, task_id: str, **fields: Any) -> None:
    commit(store, {task_path(task_id): content.task_doc(task_id, **fields)}, author="test")


def check(time_machine: Any, when: datetime, *, poll: bool = True) -> services.CheckReport:
    """At `when`: the poll (unless it is down), then one heartbeat check and one ACK scan."""
    time_machine.move_to(when, tick=False)
    if poll:
        sync()
    return services.run_checks()


def _head(store: Store) -> str:
    head = store.head()
    assert head is not None, "the SSOT has no commit yet"
    return head


def ssot_json(store: Store, path: str) -> dict[str, Any] | None:
    entry = store.entry(_head(store), path)
    return json.loads(store.read(entry.sha)) if entry else None


def ssot_paths(store: Store, prefix: str) -> list[str]:
    return sorted(entry.path for entry in store.list(_head(store), prefix))


def audit_lines(store: Store) -> list[dict[str, Any]]:
    """Every audit line in the SSOT, in file order."""
    lines = []
    for path in ssot_paths(store, "audit/"):
        if path.endswith(".jsonl"):
            entry = store.entry(_head(store), path)
            assert entry is not None
            lines += [json.loads(line) for line in store.read(entry.sha).decode().splitlines() if line]
    return lines


def concurrently(work: Callable[[], Any], workers: int = 2) -> list[Any]:
    """Run `work` in threads that start together, each on its own DB connection."""
    barrier = threading.Barrier(workers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@dataclass
class Receiver:
    """A local HTTP server recording what Apprise's json:// plugin posts; /fail answers 500."""

    port: int = 0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "ok", auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.port}/{path}"

    def bodies(self, path: str = "/ok") -> list[dict[str, Any]]:
        return [body for got, body in self.received if got == path]

    def wait_for(self, count: int, path: str = "/ok", timeout: float = 30) -> list[dict[str, Any]]:
        """Block until `path` has received `count` bodies (woken by each arrival); then all of them."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.bodies(path)) >= count, timeout=timeout):
                raise AssertionError(
                    f"{path} received {len(self.bodies(path))} of {count} within {timeout} s"
                )
            return self.bodies(path)


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.arrived:
                state.received.append((self.path, body))
                state.arrived.notify_all()
            self.send_response(500 if self.path.startswith("/fail") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(settings: Any) -> None:
    """Short, round numbers for the monitor, and no notification targets unless a test sets some."""
    settings.HEARTBEAT_TIMEOUT_SEC = TIMEOUT
    settings.HEARTBEAT_INTERVAL_SEC = POLL
    settings.SSOT_POLL_SEC = POLL
    settings.AGENTS = ["coordinator", "executor", "reviewer"]
    settings.NOTIFY_URLS = []
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_ADMIN_CHAT_ID = ""
