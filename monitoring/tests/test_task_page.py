"""The task page /dashboard/tasks/{id}/ and the escalation page (SPEC 9): login and back, what changed from
the SSOT's history, the acceptance criteria, decisions bound to the version shown, escaping."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import amp
from ssot import services as ssot_services
from ssot.history import task_changes
from ssot.models import Escalation, Task
from ssot.paths import message_path, task_path
from ssot.sync import sync
from testing.api import make_user
from testing.content import BASE_TIME, commit
from testing.monitor import audit_lines, ssot_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings", "api_settings")]


def doc(status: str = "awaiting_approval", **fields) -> dict:
    return {
        "task_id": "DEMO-1",
        "title": "Add offline mode",
        "status": status,
        "risk_level": "high",
        "branch": "feature/offline",
        "last_writer": "executor",
        "description": "Drafts are kept locally.",
        **fields,
    }


def write(store, document: dict, *, author: str = "executor", message: str = "update") -> None:
    commit(store, {task_path(document["task_id"]): document}, author=author, message=message)
    sync()


def dispatch(store, criteria: list, task_id: str = "DEMO-1") -> None:
    envelope = amp.build_envelope(
        msg_type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id=task_id,
        payload={"branch": "feature/offline", "acceptance_criteria": criteria},
        now=BASE_TIME,
    )
    commit(store, {message_path(envelope["msg_id"]): envelope}, author="coordinator")
    sync()


@pytest.fixture
def approver(client):
    client.force_login(make_user("approver", username="alice"))
    return client


@pytest.fixture
def asked(store):
    """DEMO-1 dispatched, worked on, then set to awaiting_approval by the executor with a change."""
    write(store, doc("in_progress"), author="coordinator", message="coordinator: dispatch DEMO-1")
    dispatch(store, ["Drafts survive a restart", "Sync resumes when online"])
    write(store, doc(description="Drafts are kept locally, encrypted."), message="executor: ready for review")
    return Task.objects.get(task_id="DEMO-1")


def words(body: str) -> str:
    """The page's text as read: entities decoded, whitespace collapsed, the spans task.js moves unwrapped."""
    return " ".join(html.unescape(re.sub(r"</?span[^>]*>", "", body)).split())


def page(client, task_id: str = "DEMO-1", **query) -> tuple[int, str]:
    response = client.get(f"/dashboard/tasks/{task_id}/", query)
    return response.status_code, response.content.decode()


def test_an_anonymous_visitor_goes_to_the_login_and_back(client, asked):
    response = client.get("/dashboard/tasks/DEMO-1/?sha=" + asked.blob_sha)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/dashboard/tasks/DEMO-1/")
    assert "sha%3D" in response["Location"]


def test_the_page_shows_the_task_its_ci_the_criteria_and_what_changed(approver, asked, store):
    Task.objects.filter(pk=asked.pk).update(
        ci_status={
            "build": {"state": "success", "url": "https://ci.example/1"},
            "lint": {"state": "failure"},
        },
        ci_state="failure",
        pr_number=12,
        pr_state="open",
        pr_url="https://github.com/o/r/pull/12",
    )

    status, body = page(approver)

    assert status == 200
    assert "Add offline mode" in body and "awaiting_approval" in body and "risk: high" in body
    assert "feature/offline" in body and "#12" in body and "https://github.com/o/r/pull/12" in body
    assert "build" in body and "lint" in body and "https://ci.example/1" in body
    assert "Drafts survive a restart" in body and "Sync resumes when online" in body
    # What changed since it asked: the status and the description, field by field.
    diff = body.split('id="diff"')[1].split("</dl>")[0]
    assert "status" in diff and "in_progress" in diff and "awaiting_approval" in diff
    assert "description" in diff and "Drafts are kept locally, encrypted." in diff
    assert "title" not in diff
    assert "the version before it asked for approval" in body
    history = body.split('id="history"')[1].split("</section>")[0]
    assert "executor: ready for review" in history and "coordinator: dispatch DEMO-1" in history
    assert "task_dispatch" in body  # the message timeline
    assert f'name="expected_sha" value="{asked.blob_sha}"' in body
    assert "Approve this version" in body and "Reject" in body


