"""The approval console: tasks read-only, decided only through the actions' intermediate form."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages

from ssot.models import Task
from ssot.stores.factory import reset_store
from ssot.sync import sync
from testing.api import awaiting, make_user, put_tasks
from testing.content import commit, dispatch, read_json, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

CHANGELIST = "/admin/ssot/task/"


@pytest.fixture
def tasks(store):
    put_tasks(
        store,
        awaiting("T-1", risk_level="high", title="Login <script>alert(1)</script>"),
        awaiting("T-2"),
        task_doc("T-3", status="in_progress", risk_level="low"),
    )
    commit(store, {f"messages/{m['msg_id']}.json": m for m in (dispatch("T-1"),)})
    sync()
    Task.objects.filter(task_id="T-2").update(ci_state="failure")
    return store


def login(client, role: str):
    client.force_login(make_user(role))
    return client


def pks(*task_ids: str) -> list[str]:
    return [str(Task.objects.get(task_id=task_id).pk) for task_id in task_ids]


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def choose(client, action: str, *task_ids: str):
    """Pick an action on the changelist: answers the intermediate form."""
    return client.post(CHANGELIST, {"action": action, ACTION_CHECKBOX_NAME: pks(*task_ids)})


def apply(client, action: str, *task_ids: str, shas: dict[str, str] | None = None, **fields: str):
    """Submit the intermediate form, with the SHAs it carried (by default, the current ones)."""
    data = {"action": action, ACTION_CHECKBOX_NAME: pks(*task_ids), "apply": "yes", **fields}
    for task_id in task_ids:
        task = Task.objects.get(task_id=task_id)
        data[f"sha_{task.pk}"] = (shas or {}).get(task_id, task.blob_sha)
    return client.post(CHANGELIST, data, follow=True)


# -- the list ------------------------------------------------------------------------------------------


def test_staff_see_the_task_list_with_its_columns(tasks, client):
    response = login(client, "staff").get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for column in (
        "Task id",
        "Status",
        "Risk level",
        "Branch",
        "Reject count",
        "Ci state",
        "PR",
        "Last writer",
    ):
        assert column in html
    assert "Login &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=awaiting_approval", {"T-1", "T-2"}),
        ("risk_level__exact=low", {"T-3"}),
        ("ci_state__exact=failure", {"T-2"}),
        ("q=login", {"T-1"}),
    ],
)
def test_the_list_is_filtered_and_searched(tasks, client, query, expected):
    response = login(client, "staff").get(f"{CHANGELIST}?{query}")
    shown = {task.task_id for task in response.context["cl"].result_list}
    assert shown == expected


@pytest.mark.parametrize(
    "query", ["status__exact=%00", "ci_state__exact=a%00b", "q=%00", "risk_level__exact=%00"]
)
def test_a_nul_character_in_a_filter_is_a_400_not_a_500(tasks, client, query):
    response = login(client, "staff").get(f"{CHANGELIST}?{query}")
    assert response.status_code == 400


def test_users_outside_the_staff_are_sent_to_the_login(tasks, client):
    response = login(client, "executor").get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# -- who sees and may use which action ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("staff", set()),
        ("approver", {"approve_tasks", "reject_tasks"}),
        ("operator", {"approve_tasks", "reject_tasks", "override_tasks"}),
    ],
)
def test_actions_are_offered_only_with_their_permission(tasks, client, role, actions):
    response = login(client, role).get(CHANGELIST)
    form = response.context["action_form"]
    offered = {value for value, _ in form.fields["action"].choices if value} if form else set()
    assert offered == actions


@pytest.mark.parametrize(
    ("role", "action"),
    [("staff", "approve_tasks"), ("staff", "reject_tasks"), ("approver", "override_tasks")],
)
def test_an_action_posted_without_its_permission_is_refused(tasks, client, role, action):
    login(client, role)
    assert choose(client, action, "T-1").status_code == 403
    response = client.post(
        CHANGELIST,
        {
            "action": action,
            ACTION_CHECKBOX_NAME: pks("T-1"),
            "apply": "yes",
            "reason": "sneaky",
            "status": "x",
        },
    )
    assert response.status_code == 403
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


# -- the intermediate form -------------------------------------------------------------------------------


def test_an_action_first_shows_the_form_with_each_tasks_sha(tasks, client):
    response = choose(login(client, "approver"), "approve_tasks", "T-1", "T-2")
    assert response.status_code == 200
    assert response.templates[0].name == "admin/agentos/action_form.html"
    html = response.content.decode()
    for task in Task.objects.filter(task_id__in=["T-1", "T-2"]):
        assert f'name="sha_{task.pk}" value="{task.blob_sha}"' in html
    assert 'name="reason"' in html
    assert 'name="status"' not in html


def test_the_approve_form_says_how_many_approvals_each_task_has_of_those_it_needs(tasks, client):
    from html import unescape

    from ssot.policy import approval_status

    approver = make_user("approver")
    client.force_login(approver)
    html = unescape(choose(client, "approve_tasks", "T-1", "T-3").content.decode())
    assert '<th scope="col">Approvals</th>' in html
    high = approval_status(Task.objects.get(task_id="T-1"), approver)
    assert f"<td>0 of {high.need}</td>" in html  # the policy's count for a high-risk task
    assert "0 of 1 · Task T-3 is 'in_progress', not awaiting approval." in html
    # The reject form has no such column: a single rejection decides.
    assert "Approvals" not in choose(client, "reject_tasks", "T-1").content.decode()


def test_the_override_form_asks_for_a_target_status(tasks, client):
    html = choose(login(client, "operator"), "override_tasks", "T-3").content.decode()
    assert 'name="status"' in html


def test_approving_through_the_form_writes_the_ssot(tasks, client):
    login(client, "approver")
    choose(client, "approve_tasks", "T-1")
    response = apply(client, "approve_tasks", "T-1", reason="good to go")
    assert response.redirect_chain[-1][0].startswith(CHANGELIST)
    assert texts(response) == ["T-1: approved (awaiting_approval → approved)."]
    document = read_json(tasks, "tasks/T-1.json")
    assert (document["status"], document["approved_by"], document["approval_reason"]) == (
        "approved",
        "approver-user",
        "good to go",
    )
    assert Task.objects.get(task_id="T-1").status == "approved"


def test_each_selected_task_gets_its_own_outcome(tasks, client):
    response = apply(login(client, "approver"), "reject_tasks", "T-1", "T-2", "T-3", reason="not yet")
    assert texts(response) == [
        "T-1: rejected (awaiting_approval → rejected).",
        "T-2: rejected (awaiting_approval → rejected).",
        "T-3: not rejected. Task T-3 is 'in_progress', not awaiting_approval; it cannot be rejected.",
    ]
    assert read_json(tasks, "tasks/T-2.json")["reject_count"] == 1
    assert read_json(tasks, "tasks/T-3.json")["status"] == "in_progress"


def test_a_task_changed_since_the_form_was_shown_is_refused_as_stale(tasks, client):
    login(client, "approver")
    shown = Task.objects.get(task_id="T-1").blob_sha
    commit(tasks, {"tasks/T-1.json": awaiting("T-1", title="rewritten meanwhile")})
    sync()
    response = apply(client, "approve_tasks", "T-1", "T-2", shas={"T-1": shown}, reason="ok")
    messages = texts(response)
    assert messages[0].startswith("T-1: not approved, it changed since it was shown.")
    assert messages[1] == "T-2: approved (awaiting_approval → approved)."
    assert read_json(tasks, "tasks/T-1.json")["status"] == "awaiting_approval"


@pytest.mark.parametrize(("action", "role"), [("reject_tasks", "approver"), ("override_tasks", "operator")])
def test_a_missing_reason_shows_the_form_again_and_changes_nothing(tasks, client, action, role):
    head = tasks.head()
    response = apply(login(client, role), action, "T-1", reason="  ")
    assert response.status_code == 200
    assert response.templates[0].name == "admin/agentos/action_form.html"
    kind = action.removesuffix("_tasks")
    assert texts(response) == [f"A reason is required to {kind} tasks; nothing was changed."]
    assert "This field is required." in response.content.decode()
    assert tasks.head() == head


def test_an_override_sets_the_target_status(tasks, client):
    response = apply(login(client, "operator"), "override_tasks", "T-3", reason="hotfix", status="blocked")
    assert texts(response) == ["T-3: overridden (in_progress → blocked)."]
    document = read_json(tasks, "tasks/T-3.json")
    assert (document["status"], document["prev_status"], document["override_by"]) == (
        "blocked",
        "in_progress",
        "operator-user",
    )


def test_an_unreachable_ssot_is_reported_and_changes_nothing(tasks, client, settings, tmp_path: Path):
    login(client, "approver")
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a repository")
    settings.SSOT_LOCAL_PATH = blocker
    reset_store()
    response = apply(client, "approve_tasks", "T-1", reason="ok")
    [message] = texts(response)
    assert message.startswith("T-1: not approved, the SSOT is unavailable; nothing changed.")
    assert Task.objects.get(task_id="T-1").status == "awaiting_approval"


# -- the task page -----------------------------------------------------------------------------------


def test_the_task_page_shows_document_timeline_and_audit_read_only(tasks, client):
    login(client, "operator")
    apply(client, "override_tasks", "T-1", reason="testing <b>bold</b>", status="awaiting_approval")
    task = Task.objects.get(task_id="T-1")
    response = client.get(f"{CHANGELIST}{task.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&quot;task_id&quot;: &quot;T-1&quot;" in html
    assert dispatch("T-1")["msg_id"] in html
    assert "testing &lt;b&gt;bold&lt;/b&gt;" in html
    assert 'name="_save"' not in html
    # An operator overrides; approving is the policy's `approvers` (the built-in default) and it says so.
    assert 'value="approve_tasks"' not in html and 'value="override_tasks"' in html
    assert "No approve button: At risk level high, only members of &#x27;approvers&#x27;" in html
    assert f'name="sha_{task.pk}" value="{task.blob_sha}"' in html


@pytest.mark.parametrize(
    ("role", "task_id", "buttons"),
    [
        ("staff", "T-1", set()),
        ("approver", "T-1", {"approve_tasks", "reject_tasks"}),
        ("approver", "T-3", set()),
        ("operator", "T-3", {"override_tasks"}),
        ("operator", "T-1", {"override_tasks"}),
    ],
)
def test_the_task_page_offers_the_decisions_the_user_may_take(tasks, client, role, task_id, buttons):
    task = Task.objects.get(task_id=task_id)
    html = login(client, role).get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    shown = {
        action
        for action in ("approve_tasks", "reject_tasks", "override_tasks")
        if f'value="{action}"' in html
    }
    assert shown == buttons


def test_a_decision_from_the_task_page_carries_the_sha_it_showed(tasks, client):
    login(client, "approver")
    task = Task.objects.get(task_id="T-1")
    shown = task.blob_sha
    commit(tasks, {"tasks/T-1.json": awaiting("T-1", title="changed")})
    sync()
    response = client.post(
        CHANGELIST, {"action": "approve_tasks", ACTION_CHECKBOX_NAME: [task.pk], f"sha_{task.pk}": shown}
    )
    assert f'name="sha_{task.pk}" value="{shown}"' in response.content.decode()
    response = apply(client, "approve_tasks", "T-1", shas={"T-1": shown})
    assert texts(response)[0].startswith("T-1: not approved, it changed since it was shown.")


def test_mirrored_tasks_cannot_be_added_edited_or_deleted(tasks, client):
    login(client, "operator")
    task = Task.objects.get(task_id="T-1")
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(f"{CHANGELIST}{task.pk}/change/", {"status": "approved"}).status_code == 403
    assert client.get(f"{CHANGELIST}{task.pk}/delete/").status_code == 403
    assert (
        client.post(CHANGELIST, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [task.pk]}).status_code
        == 302
    )
    assert Task.objects.filter(task_id="T-1", status="awaiting_approval").exists()


def test_the_admin_action_follows_the_policy_and_the_task_page_explains_it(tasks, client):
    commit(tasks, {"policy/approvals.json": {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}})
    sync()
    login(client, "approver")
    response = apply(client, "approve_tasks", "T-1")
    assert texts(response) == [
        "T-1: approval recorded (1 of 2 for this version); it stays awaiting_approval until 1 more."
    ]
    task = Task.objects.get(task_id="T-1")
    html = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert "2 distinct approvals of the same version, by members of <code>approvers</code>" in html
    assert "approver-user at " in html
    assert "No approve button: approver-user already approved this version of task T-1" in html
    assert 'value="approve_tasks"' not in html and 'value="reject_tasks"' in html
    again = apply(client, "approve_tasks", "T-1")
    assert texts(again) == [
        "T-1: not approved. approver-user already approved this version of task T-1; "
        "approvers must be distinct."
    ]

    put_tasks(tasks, awaiting("T-1", risk_level="high", title="changed"))
    html = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert "1 approval of an older version no longer counts; the task changed since: approver-user." in html
    assert 'value="approve_tasks"' in html
