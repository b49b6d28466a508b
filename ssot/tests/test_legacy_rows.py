"""Reading a row never fails because of what an agent wrote: rows stored before the strict reader (a
document nested 950 deep, a huge string, a lone surrogate, a number out of a float's range) render in the
API, the admin, the dashboard snapshot and the WebSocket `init`, bounded where they are odd.

The rows are written with SQL, as older versions of the mirror could store them.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.models import Model
from django.test import Client
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.bounded import DEEP_MARKER, MAX_RENDER_DEPTH, load_bounded, renderable
from monitoring import snapshot
from ssot.models import Message, Task
from testing.api import jwt_client, make_user
from testing.factories import EscalationFactory, MessageFactory, TaskFactory

pytestmark = pytest.mark.django_db

DEPTH = 950


def nested_text(depth: int, leaf: str = '"bottom"') -> str:
    return '{"a":' * depth + leaf + "}" * depth


def store_json(model: type[Model], pk: int, **columns: str) -> None:
    """Write JSON text straight into columns, past the ORM (as a legacy row would hold it)."""
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} WHERE id = %s", [*columns.values(), pk])  # noqa: S608


def depth_of(value: object) -> int:
    depth = 0
    while isinstance(value, dict) and "a" in value:
        value, depth = value["a"], depth + 1
    return depth


@pytest.fixture
def staff(api_settings):
    return jwt_client(make_user("staff"))


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(make_user("staff"))
    return client


@pytest.fixture
def deep_rows():
    """A task document and a message payload nested 950 deep, as the issue's probe left them."""
    task = TaskFactory.create(task_id="T-1")
    message = MessageFactory.create(task_id="T-1")
    store_json(
        Task,
        task.pk,
        document='{"task_id": "T-1", "x": ' + nested_text(DEPTH) + "}",
        ci_status='{"build": ' + nested_text(DEPTH) + "}",
    )
    store_json(
        Message,
        message.pk,
        payload=nested_text(DEPTH),
        envelope='{"msg_id": "' + message.msg_id + '", "payload": ' + nested_text(DEPTH) + "}",
    )
    return task, message


@pytest.fixture
def odd_rows():
    """A lone surrogate in a key and a value, a 1 MB string and a number past a float's range."""
    task = TaskFactory.create(task_id="T-2")
    message = MessageFactory.create(task_id="T-2")
    odd = '{"\\ud800key": "lone \\udc00 surrogate", "big": 1e400, "huge": "' + "x" * 1_000_000 + '"}'
    ci_status = '{"build": {"state": "\\ud800"}}'
    if connection.vendor == "postgresql":
        # jsonb refuses a lone surrogate escape, so no such row can exist there; the rest can.
        odd = '{"big": 1e400, "huge": "' + "x" * 1_000_000 + '"}'
        ci_status = '{"build": {"state": 1e400}}'
    store_json(Task, task.pk, document=odd, ci_status=ci_status)
    store_json(Message, message.pk, payload=odd)
    return task, message


# -- the API -----------------------------------------------------------------------------------------


def test_a_message_nested_950_deep_is_listed_with_its_depth_bounded(staff, deep_rows):
    response = staff.get("/api/messages/")
    assert response.status_code == 200, response.content[:300]
    payload = response.json()["results"][0]["payload"]
    assert depth_of(payload) == MAX_RENDER_DEPTH
    bottom = payload
    for _ in range(MAX_RENDER_DEPTH):
        bottom = bottom["a"]
    assert bottom == DEEP_MARKER


def test_a_task_nested_950_deep_is_shown_with_its_timeline(staff, deep_rows):
    response = staff.get("/api/tasks/T-1/")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["document"]["task_id"] == "T-1"
    assert depth_of(body["document"]["x"]) == MAX_RENDER_DEPTH - 1
    assert len(body["messages"]) == 1
    assert staff.get("/api/tasks/").status_code == 200


