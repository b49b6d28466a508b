"""Django's ASGI handler, with sync views run in one thread hop each and a bounded number at a time.

Two things made one daphne process slow under many concurrent requests (measured: a webhook
delivery cost about 4.7 ms of CPU in process, and at 200 deliveries a second on 64 connections the
99th percentile answer took 3.5 s even with no worker beside it):

- Under ASGI, Django runs its middleware chain in async mode, and every `MiddlewareMixin` middleware
  (all of Django's own) calls its `process_request`, `process_view` and `process_response` through
  `sync_to_async`: with the seven middleware in settings, a request to a sync view crossed from the
  event loop to a worker thread and back about fifteen times.
- Every request gets a new thread (a new single-thread executor for its thread-sensitive context,
  shut down at its end), and nothing bounds how many run at once: sixty-four requests in sixty-four
  threads fight over the GIL (and the event loop, which reads requests and writes answers, waits its
  turn behind them) and over SQLite's write lock.

So this handler loads the same middleware twice: in async mode, as Django does, for async views
(the decision long-poll, which must hold no thread while it waits), and in sync mode, as under WSGI,
for every other view, which then runs start to end in a single `sync_to_async` call, and at most
`SYNC_VIEW_CONCURRENCY` of them at once per process; further requests wait on the event loop, in
order of arrival, holding nothing but their parsed request. A view blocked on something other than
the CPU (the SSOT's write queue, see `core.blocking`) gives its slot up while it waits. Which chain
serves a request is decided by resolving its path first, the way the chain itself will. The
middleware, their order and their effects are the same in both chains.

For a sync view, the `request_started` signal is sent in that same call too, as a WSGI server would,
instead of in a thread hop of its own before it (`handle` is Django's, with that one difference).

And each request's thread-sensitive context is given an idle single-thread executor (asgiref's
`ThreadSensitiveContext(executor=...)`) that goes back to the idle list when the request is done,
so threads are made once and reused instead of started and joined per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, URLResolver, get_resolver, set_script_prefix

from core import blocking

# Idle threads kept for the next requests: a burst beyond this many concurrent requests makes new
# ones, and they end with it.
MAX_IDLE_EXECUTORS = 32


class SyncChainHandler(BaseHandler):
    """The middleware chain in sync mode, as a WSGI server would run it."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)


class ControlPlaneASGIHandler(ASGIHandler):
    """Sync views through the sync chain in one hop, bounded; async views through Django's async chain."""

    def __init__(self) -> None:
        super().__init__()
        self.sync_handler = SyncChainHandler()
        # One semaphore per event loop (an asyncio primitive belongs to the loop it first waits on).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._idle_executors: deque[ThreadPoolExecutor] = deque()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            executor = self._idle_executors.pop()
        except IndexError:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle_executors) < MAX_IDLE_EXECUTORS:
                self._idle_executors.append(executor)
            else:
                executor.shutdown(wait=False)

    async def handle(self, scope, receive, send) -> None:
        """Django 5.2's `ASGIHandler.handle`, but a request to a sync view has `request_started` sent
        in the thread hop that runs its view (`_start_and_get_response`), not in one of its own."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        sync_view = not self.path_is_async(scope)
        if not sync_view:
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            if sync_view:
                await signals.request_started.asend(sender=self.__class__, scope=scope)
            body_file.close()
            # Django's text: create_request gives an error response whenever it gives no request.
            await self.send_response(error_response, send)  # type: ignore[arg-type]
            await sync_to_async(error_response.close)()  # type: ignore[union-attr]
            return
        request._send_request_started = sync_view  # type: ignore[attr-defined]  # our flag, read below

        async def process_request(request, send):
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left during send_response
                await self.send_response(response, send)
            return response

        # As Django: listen for a disconnect while the response is made (that task goes first).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await sync_to_async(response.close)()
        body_file.close()

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if not isinstance(request, ASGIRequest) or not getattr(request, "_send_request_started", False):
            return await super().get_response_async(request)
        slots = self._slot()
        async with slots:
            return await sync_to_async(self._start_and_get_response, thread_sensitive=True)(
                request, asyncio.get_running_loop(), slots
            )

    def _start_and_get_response(
        self, request: ASGIRequest, loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore
    ) -> HttpResponseBase:
        @contextlib.contextmanager
        def release() -> Iterator[None]:
            # A view blocked on something other than the CPU (core.blocking) lets another one run.
            loop.call_soon_threadsafe(slots.release)
            try:
                yield
            finally:
                asyncio.run_coroutine_threadsafe(slots.acquire(), loop).result()

        blocking.serve_with(release)
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        return self.sync_handler.get_response(request)

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(settings.SYNC_VIEW_CONCURRENCY)
        return slots

    @staticmethod
    def path_is_async(scope: dict) -> bool:
        """Whether the view the request's path resolves to is a coroutine (no middleware sets urlconf
        here); an unknown path is served by the sync chain (its 404)."""
        script_name = get_script_prefix(scope)  # the path_info ASGIRequest will have
        path_info = scope["path"].removeprefix(script_name) if script_name else scope["path"]
        return _resolves_to_coroutine(get_resolver(), path_info)


@functools.lru_cache(maxsize=1024)
def _resolves_to_coroutine(resolver: URLResolver, path_info: str) -> bool:
    """Resolved once per resolver and path: the same few paths come again and again, and resolving
    took 0.3 ms of each API write's CPU. Keyed by the resolver, which Django makes anew when its URL
    caches are cleared (a changed ROOT_URLCONF), so an answer never outlives its URLconf."""
    try:
        match = resolver.resolve(path_info)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)