def test_an_older_sha_in_the_link_says_changed_since_notified(approver, asked, store):
    notified = asked.blob_sha
    write(store, doc(description="Changed again."), message="executor: one more change")

    _, body = page(approver, sha=notified)
    assert "Changed since you were notified" in body

    _, body = page(approver, sha=Task.objects.get(task_id="DEMO-1").blob_sha)
    assert "Changed since you were notified" not in body


def test_the_diff_is_against_the_last_decision_when_there_is_one(approver, asked, store):
    ssot_services.task_reject(task_id="DEMO-1", actor="alice", reason="encrypt with the OS keychain")
    rejected = Task.objects.get(task_id="DEMO-1").document
    write(store, {**rejected, "status": "awaiting_approval", "description": "Keychain encryption."})

    changes = task_changes(Task.objects.get(task_id="DEMO-1"))

    assert changes.basis.startswith("the last decision (rejected by alice)")
    fields = {change.name: (change.old, change.new) for change in changes.fields}
    assert fields["status"] == ("rejected", "awaiting_approval")
    assert fields["description"] == ("Drafts are kept locally, encrypted.", "Keychain encryption.")


def test_approve_with_a_note_commits_the_decision_with_its_audit_line(approver, asked, store):
    response = approver.post(
        "/dashboard/tasks/DEMO-1/decide/",
        {"action": "approve", "expected_sha": asked.blob_sha, "reason": "ship it"},
    )

    assert response.status_code == 303
    task = Task.objects.get(task_id="DEMO-1")
    assert response["Location"] == f"/dashboard/tasks/DEMO-1/?sha={task.blob_sha}"
    assert task.status == "approved"
    in_ssot = ssot_json(store, task_path("DEMO-1"))
    assert (in_ssot["approved_by"], in_ssot["approval_reason"]) == ("alice", "ship it")
    [line] = [line for line in audit_lines(store) if line["task_id"] == "DEMO-1"]
    assert (line["actor"], line["action"]) == ("alice", "approved")
    _, body = page(approver, sha=task.blob_sha)
    assert "Approved DEMO-1" in body and "Not awaiting approval" in body


def test_a_stale_decision_is_refused_with_the_new_version_offered(approver, asked, store):
    write(store, doc(description="Changed while the page was open."), message="executor: late change")
    fresh = Task.objects.get(task_id="DEMO-1")

    response = approver.post(
        "/dashboard/tasks/DEMO-1/decide/", {"action": "approve", "expected_sha": asked.blob_sha, "reason": ""}
    )

    assert response.status_code == 409
    body = response.content.decode()
    assert "The task changed since you opened it" in body
    assert f'name="expected_sha" value="{fresh.blob_sha}"' in body
    assert "Changed while the page was open." in body
    assert Task.objects.get(task_id="DEMO-1").status == "awaiting_approval"


def test_reject_needs_a_reason(approver, asked):
    response = approver.post(
        "/dashboard/tasks/DEMO-1/decide/", {"action": "reject", "expected_sha": asked.blob_sha}
    )
    assert response.status_code == 422
    assert "reason is required" in response.content.decode()
    assert Task.objects.get(task_id="DEMO-1").status == "awaiting_approval"


def test_staff_without_the_permission_see_no_buttons_and_are_refused(client, asked):
    client.force_login(make_user("staff"))
    _, body = page(client)
    decide = body.split('id="decide"')[1].split("</section>")[0]
    assert "approve-form" not in decide and "reject-form" not in decide, decide
    assert "You cannot approve" in decide
    response = client.post(
        "/dashboard/tasks/DEMO-1/decide/", {"action": "approve", "expected_sha": asked.blob_sha}
    )
    assert response.status_code == 403
    assert Task.objects.get(task_id="DEMO-1").status == "awaiting_approval"


