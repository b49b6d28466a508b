"""POST /api/messages/ (an agent sends as itself), GET /api/messages/ and POST /api/messages/{id}/ack/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import amp
from ssot.models import Ack, AuditEntry, Message
from ssot.stores.factory import reset_store
from ssot.sync import sync
from testing.api import ROLES, jwt_client, make_user
from testing.content import commit, dispatch, read_json, result

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


@pytest.fixture
def coordinator():
    return jwt_client(make_user("coordinator"))


@pytest.fixture
def executor():
    return jwt_client(make_user("executor"))


def _commits(store) -> int:
    import pygit2

    repo = pygit2.Repository(str(store.path))
    return sum(1 for _ in repo.walk(repo.head.target)) if store.head() else 0


# -- sending -------------------------------------------------------------------------------------------


def test_an_agent_sends_a_message_that_lands_in_the_ssot(store, coordinator):
    message = dispatch("T-1")
    response = coordinator.post("/api/messages/", message, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["ok"], body["msg_id"], body["created"]) == (True, message["msg_id"], True)
    stored = read_json(store, f"messages/{message['msg_id']}.json")
    assert stored == body["message"]
    assert stored["payload"] == message["payload"]
    row = Message.objects.get(msg_id=message["msg_id"])
    assert (row.sender, row.recipient, row.ack_state) == ("coordinator", "executor", "pending")


def test_an_identical_resend_is_a_200_without_a_second_commit(store, coordinator):
    message = dispatch("T-1")
    assert coordinator.post("/api/messages", message, format="json").status_code == 201
    commits = _commits(store)
    response = coordinator.post("/api/messages", message, format="json")
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert _commits(store) == commits


def test_the_same_id_with_other_content_is_a_409(store, coordinator):
    message = dispatch("T-1")
    coordinator.post("/api/messages/", message, format="json")
    other = {**message, "payload": {**message["payload"], "acceptance_criteria": ["something else"]}}
    response = coordinator.post("/api/messages/", other, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert read_json(store, f"messages/{message['msg_id']}.json")["payload"] == message["payload"]


def test_an_invalid_message_is_a_422_listing_every_violation(store, coordinator):
    message = dispatch("T-1", timestamp="yesterday", to="nobody")
    message["payload"] = {"branch": "main", "acceptance_criteria": []}
    response = coordinator.post("/api/messages/", message, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert {"timestamp", "to", "payload.branch", "payload.acceptance_criteria"} <= {
        e["path"] for e in body["errors"]
    }
    assert any("BRANCH VIOLATION" in e["message"] for e in body["errors"])
    assert store.head() is None
    assert AuditEntry.objects.filter(action="message_rejected", actor="coordinator").exists()


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_a_json_body_that_is_not_an_object_is_a_422(store, coordinator, raw):
    response = coordinator.generic("POST", "/api/messages/", raw, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "$"


def test_a_nul_character_anywhere_is_a_422_naming_where(store, coordinator):
    message = dispatch("T-1")
    message["payload"]["note"] = "a\u0000b"
    message["payload"]["extra\u0000key"] = 1
    response = coordinator.post("/api/messages/", message, format="json")
    assert response.status_code == 422
    assert {e["path"] for e in response.json()["errors"]} == {"payload.note", "payload.extra\u0000key"}
    assert store.head() is None


def test_an_empty_body_is_a_422_naming_the_missing_fields(store, coordinator):
    response = coordinator.post("/api/messages/")
    assert response.status_code == 422
    assert "msg_id" in {e["path"] for e in response.json()["errors"]}


@pytest.mark.parametrize("raw", [b"{", b'{"msg_id": "a", "msg_id": "b"}', b"\xc3\x28", b'{"x": Infinity}'])
def test_a_malformed_json_body_is_a_400(store, coordinator, raw):
    response = coordinator.generic("POST", "/api/messages/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed request body")


def test_an_agent_cannot_send_as_another(store, coordinator):
    response = jwt_client(make_user("executor")).post("/api/messages/", dispatch("T-1"), format="json")
    assert response.status_code == 403
    assert "executor" in response.json()["detail"]
    assert store.head() is None


@pytest.mark.parametrize("role", ["staff", "approver", "operator", "outsider"])
def test_only_agents_send_messages(store, role):
    response = jwt_client(make_user(role)).post("/api/messages/", dispatch("T-1"), format="json")
    assert response.status_code == 403
    assert store.head() is None


def test_anonymous_cannot_send(store):
    response = jwt_client(None).post("/api/messages/", dispatch("T-1"), format="json")
    assert response.status_code == 401


def test_sending_while_the_ssot_is_unreachable_is_a_503(store, coordinator, settings, tmp_path: Path):
    settings.SSOT_LOCAL_PATH = tmp_path / "missing" / "ssot.git"
    reset_store()
    response = coordinator.post("/api/messages/", dispatch("T-1"), format="json")
    assert response.status_code == 503
    assert not Message.objects.exists()


# -- listing -------------------------------------------------------------------------------------------


@pytest.fixture
def traffic(store):
    first = dispatch("T-1")
    answer = result("T-1", refs=(first["msg_id"],))
    other = dispatch("T-2", n=5)
    commit(store, {f"messages/{m['msg_id']}.json": m for m in (first, answer, other)})
    sync()
    return {"first": first, "answer": answer, "other": other}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("task_id=T-1", {"first", "answer"}),
        ("type=task_result", {"answer"}),
        ("from=coordinator", {"first", "other"}),
        ("to=coordinator", {"answer"}),
        ("unacked=true", {"answer", "other"}),
        ("unacked=false", {"first"}),
        ("from=executor&task_id=T-2", set()),
    ],
)
def test_messages_are_filtered(traffic, executor, query, expected):
    body = executor.get(f"/api/messages/?{query}").json()
    ids = {m["msg_id"] for m in body["results"]}
    assert ids == {traffic[name]["msg_id"] for name in expected}


def test_an_invalid_unacked_value_is_a_400(traffic, executor):
    response = executor.get("/api/messages?unacked=perhaps")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "unacked"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_reading_messages_needs_a_staff_or_agent_account(traffic, role):
    response = jwt_client(make_user(role)).get("/api/messages/")
    assert response.status_code == (403 if role == "outsider" else 200)


# -- acknowledging -----------------------------------------------------------------------------------


def test_the_addressee_acknowledges_a_message(traffic, store, executor):
    msg_id = traffic["other"]["msg_id"]
    response = executor.post(f"/api/messages/{msg_id}/ack/")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["msg_id"], body["by"], body["created"]) == (True, msg_id, "executor", True)
    assert read_json(store, f"acks/{msg_id}.json") == {"msg_id": msg_id, "by": "executor", "at": body["at"]}
    assert Message.objects.get(msg_id=msg_id).ack_state == "acked"
    assert Ack.objects.get(msg_id=msg_id).by == "executor"


def test_a_second_ack_writes_nothing(traffic, store, executor):
    msg_id = traffic["other"]["msg_id"]
    first = executor.post(f"/api/messages/{msg_id}/ack").json()
    head = store.head()
    again = executor.post(f"/api/messages/{msg_id}/ack")
    assert again.status_code == 200
    assert again.json() == {**first, "created": False}
    assert store.head() == head


@pytest.mark.parametrize("role", ["coordinator", "reviewer"])
def test_only_the_addressee_acknowledges(traffic, store, role):
    msg_id = traffic["other"]["msg_id"]
    response = jwt_client(make_user(role)).post(f"/api/messages/{msg_id}/ack/")
    assert response.status_code == 403
    assert "addressee (executor)" in response.json()["detail"]
    assert read_json(store, f"acks/{msg_id}.json") is None


@pytest.mark.parametrize("role", ["staff", "outsider"])
def test_people_without_the_approve_permission_cannot_acknowledge(traffic, role):
    response = jwt_client(make_user(role)).post(f"/api/messages/{traffic['other']['msg_id']}/ack/")
    assert response.status_code == 403


def test_an_approver_acknowledges_a_message_to_admin(store):
    message = amp.build_envelope(
        msg_type="task_result",
        sender="executor",
        recipient="admin",
        task_id="T-9",
        payload={"summary": "needs a human"},
        requires_ack=True,
    )
    commit(store, {f"messages/{message['msg_id']}.json": message})
    sync()
    approver = jwt_client(make_user("approver"))
    response = approver.post(f"/api/messages/{message['msg_id']}/ack/")
    assert response.status_code == 200
    assert response.json()["by"] == "admin"
    assert (
        jwt_client(make_user("executor")).post(f"/api/messages/{message['msg_id']}/ack/").status_code == 403
    )


@pytest.mark.parametrize("msg_id", ["task_dispatch-T-404-1", "..", "..%2F..%2Fx", "a%00b"])
def test_acknowledging_an_unknown_or_unsafe_message_is_a_404(traffic, executor, msg_id):
    response = executor.post(f"/api/messages/{msg_id}/ack/")
    assert response.status_code == 404
    assert json.loads(response.content)["detail"]


def test_an_anonymous_ack_is_a_401(traffic):
    assert jwt_client(None).post(f"/api/messages/{traffic['other']['msg_id']}/ack/").status_code == 401