def test_odd_values_are_rendered_as_valid_json(staff, odd_rows):
    for path in ("/api/messages/", "/api/tasks/T-2/", "/api/tasks/"):
        response = staff.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        json.loads(response.content.decode("utf-8"))
    document = staff.get("/api/tasks/T-2/").json()["document"]
    # SQLite keeps the text 1e400 (a float: infinite); jsonb keeps the exact number, all 401 digits.
    assert document["big"] == ("Infinity" if connection.vendor == "sqlite" else 10**400)
    assert len(document["huge"]) == 1_000_000
    if connection.vendor == "sqlite":
        assert document["\ufffdkey"] == "lone \ufffd surrogate"


# -- the admin, the dashboard and the WebSocket init ----------------------------------------------------


def test_the_admin_shows_deep_and_odd_rows(admin_client, deep_rows, odd_rows):
    escalation = EscalationFactory.create()
    store_json(Message, escalation.message.pk, payload=nested_text(DEPTH))
    pages = ["/admin/ssot/task/", "/admin/ssot/message/", f"/admin/ssot/escalation/{escalation.pk}/change/"]
    for task, message in (deep_rows, odd_rows):
        pages += [f"/admin/ssot/task/{task.pk}/change/", f"/admin/ssot/message/{message.pk}/change/"]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, (page, response.status_code)
    response = admin_client.get(f"/admin/ssot/task/{odd_rows[0].pk}/change/")
    assert response.status_code == 200
    assert "more characters" in response.content.decode()


def test_the_dashboard_snapshot_holds_deep_and_odd_rows(deep_rows, odd_rows):
    init = snapshot.build()
    text = json.dumps(init, allow_nan=False)
    text.encode("utf-8")
    assert {task["task_id"] for task in init["tasks"]} == {"T-1", "T-2"}


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_init_arrives_with_deep_and_odd_rows(deep_rows, odd_rows):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from testing.live import open_socket, session_cookie

    user = await sync_to_async(make_user)("staff")
    communicator = await open_socket(cookie=await sync_to_async(session_cookie)(user))
    try:
        text = await communicator.receive_from(timeout=10)
        # Strict JSON, as a browser's JSON.parse and the strict reader take it: no NaN, no lone surrogate.
        init = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the init"))
        assert "\\ud800" not in text
        assert init["type"] == "init"
        assert {task["task_id"] for task in init["tasks"]} == {"T-1", "T-2"}
    finally:
        await communicator.disconnect()
        await sync_to_async(connections.close_all)()


# -- the bounds themselves --------------------------------------------------------------------------


def test_a_text_too_deep_for_the_decoder_is_read_with_its_depth_cut():
    value = load_bounded('{"keep": 1, "x": ' + nested_text(5000) + ', "after": "[not a bracket]"}')
    assert value["keep"] == 1 and value["after"] == "[not a bracket]"
    assert depth_of(value["x"]) == MAX_RENDER_DEPTH - 1


def test_an_integer_past_the_conversion_limit_is_read_as_its_digits():
    assert load_bounded('{"n": ' + "9" * 5000 + "}") == {"n": "9" * 5000}


@hypothesis_settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.floats()
        | st.integers()
        | st.text(alphabet=st.characters(codec=None, categories=None)),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
        ),
        max_leaves=40,
    )
)
def test_anything_loaded_renders_as_strict_utf8_json(value):
    rendered = renderable(value)
    json.dumps(rendered, allow_nan=False, ensure_ascii=False).encode("utf-8")
    if value == rendered:
        assert renderable(rendered) == rendered


def test_what_is_already_renderable_is_unchanged():
    value = {"a": [1, 2.5, None, True, "é 😀"], "b": {"c": "d"}}
    assert renderable(value) == value


@hypothesis_settings(max_examples=50, deadline=None, derandomize=True)
@given(depth=st.integers(min_value=0, max_value=3000))
def test_any_depth_is_read_back(depth):
    value = load_bounded(nested_text(depth, leaf="[]"))
    assert depth_of(value) == min(depth, MAX_RENDER_DEPTH)