@pytest.mark.parametrize(
    "form",
    [{}, {"action": "merge", "expected_sha": "a" * 40}, {"action": "approve", "expected_sha": "<x>"}],
)
def test_an_incomplete_form_is_a_400_not_a_500(approver, asked, form):
    assert approver.post("/dashboard/tasks/DEMO-1/decide/", form).status_code == 400


@pytest.mark.parametrize("task_id", ["NOPE", "..", "a" * 200, "bad id"])
def test_an_unknown_task_is_a_404(approver, store, task_id):
    assert approver.get(f"/dashboard/tasks/{task_id}/").status_code == 404


MARK = "<script>alert(1)</script>"


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=40))
def test_whatever_an_agent_writes_is_escaped(approver, store, text):
    hostile = f"{MARK}{text}\"'><img src=x onerror=alert(2)>"
    write(
        store,
        doc(title=hostile, description=hostile, branch=hostile, last_writer=hostile, **{"x<y>": hostile}),
        author="executor",
    )
    Task.objects.filter(task_id="DEMO-1").update(
        ci_status={hostile: {"state": hostile, "url": "javascript:alert(1)"}},
        pr_number=3,
        pr_url="javascript:x",
    )

    status, body = page(approver)

    assert status == 200
    assert MARK not in body and "<img src=x" not in body and "javascript:" not in body
    assert html.escape(MARK) in body or "&lt;script&gt;" in body


def test_the_dashboard_rows_link_to_the_task_page():
    from pathlib import Path

    script = (Path(__file__).parents[1] / "static/monitoring/dashboard.js").read_text()
    assert '"/dashboard/tasks/" + encodeURIComponent(task.task_id) + "/"' in script


# -- the escalation page ---------------------------------------------------------------------------------


@pytest.fixture
def escalation(store):
    envelope = amp.build_escalation(
        task_id="DEMO-1",
        escalation_type="approval_expired",
        severity="warning",
        triggered_by="system",
        description="Task DEMO-1 has waited 24.0 h <b>for approval</b>",
        suggested_actions=["Open the task page"],
        now=BASE_TIME,
    )
    ssot_services.escalation_raise(envelope=envelope, actor="system")
    return Escalation.objects.get(msg_id=envelope["msg_id"])


def test_the_escalation_page_by_id_or_msg_id_acknowledge_then_resolve(approver, escalation, store):
    for ref in (escalation.pk, escalation.msg_id):
        body = approver.get(f"/dashboard/escalations/{ref}/").content.decode()
        assert "approval_expired" in body and "&lt;b&gt;for approval&lt;/b&gt;" in body
        assert "Acknowledge" in body and "Open the task page" in body

    url = f"/dashboard/escalations/{escalation.msg_id}/act/"
    assert approver.post(url, {"action": "acknowledge"}).status_code == 303
    escalation.refresh_from_db()
    assert (escalation.status, escalation.acknowledged_by) == ("acknowledged", "alice")
    assert approver.post(url, {"action": "acknowledge"}).status_code == 409
    assert approver.post(url, {"action": "resolve", "reason": ""}).status_code == 422
    assert approver.post(url, {"action": "resolve", "reason": "decided by phone"}).status_code == 303
    escalation.refresh_from_db()
    assert (escalation.status, escalation.resolution) == ("resolved", "decided by phone")
    actions = [line["action"] for line in audit_lines(store) if line["msg_id"] == escalation.msg_id]
    assert actions == ["escalation", "escalation_acknowledged", "escalation_resolved"]


