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
from typing import Any

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


class _Events:
    """A subscription to one task's events (and the reload syncs); without a channel layer it only sleeps."""

    def __init__(self, task_id: str) -> None:
        self.layer: Any = None
        self.channel = ""
        self.groups = [task_group(task_id), RELOAD_GROUP]
        self._receiver: asyncio.Future | None = None

    @property
    def live(self) -> bool:
        return self.layer is not None

    async def __aenter__(self) -> _Events:
        try:
            layer = get_channel_layer()
            if layer is not None:
                self.channel = await layer.new_channel()
                for group in self.groups:
                    await layer.group_add(group, self.channel)
                self.layer = layer
        except Exception:
            log.warning("decision long-poll: no channel layer, polling the database instead", exc_info=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
        if self.layer is not None:
            try:
                for group in self.groups:
                    await self.layer.group_discard(group, self.channel)
            except Exception:
                log.warning("decision long-poll: could not leave the task's group", exc_info=True)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event within `timeout` seconds, or None. A receive is never cancelled mid-wait."""
        if self.layer is None:
            await asyncio.sleep(timeout)
            return None
        if self._receiver is None:
            self._receiver = asyncio.ensure_future(self.layer.receive(self.channel))
        done, _ = await asyncio.wait({self._receiver}, timeout=timeout)
        if not done:
            return None
        receiver, self._receiver = self._receiver, None
        try:
            message = receiver.result()
        except Exception:
            log.warning("decision long-poll: the channel layer failed, polling instead", exc_info=True)
            self.layer = None
            return None
        event = message.get("event") if isinstance(message, dict) else None
        return event if isinstance(event, dict) else None


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
