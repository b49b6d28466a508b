"""The approval policy through the API: GET /api/policy/, M-of-N answers and 403s of POST .../approve/."""

from __future__ import annotations

import json

import pytest

from amp.jsonschema import POLICY_SCHEMA_PATH
from ssot.models import Task
from ssot.paths import POLICY_PATH
from ssot.sync import sync
from testing.api import jwt_client, make_user
from testing.content import commit, read_json, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

HIGH_NEEDS_TWO = {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}


@pytest.fixture
def store(any_store):
    return any_store


@pytest.fixture
def high(store) -> str:
    commit(
        store,
        {
            POLICY_PATH: HIGH_NEEDS_TWO,
            "tasks/T-1.json": task_doc("T-1", "awaiting_approval", risk_level="high", requested_by="carol"),
        },
    )
    sync()
    return Task.objects.get().blob_sha


def _client(name: str):
    return jwt_client(make_user("approver", username=name))


def test_the_policy_in_force_is_the_built_in_default_without_a_file(store):
    body = jwt_client(make_user("staff")).get("/api/policy/").json()
    assert body == {
        "path": "policy/approvals.json",
        "source": "built-in",
        "policy": {
            "levels": {name: {"approvals": 1, "groups": ["approvers"]} for name in ("low", "medium", "high")},
            "self_approval": False,
        },
        "quarantined": None,
    }


def test_the_policy_in_force_names_its_blob_and_an_invalid_version_it_ignores(store, high):
    source = store.entry(store.head(), POLICY_PATH).sha
    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 0, "groups": ["approvers"]}}}})
    sync()
    body = jwt_client(make_user("executor")).get("/api/policy").json()
    assert (body["source"], body["policy"]["levels"]["high"]["approvals"]) == (source, 2)
    assert body["quarantined"]["blob_sha"] == store.entry(store.head(), POLICY_PATH).sha
    assert body["quarantined"]["errors"][0]["path"] == "levels.high.approvals"


def test_reading_the_policy_needs_a_staff_or_agent_account(store):
    assert jwt_client(make_user("outsider")).get("/api/policy/").status_code == 403
    assert jwt_client(None).get("/api/policy/").status_code == 401


def test_the_policy_schema_is_public(store):
    response = jwt_client(None).get("/api/policy/schema.json")
    assert response.status_code == 200
    assert response.json() == json.loads(POLICY_SCHEMA_PATH.read_text())


def test_two_approvers_through_the_api(store, high):
    first = _client("alice").post("/api/tasks/T-1/approve/", {"expected_sha": high}, format="json")
    assert first.status_code == 200
    assert first.json() == {
        "ok": True,
        "task_id": "T-1",
        "status": "awaiting_approval",
        "prev_status": "awaiting_approval",
        "blob_sha": high,
        "approvals": {"have": 1, "need": 2},
    }
    again = _client("alice").post("/api/tasks/T-1/approve/", {"expected_sha": high}, format="json")
    assert again.status_code == 403
    assert again.json()["detail"] == (
        "alice already approved this version of task T-1; approvers must be distinct."
    )
    second = _client("bob").post("/api/tasks/T-1/approve/", {"expected_sha": high}, format="json")
    assert (second.status_code, second.json()["status"]) == (200, "approved")
    assert second.json()["approvals"] == {"have": 2, "need": 2}
    assert read_json(store, "tasks/T-1.json")["approved_by"] == "bob"


def test_the_requester_is_refused_with_a_clear_403(store, high):
    response = _client("carol").post("/api/tasks/T-1/approve/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "carol requested task T-1; the policy refuses self-approval, so someone else must approve it."
    )


def test_the_task_detail_says_who_approved_this_version_and_what_the_caller_may_do(store, high):
    _client("alice").post("/api/tasks/T-1/approve/", {}, format="json")
    mine = _client("alice").get("/api/tasks/T-1/").json()["approval"]
    assert (mine["have"], mine["need"], mine["groups"], mine["level"]) == (1, 2, ["approvers"], "high")
    assert [entry["by"] for entry in mine["approvals"]] == ["alice"]
    assert (mine["may_approve"], mine["why_not_code"], mine["may_reject"]) == (
        False,
        "already_approved",
        True,
    )
    assert _client("bob").get("/api/tasks/T-1/").json()["approval"]["may_approve"] is True

    commit(store, {"tasks/T-1.json": task_doc("T-1", "awaiting_approval", risk_level="high", title="v2")})
    sync()
    changed = _client("bob").get("/api/tasks/T-1/").json()["approval"]
    assert (changed["have"], [entry["by"] for entry in changed["voided"]]) == (0, ["alice"])
