"""With the database gone, every API and webhook path answers 503 JSON with Retry-After (never a 500 page),
says nothing about where the database is, and serves again as soon as it is back.

The outage is real (testing.outage): PostgreSQL refuses connections and ends the open ones; SQLite
is pointed at a path it cannot open.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.db import connection

from testing.api import awaiting, jwt_client, make_user, put_tasks, token_for
from testing.content import dispatch
from testing.outage import database_down
from testing.server import database_url
from testing.webhooks import github_headers

pytestmark = pytest.mark.django_db(transaction=True)

READS = [
    "/api/tasks/",
    "/api/tasks/T-1/",
    "/api/tasks/T-1/decision/?wait=0",
    "/api/messages/",
    "/api/audit/",
    "/api/sync/",
    "/api/agents/",
    "/api/health",
    "/api/escalations/",
]
WRITES = [
    ("/api/tasks/T-1/approve/", {"reason": "ship it"}),
    ("/api/tasks/T-1/reject/", {"reason": "no"}),
    ("/api/tasks/T-1/override/", {"reason": "hotfix"}),
    ("/api/messages/", dispatch("T-1")),
    ("/api/messages/task_dispatch-T-1-1760000000000/ack/", None),
    ("/api/agents/coordinator/heartbeat/", None),
    ("/api/escalations/1/acknowledge/", None),
    ("/api/escalations/1/resolve/", {"reason": "done"}),
    ("/api/sync/", {"full": False}),
]


@pytest.fixture
def world(store, api_settings):
    put_tasks(store, awaiting("T-1"))
    # A superuser agent: every endpoint gets past its permission check to the database.
    user = make_user("coordinator", is_superuser=True)
    return jwt_client(user)


@pytest.fixture
def outage(tmp_path):
    with database_down(tmp_path / "unreachable"):
        yield


def _unavailable(response) -> dict:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert body["detail"] == "The database is unavailable. Try again shortly."
    text = response.content.decode()
    database = django_settings.DATABASES["default"]
    for secret in (
        str(database["NAME"]),
        database.get("HOST") or "127.0.0.1",
        str(database.get("PORT") or ""),
    ):
        assert not secret or secret not in text
    return body


def test_every_api_read_is_a_503_json_while_the_database_is_down(world, outage):
    world.raise_request_exception = False
    for path in READS:
        _unavailable(world.get(path))


def test_every_api_write_is_a_503_json_while_the_database_is_down(world, outage):
    world.raise_request_exception = False
    for path, body in WRITES:
        _unavailable(world.post(path, body, format="json"))


def test_a_session_user_gets_503_json_from_the_api(store, api_settings, client, tmp_path):
    client.force_login(make_user("staff"))
    client.raise_request_exception = False
    with database_down(tmp_path / "unreachable"):
        _unavailable(client.get("/api/tasks/"))
        _unavailable(client.get("/api/tasks/T-1/decision/"))


def test_obtaining_a_token_is_a_503_json_while_the_database_is_down(world, client, outage):
    client.raise_request_exception = False
    response = client.post(
        "/api/token/", {"username": "coordinator", "password": "x"}, content_type="application/json"
    )
    _unavailable(response)


def test_a_signed_webhook_is_a_503_json_so_that_github_delivers_it_again(world, client, outage):
    client.raise_request_exception = False
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 30}).encode()
    headers = github_headers(body, event="ping", secret=django_settings.GITHUB_WEBHOOK_SECRETS[0])
    response = client.post("/webhooks/github", body, content_type="application/json", headers={**headers})
    _unavailable(response)


def test_the_dashboard_and_the_admin_answer_503_not_500(store, api_settings, client, tmp_path):
    client.force_login(make_user("staff"))
    client.raise_request_exception = False
    with database_down(tmp_path / "unreachable"):
        for path in ("/dashboard/", "/admin/", "/admin/ssot/task/"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert int(response["Retry-After"]) > 0
            assert "database is unavailable" in response.content.decode()


def test_the_api_serves_again_once_the_database_is_back(world, tmp_path):
    world.raise_request_exception = False
    with database_down(tmp_path / "unreachable"):
        _unavailable(world.get("/api/tasks/T-1/"))
    response = world.get("/api/tasks/T-1/")
    assert response.status_code == 200
    assert response.json()["task_id"] == "T-1"


def test_healthz_still_answers_json_during_the_outage(client, store, tmp_path):
    with database_down(tmp_path / "unreachable"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down"


def test_the_outage_is_real_for_the_driver(tmp_path, store):
    from django.db import OperationalError

    with database_down(tmp_path / "unreachable"), pytest.raises(OperationalError):
        connection.ensure_connection()


# -- daphne, over real HTTP --------------------------------------------------------------------------


@pytest.fixture
def daphne_without_database(ssot_path, tmp_path):
    """daphne configured as this run, but with a database it cannot reach."""
    from testing.server import Daphne, server_env

    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        gone = dict(settings_dict, NAME=f"{settings_dict['NAME']}_gone")
    else:
        (tmp_path / "unreachable").mkdir()
        gone = dict(settings_dict, NAME=str(tmp_path / "unreachable"))
    env = server_env(ssot_path=ssot_path, redis_url=None, prefix="outage", DB_POOL_TIMEOUT_SEC="0.5")
    env["DATABASE_URL"] = database_url(gone)
    server = Daphne(env)
    server.start()
    yield server
    server.close()


def test_daphne_answers_503_json_on_api_and_webhook_paths_without_its_database(
    daphne_without_database, api_settings
):
    from testing.server import post_json

    token = token_for(make_user("staff").get_username())
    bearer = {"Authorization": f"Bearer {token}"}
    for path in ("/api/tasks/", "/api/tasks/T-1/decision/?wait=0", "/api/health"):
        status, headers, body = _get(f"{daphne_without_database.url}{path}", bearer)
        assert (status, json.loads(body)["code"]) == (503, "database_unavailable"), path
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Retry-After"]) > 0
    delivery = json.dumps({"zen": "Design for failure."}).encode()
    headers = github_headers(delivery, event="ping", secret=django_settings.GITHUB_WEBHOOK_SECRETS[0])
    status, body = post_json(f"{daphne_without_database.url}/webhooks/github", delivery, headers)
    assert (status, json.loads(body)["code"]) == (503, "database_unavailable")
    assert "_gone" not in body.decode() and "unreachable" not in body.decode()


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
