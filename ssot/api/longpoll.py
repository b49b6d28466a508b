"""GET /api/tasks/{task_id}/decision/?wait=N: answer as soon as the task leaves awaiting_approval.

A plain Django view (DRF has no async views) that checks the request in one thread hop and answers 200
with a body that waits on the event loop (`StreamingHttpResponse` over an async iterator), so a waiting
request holds neither a worker thread nor a database connection: it authenticates like the API (API
key, JWT, else the session), reads the row, then subscribes, re-reads it, and waits on the channel
layer's group of its own task (`task.<task_id>`, see ssot.events.groups_of) — not on every event.
A task event carries the task's status, blob SHA and latest decision, so the answer is built from the
event itself, with no re-read: 200 waiters are answered by one group send each, not by 200 queries.
The row is re-read only when the task is removed, when a sync was too large for per-row events (the
`events.reload` group), every RECHECK_SEC as a safety net for a missed event, and every POLL_SEC when
no channel layer can be reached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

import amp
from core.permissions import may_read
from ssot import selectors
from ssot.authentication import ApiKeyAuthentication, RevocableJWTAuthentication
from ssot.events import RELOAD_GROUP, task_group
from ssot.models import Task

log = logging.getLogger(__name__)

MAX_WAIT = 90
RECHECK_SEC = 5.0
POLL_SEC = 0.25


def _error(
    detail: str,
    code: str,
    status: int,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _release_connection() -> None:
    """Close this thread's connection so that nothing is held while the request waits."""
    if not connection.in_atomic_block:
        connection.close()


def _state_sync(task_id: str) -> dict[str, Any] | None:
    try:
        return selectors.decision_state(task_id)
    finally:
        _release_connection()


def parse_wait(raw: str | None) -> float | None:
    """Seconds to wait, 0 to MAX_WAIT (decimals allowed); None when `raw` is not such a number."""
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT:
        return None
    return value


_FAILED: dict[str, Any] = {"type": "_layer_failed"}


