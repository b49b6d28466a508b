"""GET/POST /api/sync/, GET /api/audit/ and the public GET /api/amp/schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssot import audit, services
from ssot.models import QuarantinedFile, SyncState
from ssot.stores.factory import reset_store
from testing.api import ROLES, awaiting, jwt_client, make_user, put_tasks
from testing.content import commit, dispatch, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings", "deciders")]

AMP_SCHEMA = Path(__file__).resolve().parents[2] / "amp" / "schema" / "amp-1.0.schema.json"


@pytest.fixture
def tasks(store):
    put_tasks(store, awaiting("T-1"), task_doc("T-2"))
    return store


# -- sync ----------------------------------------------------------------------------------------------


def test_the_sync_status_shows_backend_branch_head_and_quarantine(tasks):
    commit(tasks, {"tasks/broken.json": b"{not json"})
    jwt_client(make_user("operator")).post("/api/sync/", {}, format="json")
    body = jwt_client(make_user("staff")).get("/api/sync").json()
    assert (body["backend"], body["branch"], body["head"]) == ("local", "main", tasks.head())
    assert body["repository"] == str(tasks.path)
    assert body["quarantined"] == 1 == QuarantinedFile.objects.count()
    assert body["last_sync_at"] and body["last_error"] == ""
    assert body["last_report"]["quarantined"] == ["tasks/broken.json"]


def test_the_sync_status_before_any_sync_creates_nothing(store):
    body = jwt_client(make_user("reviewer")).get("/api/sync/").json()
    assert (body["head"], body["last_sync_at"], body["quarantined"]) == ("", None, 0)
    assert not SyncState.objects.exists()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_reading_the_sync_status_needs_a_staff_or_agent_account(tasks, role):
    assert jwt_client(make_user(role)).get("/api/sync/").status_code == (403 if role == "outsider" else 200)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_triggering_a_sync_needs_the_override_permission(tasks, role):
    response = jwt_client(make_user(role)).post("/api/sync/")
    assert response.status_code == (200 if role == "operator" else 403)


def test_a_sync_picks_up_what_was_pushed(tasks):
    commit(tasks, {"tasks/T-3.json": task_doc("T-3")})
    response = jwt_client(make_user("operator")).post("/api/sync/", {}, format="json")
    assert response.status_code == 200
    report = response.json()
    assert (report["mode"], report["files_read"], report["head"]) == ("incremental", 1, tasks.head())
    assert jwt_client(make_user("staff")).get("/api/tasks/T-3/").status_code == 200


def test_a_pushed_nul_character_is_quarantined_and_the_sync_goes_on(tasks):
    nul_message = dispatch("T-1", n=1)
    nul_message["payload"]["note"] = "a\u0000b"
    audit_line = {
        "timestamp": "2026-11-01T09:00:00+00:00",
        "actor": "coordinator",
        "action": "note",
        "detail": "x\u0000y",
    }
    commit(
        tasks,
        {
            "tasks/T-9.json": task_doc("T-9", title="nul \u0000 here"),
            f"messages/{nul_message['msg_id']}.json": nul_message,
            "tasks/T-10.json": task_doc("T-10"),
            "audit/2026/11/01.jsonl": (json.dumps(audit_line) + "\n").encode(),
        },
    )
    response = jwt_client(make_user("operator")).post("/api/sync/", {}, format="json")
    assert response.status_code == 200
    assert sorted(response.json()["quarantined"]) == [
        "messages/" + nul_message["msg_id"] + ".json",
        "tasks/T-9.json",
    ]
    staff = jwt_client(make_user("staff"))
    assert staff.get("/api/tasks/T-10/").status_code == 200
    assert staff.get("/api/tasks/T-9/").status_code == 404
    [line] = staff.get("/api/audit/?action=note").json()["results"]
    assert line["detail"] == "x\ufffdy"


def test_a_full_sync_compares_every_file(tasks):
    response = jwt_client(make_user("operator")).post("/api/sync", {"full": True}, format="json")
    assert response.json()["mode"] == "full"


@pytest.mark.parametrize("raw", [b'{"full": "perhaps"}', b"[true]", b"{", b'{"full": {}}'])
def test_a_bad_sync_body_is_a_400(tasks, raw):
    response = jwt_client(make_user("operator")).generic(
        "POST", "/api/sync/", raw, content_type="application/json"
    )
    assert response.status_code == 400


def test_a_sync_of_an_unreachable_ssot_is_a_503_and_is_recorded(tasks, settings, tmp_path: Path):
    operator = jwt_client(make_user("operator"))
    blocker = tmp_path / "file"
    blocker.write_text("not a repository")
    settings.SSOT_LOCAL_PATH = blocker
    reset_store()
    response = operator.post("/api/sync/", {}, format="json")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("SSOT unavailable")
    status = operator.get("/api/sync/").json()
    assert status["last_error"] and status["consecutive_errors"] == 1


def test_anonymous_sync_calls_are_a_401(tasks):
    assert jwt_client(None).get("/api/sync/").status_code == 401
    assert jwt_client(None).post("/api/sync/").status_code == 401


# -- audit ---------------------------------------------------------------------------------------------


@pytest.fixture
def audited(tasks):
    services.task_approve(task_id="T-1", actor="alice", reason="ok")
    services.task_override(task_id="T-2", actor="olga", reason="parked", status="parked")
    audit.audit_queue(actor="github", action="ci_update", task_id="T-2", detail="tests passed")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("task_id=T-1", [("alice", "approved")]),
        ("actor=olga", [("olga", "override")]),
        ("action=ci_update", [("github", "ci_update")]),
        ("task_id=T-2", [("github", "ci_update"), ("olga", "override")]),
    ],
)
def test_audit_lines_are_filtered_newest_first(audited, query, expected):
    body = jwt_client(make_user("staff")).get(f"/api/audit/?{query}").json()
    assert [(line["actor"], line["action"]) for line in body["results"]] == expected


def test_audit_lines_say_whether_they_are_in_the_ssot(audited):
    body = jwt_client(make_user("staff")).get("/api/audit").json()
    in_ssot = {line["action"]: line["in_ssot"] for line in body["results"]}
    assert in_ssot == {"approved": True, "override": True, "ci_update": False}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_reading_the_audit_log_needs_a_staff_or_agent_account(audited, role):
    assert jwt_client(make_user(role)).get("/api/audit/").status_code == (403 if role == "outsider" else 200)


# -- the AMP schema ------------------------------------------------------------------------------------


def test_the_amp_schema_is_public(db):
    response = jwt_client(None).get("/api/amp/schema.json")
    assert response.status_code == 200
    assert response.json() == json.loads(AMP_SCHEMA.read_text())


def test_the_amp_schema_ignores_a_bad_token(db):
    client = jwt_client(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.forged")
    assert client.get("/api/amp/schema.json").status_code == 200


def test_unknown_api_paths_are_a_json_404(db):
    response = jwt_client(make_user("staff")).get("/api/nothing/here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
