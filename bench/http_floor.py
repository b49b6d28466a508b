"""The floors under an API write: what the HTTP server, Django and DRF alone cost, measured the way
bench/write_load.py measures writes (closed loops of keep-alive connections on loopback), so its
messages/s can be read against what one process could do with no write at all.

- daphne alone: `application` below, a bare ASGI app that reads the body and answers 201, in a
  daphne process of its own (no Django);
- Django alone: the control plane's process answering a path no view serves (404): our ASGI handler,
  the middleware and the URL resolver, no authentication, no database;
- an authenticated DRF read: GET /api/messages/?limit=1 with an agent's JWT (authentication, the
  agent check, one page of one row).

Used by bench/write_load.py; not run on its own.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.setup import in_threads, percentile

APP = "bench.http_floor:application"
Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers


async def application(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Read the request, answer 201 with a small JSON body: what an HTTP write costs daphne alone."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"created": true}'})


def closed_loop(
    port: int, agents: int, seconds: float, request: Callable[[int], Request]
) -> tuple[float, float, float, Counter[int]]:
    """`agents` connections each sending `request(n)` and waiting for its answer, for `seconds`:
    (requests/s, p50 s, p99 s, statuses)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def agent(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = index
        while time.monotonic() < stop:
            method, path, body, headers = request(n)
            started = time.monotonic()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                latencies.append(time.monotonic() - started)
                statuses[response.status] += 1
            n += agents
        connection.close()

    elapsed = in_threads(agents, agent)
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), statuses


def _line(label: str, figures: tuple[float, float, float, Counter[int]]) -> str:
    rate, p50, p99, statuses = figures
    return (
        f"  {label}: {rate:.0f} requests/s; p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; "
        f"answers {dict(sorted(statuses.items()))}"
    )


def report(port: int, token: str, agents: int, seconds: float, post: Callable[[int], bytes]) -> None:
    """Print the three floors: daphne alone (a process of its own), then Django and DRF in `port`'s."""
    from testing.server import Daphne

    json_headers = {"Content-Type": "application/json"}
    bare = Daphne(dict(os.environ), name="daphne-bare", app=APP)
    bare.start()
    try:
        figures = closed_loop(
            bare.port, agents, seconds, lambda n: ("POST", "/api/messages/", post(n), json_headers)
        )
        print(_line("floor: daphne alone (a bare ASGI app answering the same POSTs)", figures))
    finally:
        bare.close()
    figures = closed_loop(port, agents, seconds, lambda n: ("GET", f"/no-such-page/{n}", None, {}))
    print(_line("floor: Django alone (handler, middleware and resolver; a 404, no view)", figures))
    auth = {"Authorization": f"Bearer {token}"}
    figures = closed_loop(port, agents, seconds, lambda n: ("GET", "/api/messages/?limit=1", None, auth))
    print(_line("floor: an authenticated DRF read (GET /api/messages/?limit=1 as an agent)", figures))
