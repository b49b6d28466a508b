"""Helpers of the live-events tests: WebSocket clients on the whole ASGI app, sessions and tokens."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

ORIGIN = "http://localhost"
WAIT_SEC = 5


def session_cookie(user: Any) -> str:
    """A real session for `user`, as the browser's cookie carries it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def access_token(user: Any) -> str:
    return str(AccessToken.for_user(user))


async def open_socket(
    *,
    cookie: str | None = None,
    token: str | None = None,
    origin: str | None = ORIGIN,
    authorization: str | None = None,
) -> WebsocketCommunicator:
    """A WebSocket client on the whole ASGI application (origin check, auth, routing, consumer)."""
    from agentos_site.asgi import application

    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    path = "/ws/events/" + (f"?token={token}" if token is not None else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=WAIT_SEC)
    assert connected, "the handshake was refused"
    return communicator


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the server closed the socket with."""
    output = await communicator.receive_output(timeout=WAIT_SEC)
    assert output["type"] == "websocket.close", output
    # Answer the close as a client does, so the application instance ends with the test.
    await communicator.disconnect(code=output["code"])
    return output["code"]


async def next_event(communicator: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next event of type `kind`, skipping the others."""
    while True:
        event = await communicator.receive_json_from(timeout=WAIT_SEC)
        if event["type"] == kind:
            return event


async def events_until(communicator: WebsocketCommunicator, kinds: set[str]) -> dict[str, dict[str, Any]]:
    """Read events until one of each kind in `kinds` arrived; every event read, by type (last one wins)."""
    seen: dict[str, dict[str, Any]] = {}
    while not kinds <= seen.keys():
        event = await communicator.receive_json_from(timeout=WAIT_SEC)
        seen[event["type"]] = event
    return seen
