"""GET /api/tasks/, GET /api/tasks/{id}/ and the decisions approve, reject, override, through real JWTs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssot.models import AuditEntry, Task
from ssot.stores.factory import reset_store
from testing.api import ROLES, awaiting, jwt_client, make_user, put_tasks
from testing.content import commit, dispatch, read_json, result, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


@pytest.fixture
def tasks(store):
    put_tasks(
        store,
        awaiting("T-1", risk_level="high", custom={"keep": ["me", 1.5, None]}),
        task_doc("T-2", status="in_progress", branch="feature/login-form", title="Login form"),
        task_doc("T-3", status="done", risk_level="low"),
    )
    return store


@pytest.fixture
def approver():
    return jwt_client(make_user("approver"))


@pytest.fixture
def operator():
    return jwt_client(make_user("operator"))


# -- who may do what ---------------------------------------------------------------------------------

READS = ["/api/tasks/", "/api/tasks", "/api/tasks/T-1/", "/api/tasks/T-1"]
DECISIONS = [
    ("approve", {"reason": "ship it"}),
    ("reject", {"reason": "needs tests"}),
    ("override", {"reason": "hotfix", "status": "in_progress"}),
]


@pytest.mark.parametrize("path", READS)
def test_anonymous_reads_are_refused_with_a_bearer_challenge(tasks, path):
    response = jwt_client(None).get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize(("kind", "body"), DECISIONS)
def test_anonymous_decisions_are_refused(tasks, kind, body):
    response = jwt_client(None).post(f"/api/tasks/T-1/{kind}/", body, format="json")
    assert response.status_code == 401
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


def test_a_forged_token_is_refused(tasks):
    client = jwt_client(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = client.get("/api/tasks/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_reading_tasks_needs_a_staff_or_agent_account(tasks, role):
    response = jwt_client(make_user(role)).get("/api/tasks/T-1/")
    assert response.status_code == (403 if role == "outsider" else 200)


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize(("kind", "body"), DECISIONS)
def test_decisions_need_their_permission(tasks, role, kind, body):
    # Operators hold ssot.approve_task, but the built-in policy names the group `approvers` only.
    allowed = {"approve": {"approver"}, "reject": {"approver"}, "override": {"operator"}}
    response = jwt_client(make_user(role)).post(f"/api/tasks/T-1/{kind}", body, format="json")
    if role in allowed[kind]:
        assert response.status_code == 200, response.content
        assert read_json(tasks, "tasks/T-1.json")["last_writer"] == "admin"
    elif role == "operator":
        assert response.status_code == 403
        assert "only members of 'approvers' may approve or reject" in response.json()["detail"]
    else:
        assert response.status_code == 403
        assert "ssot." in response.json()["detail"] or "staff" in response.json()["detail"]
        assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


# -- reading -----------------------------------------------------------------------------------------


def test_tasks_are_listed_paginated_newest_first(tasks, approver):
    body = approver.get("/api/tasks/?limit=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"].endswith("limit=2&offset=2")
    assert {"task_id", "status", "risk_level", "branch", "blob_sha", "ci_state", "pr"} <= set(
        body["results"][0]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=awaiting_approval", ["T-1"]),
        ("risk_level=low", ["T-3"]),
        ("branch=feature/login-form", ["T-2"]),
        ("search=login", ["T-2"]),
        ("search=t-3", ["T-3"]),
        ("status=awaiting_approval&risk_level=low", []),
    ],
)
def test_tasks_are_filtered(tasks, approver, query, expected):
    body = approver.get(f"/api/tasks?{query}").json()
    assert sorted(task["task_id"] for task in body["results"]) == expected


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc&offset=-5",
        "limit=99999999999999999999999&offset=99999999999999999999999",
        "search=%00",
        "status=a%00b",
        "branch=" + "x" * 5000,
        "search=%FF%FE",
        "risk_level=",
        "unknown=1",
    ],
)
def test_odd_queries_are_never_a_500(tasks, approver, query):
    response = approver.get(f"/api/tasks/?{query}")
    assert response.status_code in (200, 400)
    assert response.json()


def test_an_invalid_filter_value_is_a_400_naming_the_filter(tasks, approver):
    response = approver.get("/api/tasks/?risk_level=extreme")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "risk_level"


def test_a_task_shows_its_blob_sha_ci_pr_document_and_message_timeline(tasks, approver):
    later, earlier = result("T-1", n=1), dispatch("T-1")
    commit(tasks, {f"messages/{m['msg_id']}.json": m for m in (later, earlier)})
    from ssot.sync import sync

    sync()
    Task.objects.filter(task_id="T-1").update(
        ci_state="failure",
        ci_status={"tests": {"state": "failure", "source": "github"}},
        pr_number=7,
        pr_state="open",
        pr_url="https://github.com/acme/app/pull/7",
        pr_title="Login",
    )
    body = approver.get("/api/tasks/T-1/").json()
    assert body["blob_sha"] == tasks.entry(tasks.head(), "tasks/T-1.json").sha
    assert body["document"]["custom"] == {"keep": ["me", 1.5, None]}
    assert body["ci_state"] == "failure"
    assert body["ci_status"]["tests"]["state"] == "failure"
    assert body["pr"] == {
        "number": 7,
        "state": "open",
        "url": "https://github.com/acme/app/pull/7",
        "title": "Login",
    }
    assert [m["msg_id"] for m in body["messages"]] == [earlier["msg_id"], later["msg_id"]]
    assert body["messages"][0]["from"] == "coordinator"
    assert body["messages"][0]["to"] == "executor"


@pytest.mark.parametrize(
    "path", ["/api/tasks/T-404/", "/api/tasks/../", "/api/tasks/..%2Fx/", "/api/tasks/a/b/c/"]
)
def test_unknown_or_unsafe_task_ids_are_a_json_404(tasks, approver, path):
    response = approver.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


# -- deciding ----------------------------------------------------------------------------------------


def test_approve_writes_the_ssot_and_answers_the_new_status(tasks, approver):
    response = approver.post("/api/tasks/T-1/approve/", {"reason": "ship it"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "ok": True,
        "task_id": "T-1",
        "status": "approved",
        "prev_status": "awaiting_approval",
        "blob_sha": tasks.entry(tasks.head(), "tasks/T-1.json").sha,
        "approvals": {"have": 1, "need": 1},
    }
    document = read_json(tasks, "tasks/T-1.json")
    assert (document["status"], document["approved_by"], document["approval_reason"]) == (
        "approved",
        "approver-user",
        "ship it",
    )
    assert document["custom"] == {"keep": ["me", 1.5, None]}
    assert Task.objects.get(task_id="T-1").status == "approved"
    assert AuditEntry.objects.filter(task_id="T-1", action="approved", actor="approver-user").exists()


def test_approve_without_a_body_is_allowed(tasks, approver):
    response = approver.post("/api/tasks/T-1/approve")
    assert response.status_code == 200
    assert read_json(tasks, "tasks/T-1.json")["approval_reason"] == ""


def test_approve_with_the_sha_that_was_shown_succeeds(tasks, approver):
    sha = approver.get("/api/tasks/T-1/").json()["blob_sha"]
    response = approver.post("/api/tasks/T-1/approve/", {"expected_sha": sha}, format="json")
    assert response.status_code == 200


def test_approve_of_a_task_changed_since_it_was_shown_is_a_409_stale(tasks, approver):
    sha = approver.get("/api/tasks/T-1/").json()["blob_sha"]
    commit(tasks, {"tasks/T-1.json": awaiting("T-1", title="changed under the approver")})
    response = approver.post("/api/tasks/T-1/approve/", {"expected_sha": sha}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "stale"
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


@pytest.mark.parametrize("kind", ["approve", "reject"])
def test_deciding_a_task_not_awaiting_approval_is_a_409_wrong_state(tasks, approver, kind):
    response = approver.post(f"/api/tasks/T-2/{kind}/", {"reason": "because"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "wrong_state"
    assert "'in_progress', not awaiting_approval" in body["detail"]


def test_reject_counts_up_and_keeps_the_reason(tasks, approver):
    response = approver.post("/api/tasks/T-1/reject/", {"reason": "needs tests"}, format="json")
    assert response.status_code == 200
    document = read_json(tasks, "tasks/T-1.json")
    assert (document["status"], document["reject_count"], document["rejection_reason"]) == (
        "rejected",
        1,
        "needs tests",
    )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}])
def test_reject_without_a_reason_is_a_422(tasks, approver, body):
    response = approver.post("/api/tasks/T-1/reject/", body, format="json")
    assert response.status_code == 422
    assert response.json() == {"detail": "A reason is required to reject a task.", "code": "reason_required"}
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


def test_override_sets_the_requested_status_from_any_state(tasks, operator):
    response = operator.post(
        "/api/tasks/T-3/override/", {"reason": "reopened", "status": "in_progress"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["prev_status"] == "done"
    document = read_json(tasks, "tasks/T-3.json")
    assert (document["status"], document["prev_status"], document["override_reason"]) == (
        "in_progress",
        "done",
        "reopened",
    )


def test_override_defaults_to_the_status_override(tasks, operator):
    response = operator.post("/api/tasks/T-2/override/", {"reason": "stop"}, format="json")
    assert response.json()["status"] == "override"


def test_override_without_a_reason_is_a_422(tasks, operator):
    response = operator.post("/api/tasks/T-2/override/", {"status": "done"}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "reason_required"


def test_override_to_an_overlong_status_is_a_422_naming_the_field(tasks, operator):
    response = operator.post("/api/tasks/T-2/override/", {"reason": "x", "status": "s" * 65}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"path": "status", "message": "a non-empty string of at most 64 characters"}
    ]


def test_deciding_an_unknown_task_is_a_404(tasks, approver):
    response = approver.post("/api/tasks/T-404/approve/", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_deciding_an_unsafe_task_id_is_a_404_and_writes_nothing(tasks, approver):
    head = tasks.head()
    response = approver.post("/api/tasks/..%2F..%2Fescape/approve/", {}, format="json")
    assert response.status_code == 404
    response = approver.post("/api/tasks/../approve/", {}, format="json")
    assert response.status_code == 404
    assert tasks.head() == head


# -- bodies that must never be a 500 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "path"),
    [
        (b"{not json", "application/json", 400, None),
        (b'{"reason": "a", "reason": "b"}', "application/json", 400, None),
        (b'{"reason": NaN}', "application/json", 400, None),
        (b"\xff\xfe", "application/json", 400, None),
        (b"[1, 2]", "application/json", 400, "$"),
        (b'"just a string"', "application/json", 400, "$"),
        (b'{"reason": {"nested": true}}', "application/json", 400, "reason"),
        (b'{"reason": ["a"]}', "application/json", 400, "reason"),
        (b'{"expected_sha": "../../etc/passwd"}', "application/json", 400, "expected_sha"),
        (b'{"expected_sha": 12}', "application/json", 400, "expected_sha"),
        (b"reason=x", "application/x-www-form-urlencoded", 415, None),
        (b"[" * 100_000, "application/json", 400, None),
    ],
)
def test_malformed_bodies_are_refused_without_a_500(tasks, approver, raw, content_type, status, path):
    response = approver.generic("POST", "/api/tasks/T-1/reject/", raw, content_type=content_type)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"]
    if path is not None:
        assert path in [error["path"] for error in body["errors"]]
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


def test_a_huge_reason_is_a_422(tasks, approver):
    response = approver.post("/api/tasks/T-1/reject/", {"reason": "x" * 5000}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "reason"


def test_a_body_over_the_upload_limit_is_a_413(tasks, approver, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = approver.post("/api/tasks/T-1/reject/", {"reason": "x" * 2000}, format="json")
    assert response.status_code == 413


def test_an_unreachable_ssot_is_a_503_and_changes_nothing(tasks, approver, settings, tmp_path: Path):
    not_a_repo = tmp_path / "plain-file"
    not_a_repo.write_text("this is not a git repository")
    settings.SSOT_LOCAL_PATH = not_a_repo
    reset_store()
    response = approver.post("/api/tasks/T-1/approve/", {"reason": "ship it"}, format="json")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "ssot_unavailable"
    assert body["detail"].startswith("SSOT unavailable")
    assert Task.objects.get(task_id="T-1").status == "awaiting_approval"