class _Subscription:
    """One channel of the layer per task and event loop, shared by every waiter on that task: the layer
    delivers one copy of an event to this process (channels-redis pops the copies of a group send one
    Redis round trip at a time, so 200 waiters with a channel each were answered over ~300 ms), and
    this puts it in each waiter's queue. Made by the first waiter, dropped by the last."""

    _open: ClassVar[dict[tuple[int, str], _Subscription]] = {}

    def __init__(self, layer: Any, task_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.key = (id(loop), task_id)
        self.loop = loop
        self.groups = [task_group(task_id), RELOAD_GROUP]
        self.channel = ""
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.ready = asyncio.Event()
        self.failed = False
        self.reader: asyncio.Future[None] | None = None

    @classmethod
    async def join(cls, task_id: str) -> tuple[_Subscription, asyncio.Queue[dict[str, Any]]] | None:
        """Subscribe to the task's events (None: no channel layer can be reached)."""
        layer = get_channel_layer()
        if layer is None:
            return None
        loop = asyncio.get_running_loop()
        found = cls._open.get((id(loop), task_id))
        if found is None or found.loop is not loop or found.failed:
            found = cls(layer, task_id, loop)
            cls._open[found.key] = found
            try:
                found.channel = await layer.new_channel()
                for group in found.groups:
                    await layer.group_add(group, found.channel)
            except Exception:
                found.failed = True
                cls._open.pop(found.key, None)
                raise
            finally:
                found.ready.set()
            found.reader = asyncio.ensure_future(found._read())
        else:
            await found.ready.wait()
            if found.failed:
                raise RuntimeError("the channel layer failed")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        found.queues.add(queue)
        return found, queue

    async def leave(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.queues.discard(queue)
        if self.queues:
            return
        if self._open.get(self.key) is self:
            del self._open[self.key]
        if self.reader is not None:
            self.reader.cancel()
        try:
            for group in self.groups:
                await self.layer.group_discard(group, self.channel)
        except Exception:
            log.warning("decision long-poll: could not leave the task's group", exc_info=True)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("decision long-poll: the channel layer failed, polling instead", exc_info=True)
                self.failed = True
                for queue in list(self.queues):
                    queue.put_nowait(_FAILED)
                return
            event = message.get("event") if isinstance(message, dict) else None
            if isinstance(event, dict):
                for queue in list(self.queues):
                    queue.put_nowait(event)


class _Events:
    """A waiter's view of its task's events (and the reload syncs); without a channel layer it sleeps."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.subscription: _Subscription | None = None
        self.queue: asyncio.Queue[dict[str, Any]] | None = None
        self.dead = False  # the layer failed: poll the database instead

    @property
    def live(self) -> bool:
        return self.queue is not None and not self.dead

    async def __aenter__(self) -> _Events:
        try:
            joined = await _Subscription.join(self.task_id)
        except Exception:
            log.warning("decision long-poll: no channel layer, polling the database instead", exc_info=True)
            joined = None
        if joined is not None:
            self.subscription, self.queue = joined
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.subscription is not None and self.queue is not None:
            await self.subscription.leave(self.queue)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event within `timeout` seconds, or None."""
        if self.queue is None or self.dead:
            await asyncio.sleep(timeout)
            return None
        try:
            event = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if event is _FAILED:
            self.dead = True
            return None
        return event


def carried_state(event: dict[str, Any], task_id: str) -> dict[str, Any] | None:
    """The answer an event about the task carries (the shape of `selectors.decision_state`), or None."""
    task = event.get("task")
    if event.get("task_id") != task_id or not isinstance(task, dict) or "status" not in task:
        return None
    decided = task["status"] != Task.AWAITING_APPROVAL
    decision = event.get("decision")
    return {
        "task_id": task_id,
        "status": task["status"],
        "decided": decided,
        "blob_sha": task.get("blob_sha", ""),
        "decision": decision if decided and isinstance(decision, dict) else None,
    }


def _must_reread(event: dict[str, Any], task_id: str) -> bool:
    """The task was removed, or a sync changed too much for per-row events (other events of the task,
    `ci_update`, `approval_progress`..., change nothing the answer holds)."""
    removed = event.get("type") == "task_update" and event.get("task_id") == task_id and event.get("removed")
    return bool(removed) or event.get("type") == "sync"


async def _wait(task_id: str, seconds: float) -> dict[str, Any] | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    # Subscribe before the first read, so that a decision landing in between is not missed.
    async with _Events(task_id) as events:
        state = await sync_to_async(_state_sync)(task_id)
        while state is not None and not state["decided"]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            check_at = loop.time() + min(RECHECK_SEC if events.live else POLL_SEC, remaining)
            reread = True
            while (left := check_at - loop.time()) > 0:
                event = await events.next(left)
                if event is None:
                    continue
                carried = carried_state(event, task_id)
                if carried is not None:
                    state, reread = carried, False
                    break
                if _must_reread(event, task_id):
                    break
            if reread:
                state = await sync_to_async(_state_sync)(task_id)
    return state


def _authorize_sync(request: HttpRequest) -> JsonResponse | None:
    """None for a staff user or an agent; else the 401 (with the API's bearer challenge) or the 403."""
    authenticator = RevocableJWTAuthentication()
    challenge = {"WWW-Authenticate": authenticator.authenticate_header(Request(request))}
    try:
        wrapped = Request(request)
        found = ApiKeyAuthentication().authenticate(wrapped) or authenticator.authenticate(wrapped)
        user = found[0] if found is not None else request.user
    except AuthenticationFailed as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        code = detail.get("code", "authentication_failed")
        return _error(str(detail.get("detail", "")), str(code), 401, headers=challenge)
    if not user.is_authenticated:
        return _error(
            "Authentication credentials were not provided.", "not_authenticated", 401, headers=challenge
        )
    if not may_read(user):
        return _error("Reading needs a staff account or an agent account.", "permission_denied", 403)
    return None


async def _answer(task_id: str, wait: float, started: float) -> AsyncIterator[bytes]:
    """The body of a waiting answer: subscribe, read, wait; one JSON object when decided or timed out."""
    try:
        state = await _wait(task_id, max(0.0, started + wait - time.monotonic()))
    except Exception:
        log.exception("decision long-poll of %s: the wait failed", task_id)
        state = await sync_to_async(_state_sync)(task_id)
    if state is None:  # removed while it waited (the 200 is sent already)
        state = {"task_id": task_id, "status": None, "decided": True, "blob_sha": "", "decision": None}
        state["removed"] = True
    state["waited"] = round(time.monotonic() - started, 3)
    yield json.dumps(state, cls=DjangoJSONEncoder).encode()


def task_decision(request: HttpRequest, task_id: str) -> HttpResponseBase:
    """The task's status once decided, or after `wait` seconds: {task_id, status, decided, decision, ...}.

    A sync view that checks everything at once (its middleware in one thread hop, as every sync view
    here) and, when the task still awaits approval, answers 200 with a body that waits on the event
    loop (an async iterator): the wait holds no thread and no connection, and answering 200 waiters
    costs one hop each at the end (the response's close), not the ~15 of Django's async middleware."""
    started = time.monotonic()
    if request.method != "GET":
        return _error(
            f'Method "{request.method}" not allowed.', "method_not_allowed", 405, headers={"Allow": "GET"}
        )
    refused = _authorize_sync(request)
    if refused is not None:
        return refused
    wait = parse_wait(request.GET.get("wait"))
    if wait is None:
        return _error(
            f"wait must be a number of seconds from 0 to {MAX_WAIT}.",
            "bad_request",
            400,
            errors=[{"path": "wait", "message": f"Must be a number of seconds from 0 to {MAX_WAIT}."}],
        )
    if not amp.is_safe_id(task_id):
        return _error(f"No task {task_id[:80]!r}.", "not_found", 404)
    state = selectors.decision_state(task_id)
    if state is None:
        return _error(f"No task {task_id!r}.", "not_found", 404)
    response: HttpResponseBase
    if state["decided"] or wait == 0:
        state["waited"] = round(time.monotonic() - started, 3)
        response = JsonResponse(state)
    else:
        response = StreamingHttpResponse(_answer(task_id, wait, started), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
