"""The ASGI handler: sync views through the sync middleware chain in one hop, at most N at a time;
async views through Django's async chain, never waiting for a sync slot."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, JsonResponse
from django.urls import path

from agentos_site.asgi_handler import ControlPlaneASGIHandler

_running: dict[str, Any] = {"now": 0, "most": 0, "threads": set()}
_lock = threading.Condition()
_middleware_threads: list[int] = []
# A held view waits at this gate until the test opens it: overlap comes from the gate, not from a sleep.
_gate = threading.Event()


def held_sync_view(request):
    with _lock:
        _running["now"] += 1
        _running["most"] = max(_running["most"], _running["now"])
        _running["threads"].add(threading.get_ident())
        _lock.notify_all()
    assert _gate.wait(timeout=10), "the test never opened the gate"
    with _lock:
        _running["now"] -= 1
    return JsonResponse({"thread": threading.get_ident()})


def _running_now(count: int) -> None:
    """Block until exactly `count` held views are inside the view (or fail after 10 s)."""
    with _lock:
        assert _lock.wait_for(lambda: _running["now"] == count, timeout=10), _running


async def async_view(request):
    return HttpResponse("async", content_type="text/plain")


def thread_recording_middleware(get_response):
    """A sync-only middleware that notes the thread it ran in, before and after the view."""

    def middleware(request):
        _middleware_threads.append(threading.get_ident())
        response = get_response(request)
        _middleware_threads.append(threading.get_ident())
        return response

    return middleware


urlpatterns = [path("slow", held_sync_view), path("async", async_view)]


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.thread_recording_middleware"]
    _running.update(now=0, most=0, threads=set())
    _middleware_threads.clear()
    _gate.set()  # views pass straight through unless a test closes the gate
    yield ControlPlaneASGIHandler()
    _gate.set()


async def _get(handler, url: str) -> Mapping[str, Any]:
    communicator = HttpCommunicator(handler, "GET", url, headers=[(b"host", b"127.0.0.1")])
    return await communicator.get_response(timeout=10)


@pytest.mark.django_db(transaction=True)
async def test_sync_views_beyond_the_limit_wait_their_turn(handler, settings):
    settings.SYNC_VIEW_CONCURRENCY = 2
    handler = ControlPlaneASGIHandler()
    _gate.clear()
    requests = [asyncio.ensure_future(_get(handler, "/slow")) for _ in range(5)]
    await asyncio.to_thread(_running_now, 2)  # two slots taken, held at the gate
    waiting = handler._slot()

    # Every request has reached the handler; the three beyond the limit queue on the slots, not in a thread.
    assert waiting.locked() and _running["now"] == 2 and not any(r.done() for r in requests)
    _gate.set()
    responses = await asyncio.gather(*requests)

    assert [response["status"] for response in responses] == [200] * 5
    assert _running["most"] == 2


@pytest.mark.django_db(transaction=True)
async def test_an_async_view_does_not_wait_for_a_sync_slot(handler, settings):
    settings.SYNC_VIEW_CONCURRENCY = 1
    handler = ControlPlaneASGIHandler()
    _gate.clear()
    held = asyncio.ensure_future(_get(handler, "/slow"))
    await asyncio.to_thread(_running_now, 1)  # the one sync slot is taken, and stays taken

    response = await _get(handler, "/async")

    assert response["status"] == 200 and response["body"] == b"async"
    assert not held.done() and _running["now"] == 1
    _gate.set()
    assert (await held)["status"] == 200


@pytest.mark.django_db(transaction=True)
async def test_the_sync_chain_and_its_view_run_in_one_call_per_request(handler):
    calls: list[int] = []
    run_chain = handler.sync_handler.get_response

    def counted(request):
        calls.append(threading.get_ident())
        return run_chain(request)

    handler.sync_handler.get_response = counted
    response = await _get(handler, "/slow")

    assert response["status"] == 200
    # One call of the sync chain, in one thread: both halves of the middleware and the view ran there.
    assert len(calls) == 1
    assert set(_middleware_threads) == _running["threads"] == set(calls) and len(_middleware_threads) == 2
    # Django's own middleware ran too, in sync mode: their headers are on the answer.
    headers = dict(response["headers"])
    assert headers[b"X-Frame-Options"] == b"DENY"
    assert headers[b"X-Content-Type-Options"] == b"nosniff"


@pytest.mark.django_db(transaction=True)
async def test_async_views_keep_the_async_chain(handler):
    response = await _get(handler, "/async")

    assert response["status"] == 200
    assert dict(response["headers"])[b"X-Frame-Options"] == b"DENY"
    # The sync-only middleware was adapted around the async chain, as Django does.
    assert len(_middleware_threads) == 2


@pytest.mark.django_db(transaction=True)
async def test_unknown_paths_are_a_404_through_the_sync_chain(handler):
    response = await _get(handler, "/nowhere")

    assert response["status"] == 404
    assert len(_middleware_threads) == 2


def test_which_views_are_async(handler):
    assert ControlPlaneASGIHandler.path_is_async({"path": "/async"})
    assert not ControlPlaneASGIHandler.path_is_async({"path": "/slow"})
    assert not ControlPlaneASGIHandler.path_is_async({"path": "/nowhere"})


def test_which_chain_a_path_takes_is_resolved_once_per_urlconf(handler, settings):
    from agentos_site.asgi_handler import _resolves_to_coroutine

    _resolves_to_coroutine.cache_clear()
    for _ in range(3):
        assert ControlPlaneASGIHandler.path_is_async({"path": "/async"})
    assert (_resolves_to_coroutine.cache_info().hits, _resolves_to_coroutine.cache_info().misses) == (2, 1)
    settings.ROOT_URLCONF = "agentos_site.urls"  # Django clears its URL caches: a new resolver
    assert not ControlPlaneASGIHandler.path_is_async({"path": "/async"})  # no such page there
    settings.ROOT_URLCONF = __name__
    assert ControlPlaneASGIHandler.path_is_async({"path": "/async"})


def test_daphne_makes_requests_that_leave_form_bodies_to_django():
    from daphne import http_protocol

    from agentos_site import asgi, serving  # noqa: F401 (asgi installs serving's request class)

    assert http_protocol.WebRequest is serving.WebRequest
    protocol = http_protocol.HTTPFactory(server=None).buildProtocol(("127.0.0.1", 0))
    assert protocol.requestFactory is serving.WebRequest


def test_the_site_serves_through_this_handler():
    from agentos_site.asgi import django_asgi_app

    assert isinstance(django_asgi_app, ControlPlaneASGIHandler)


@pytest.mark.django_db(transaction=True)
async def test_request_threads_are_reused_not_started_per_request(handler, settings):
    settings.SYNC_VIEW_CONCURRENCY = 3
    handler = ControlPlaneASGIHandler()
    first = [json.loads((await _get(handler, "/slow"))["body"])["thread"] for _ in range(3)]
    together = await asyncio.gather(*(_get(handler, "/slow") for _ in range(3)))
    concurrent = {json.loads(response["body"])["thread"] for response in together}

    assert len(set(first)) == 1  # one request after another: the same thread each time
    assert len(concurrent) == 3 and set(first) <= concurrent  # at once: one thread each, the old one reused


def test_what_the_server_loads_at_start_is_kept_out_of_garbage_collections():
    code = "import gc, agentos_site.asgi; print(gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=settings.BASE_DIR
    )

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 50_000  # modules, settings, URLconf and middleware: frozen, never walked


@pytest.fixture
def started():
    """The threads request_started was sent in."""
    seen: list[int] = []

    def receiver(sender, **kwargs):
        seen.append(threading.get_ident())

    signals.request_started.connect(receiver)
    yield seen
    signals.request_started.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
async def test_request_started_is_sent_in_the_sync_views_own_call(handler, started, settings):
    settings.SYNC_VIEW_CONCURRENCY = 1
    handler = ControlPlaneASGIHandler()
    _gate.clear()
    requests = [asyncio.ensure_future(_get(handler, "/slow")) for _ in range(2)]
    await asyncio.to_thread(_running_now, 1)

    # The second request waits for the slot and has not started yet: request_started goes out when a
    # request gets its turn, with its view (as under WSGI, where a request starts when a thread takes it).
    assert len(started) == 1 and handler._slot().locked()
    _gate.set()
    responses = await asyncio.gather(*requests)

    threads = [json.loads(response["body"])["thread"] for response in responses]
    assert sorted(started) == sorted(threads)  # once each, in the thread that ran its view


@pytest.mark.django_db(transaction=True)
async def test_request_started_is_sent_once_for_an_async_view(handler, started):
    assert (await _get(handler, "/async"))["status"] == 200
    assert len(started) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_request_django_cannot_build_is_answered_and_counted_as_started(handler, started):
    class TooBig(ASGIRequest):
        def __init__(self, *args, **kwargs):
            raise RequestDataTooBig("over the limit")

    handler.request_class = TooBig
    response = await _get(handler, "/slow")

    assert response["status"] == 413
    assert len(started) == 1 and _running["threads"] == set()  # no view ran


def test_the_path_is_resolved_as_the_request_will_be_under_a_script_prefix(handler):
    assert ControlPlaneASGIHandler.path_is_async({"path": "/agentos/async", "root_path": "/agentos"})
    assert not ControlPlaneASGIHandler.path_is_async({"path": "/agentos/slow", "root_path": "/agentos"})
