"""GET /api/agents/, POST /api/agents/{name}/heartbeat/ (that agent only) and the draft's GET /api/health."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ssot.models import Agent
from ssot.stores.factory import reset_store
from testing.api import ROLES, jwt_client, make_user
from testing.content import read_json
from testing.factories import AgentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _agents(api_settings):
    api_settings.AGENTS = ["coordinator", "executor", "reviewer"]


@pytest.fixture
def agents():
    now = timezone.now()
    AgentFactory(name="coordinator", status="ok", last_seen=now, last_seen_via="message")
    AgentFactory(name="executor", status="timeout", last_seen=now - timedelta(hours=2), last_seen_via="ack")


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("path", ["/api/agents/", "/api/agents", "/api/health", "/api/health/"])
def test_reading_agents_needs_a_staff_or_agent_account(agents, role, path):
    response = jwt_client(make_user(role)).get(path)
    assert response.status_code == (403 if role == "outsider" else 200)


@pytest.mark.parametrize("path", ["/api/agents/", "/api/health"])
def test_anonymous_reads_are_a_401(agents, path):
    assert jwt_client(None).get(path).status_code == 401


def test_agents_are_listed_with_their_health(agents):
    body = jwt_client(make_user("staff")).get("/api/agents/").json()
    assert [(a["name"], a["status"], a["last_seen_via"]) for a in body["results"]] == [
        ("coordinator", "ok", "message"),
        ("executor", "timeout", "ack"),
    ]


def test_the_health_map_has_every_configured_agent(agents):
    body = jwt_client(make_user("reviewer")).get("/api/health").json()
    assert set(body) == {"coordinator", "executor", "reviewer"}
    assert body["executor"]["status"] == "timeout"
    assert (
        body["coordinator"]["last_heartbeat"] == Agent.objects.get(name="coordinator").last_seen.isoformat()
    )
    assert body["reviewer"] == {"name": "reviewer", "last_heartbeat": None, "status": "unknown"}


def test_an_agent_sends_its_heartbeat_to_the_ssot(store):
    response = jwt_client(make_user("executor")).post("/api/agents/executor/heartbeat/")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["agent"]) == (True, "executor")
    assert read_json(store, "heartbeats/executor.json") == {"agent": "executor", "at": body["at"]}
    agent = Agent.objects.get(name="executor")
    assert agent.last_seen_via == "heartbeat"


def test_the_heartbeat_path_works_without_its_trailing_slash(store):
    assert jwt_client(make_user("reviewer")).post("/api/agents/reviewer/heartbeat").status_code == 200


@pytest.mark.parametrize("name", ["coordinator", "reviewer", "..", "nobody"])
def test_an_agent_sends_only_its_own_heartbeat(store, name):
    response = jwt_client(make_user("executor")).post(f"/api/agents/{name}/heartbeat/")
    assert response.status_code == 403
    assert "only" in response.json()["detail"]
    assert store.head() is None


@pytest.mark.parametrize("role", ["staff", "approver", "operator", "outsider"])
def test_people_do_not_send_heartbeats(store, role):
    user = make_user(role)
    response = jwt_client(user).post(f"/api/agents/{user.username}/heartbeat/")
    assert response.status_code == 403
    assert store.head() is None


def test_an_anonymous_heartbeat_is_a_401(store):
    assert jwt_client(None).post("/api/agents/executor/heartbeat/").status_code == 401


def test_a_heartbeat_while_the_ssot_is_unreachable_is_a_503(store, settings, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings.SSOT_LOCAL_PATH = blocker
    reset_store()
    response = jwt_client(make_user("executor")).post("/api/agents/executor/heartbeat/")
    assert response.status_code == 503
    assert response.json()["code"] == "ssot_unavailable"