def test_the_escalation_page_needs_staff_and_the_permission_to_act(client, escalation):
    response = client.get(f"/dashboard/escalations/{escalation.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(make_user("staff"))
    assert "Acknowledge" not in client.get(f"/dashboard/escalations/{escalation.pk}/").content.decode()
    url = f"/dashboard/escalations/{escalation.pk}/act/"
    assert client.post(url, {"action": "acknowledge"}).status_code == 403
    assert client.get("/dashboard/escalations/99999/").status_code == 404


def test_history_on_the_github_store_costs_one_request_and_one_per_version(settings, tmp_path, approver):
    from ssot.stores.factory import reset_store
    from testing.github_fixture import github_emulator

    with github_emulator(tmp_path) as emulator:
        settings.SSOT_BACKEND = "github"
        settings.GITHUB_TOKEN = emulator.token
        settings.GITHUB_SSOT_REPO = f"{emulator.owner}/{emulator.name}"
        settings.GITHUB_API_URL = emulator.base_url
        reset_store()
        try:
            from ssot.stores.factory import get_store

            store = get_store()
            write(store, doc("in_progress"))
            write(store, doc(description="asked"))
            reset_store()  # a process that has read nothing yet: the page is served where nothing was written
            emulator.reset_counts()
            status, body = page(approver)
            assert status == 200 and "the version before it asked for approval" in body
            # The history, then each version: one request each, no tree listed, no blob read.
            assert dict(emulator.requests) == {
                "GET /repos/{owner}/{repo}/commits": 1,
                "GET /repos/{owner}/{repo}/contents/{path}": 2,
            }
        finally:
            reset_store()


def test_two_approvals_for_high_risk_the_page_counts_and_each_approver_decides_once(client, asked, store):
    """The approval policy (ssot.policy) decides which buttons the page offers and what an approval did."""
    from ssot.paths import POLICY_PATH

    commit(
        store,
        {
            POLICY_PATH: {
                "levels": {
                    "low": {"approvals": 1, "groups": ["approvers"]},
                    "medium": {"approvals": 1, "groups": ["approvers"]},
                    "high": {"approvals": 2, "groups": ["approvers"]},
                },
                "self_approval": False,
            }
        },
    )
    sync()
    client.force_login(make_user("approver", username="alice"))
    _, body = page(client)
    assert "Needs 2 approvals at risk high (0 so far on this version)" in words(body)

    response = client.post(
        "/dashboard/tasks/DEMO-1/decide/", {"action": "approve", "expected_sha": asked.blob_sha}, follow=True
    )
    body = response.content.decode()
    assert "Your approval of DEMO-1 is recorded: 1 of 2" in body
    assert "(1 so far on this version): alice" in words(body)
    decide = body.split('id="decide"')[1].split("</section>")[0]
    assert "approve-form" not in decide and "reject-form" in decide  # alice approved this version already

    client.force_login(make_user("approver", username="bob"))
    response = client.post(
        "/dashboard/tasks/DEMO-1/decide/", {"action": "approve", "expected_sha": asked.blob_sha}
    )
    assert response.status_code == 303
    assert Task.objects.get(task_id="DEMO-1").status == "approved"


def test_the_page_says_who_may_decide_why_not_and_which_approvals_a_change_voided(client, store):
    from ssot.paths import POLICY_PATH

    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}})
    write(store, doc(requested_by="olga"))
    ssot_services.task_approve(task_id="DEMO-1", actor=make_user("approver", username="alice").username)

    client.force_login(make_user("approver", username="olga"))
    _, body = page(client)
    text = " ".join(html.unescape(body).split())
    assert "Who may decide: members of approvers, never the person who requested it (olga)." in text
    assert "You cannot approve: olga requested task DEMO-1; the policy refuses self-approval" in text
    assert f"policy/approvals.json at <code>{store.entry(store.head(), POLICY_PATH).sha[:10]}</code>" in text

    write(store, doc(requested_by="olga", description="changed after alice approved"))
    client.force_login(make_user("approver", username="bob"))
    _, body = page(client)
    text = words(body)
    assert "1 approval of an earlier version no longer counts; the task changed since: alice." in text
    assert "(0 so far on this version)" in text
