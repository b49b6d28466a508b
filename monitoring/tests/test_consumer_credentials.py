"""Agents on the live stream (issue 15, SPEC section 9): a token (JWT or API key, in `?token=` or an
`Authorization: Bearer` header) connects without `Origin`; the cookie keeps the `Origin` check; a revoked
key's open socket is closed by the consumer's periodic re-check."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from monitoring.consumers import CLOSE_UNAUTHENTICATED
from ssot import credentials
from testing.factories import UserFactory
from testing.live import WAIT_SEC, access_token, close_code, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
async def _close_worker_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def agent():
    return UserFactory(username="executor", is_staff=False, password="!", groups=["agents"])


def key_of(user) -> str:
    return credentials.apikey_create(owner=user, actor="test").plaintext


async def init_of(communicator: WebsocketCommunicator) -> str:
    return (await communicator.receive_json_from(timeout=WAIT_SEC))["type"]


async def closed_after_events(communicator: WebsocketCommunicator) -> int:
    """The close code, past the events that arrive first (the revocation's own audit line)."""
    while True:
        output = await communicator.receive_output(timeout=WAIT_SEC)
        if output["type"] == "websocket.close":
            await communicator.disconnect(code=output["code"])
            return output["code"]


@pytest.mark.parametrize("kind", ["jwt", "key"])
@pytest.mark.parametrize("where", ["query", "header"])
async def test_a_token_client_without_origin_gets_init(agent, kind, where):
    token = access_token(agent) if kind == "jwt" else await database_sync_to_async(key_of)(agent)
    if where == "query":
        communicator = await open_socket(token=token, origin=None)
    else:
        communicator = await open_socket(authorization=f"Bearer {token}", origin=None)
    assert await init_of(communicator) == "init"
    await communicator.disconnect()


async def test_a_token_client_with_a_foreign_origin_is_still_accepted(agent):
    communicator = await open_socket(token=access_token(agent), origin="http://elsewhere.example")
    assert await init_of(communicator) == "init"
    await communicator.disconnect()


async def test_a_cookie_client_with_a_foreign_origin_is_refused():
    from agentos_site.asgi import application

    staff = await database_sync_to_async(UserFactory)(username="alice", password="!")
    cookie = await sync_to_async(session_cookie)(staff)
    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://evil.example"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    accepted, _ = await communicator.connect(timeout=WAIT_SEC)
    assert not accepted
    await communicator.disconnect()


async def test_no_credentials_is_accepted_then_closed_4401():
    communicator = await open_socket(origin=None)
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_bad_bearer_header_is_closed_4401_even_beside_a_session():
    staff = await database_sync_to_async(UserFactory)(username="alice", password="!")
    cookie = await sync_to_async(session_cookie)(staff)
    communicator = await open_socket(cookie=cookie, authorization="Bearer agos_000000000000_nope")
    assert await close_code(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_revoked_key_is_refused_and_its_open_socket_is_closed(agent, settings):
    settings.WS_AUTH_RECHECK_SEC = 0.05
    new = await database_sync_to_async(credentials.apikey_create)(owner=agent, actor="test")
    communicator = await open_socket(token=new.plaintext, origin=None)
    assert await init_of(communicator) == "init"
    await database_sync_to_async(credentials.apikey_revoke)(key_id=new.key.key_id, actor="admin")
    assert await closed_after_events(communicator) == CLOSE_UNAUTHENTICATED
    again = await open_socket(token=new.plaintext, origin=None)
    assert await close_code(again) == CLOSE_UNAUTHENTICATED


async def test_a_socket_whose_key_holds_stays_open_across_rechecks(agent, settings):
    settings.WS_AUTH_RECHECK_SEC = 0.05
    communicator = await open_socket(token=await database_sync_to_async(key_of)(agent), origin=None)
    assert await init_of(communicator) == "init"
    # Several re-checks pass while the key holds: nothing but pings (none yet) arrives, no close.
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_session_socket_is_closed_once_its_user_is_signed_out_everywhere(settings):
    settings.WS_AUTH_RECHECK_SEC = 0.05
    staff = await database_sync_to_async(UserFactory)(username="alice", password="!")
    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(staff))
    assert await init_of(communicator) == "init"
    assert await communicator.receive_nothing(timeout=0.2)  # re-checks pass while the session lives
    ended = await database_sync_to_async(credentials.sign_out_everywhere)(user=staff, actor="admin")
    assert ended == 1
    assert await closed_after_events(communicator) == CLOSE_UNAUTHENTICATED
