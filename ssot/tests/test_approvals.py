"""M-of-N approvals under the policy (SPEC section 5), both stores: partial approvals, voiding, refusals."""

from __future__ import annotations

import json
import threading

import pygit2
import pytest
from django.db import connection

from core.errors import Forbidden, StaleSha
from ssot import services
from ssot.models import AuditEntry, Task, TaskApprovals
from ssot.paths import POLICY_PATH
from ssot.policy import approval_counts, approval_status, policy_in_force
from ssot.sync import sync
from ssot.verify import differences
from testing.api import make_user
from testing.content import commit, read_json, task_doc

pytestmark = pytest.mark.django_db

HIGH_NEEDS_TWO = {
    "levels": {
        "low": {"approvals": 1, "groups": ["approvers"]},
        "medium": {"approvals": 1, "groups": ["approvers"]},
        "high": {"approvals": 2, "groups": ["approvers"]},
    },
    "self_approval": False,
}


@pytest.fixture
def store(any_store):
    """Every test here runs on the local store and on GitHub (through the emulator)."""
    return any_store


@pytest.fixture
def people():
    """alice, bob and carol approve; olga is an operator; root is a superuser in no group."""
    users = {name: make_user("approver", username=name) for name in ("alice", "bob", "carol")}
    users["olga"] = make_user("operator", username="olga")
    users["root"] = make_user("staff", username="root", is_superuser=True)
    return users


def _high(store, **fields) -> str:
    """A policy needing two approvers at high risk, and T-1, a high-risk task awaiting approval."""
    commit(
        store,
        {
            POLICY_PATH: HIGH_NEEDS_TWO,
            "tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high", **fields),
        },
    )
    sync()
    return Task.objects.get(task_id="T-1").blob_sha


@pytest.fixture
def high(store, people) -> str:
    return _high(store, requested_by="olga")


def _repo(git_dir) -> pygit2.Repository:
    return pygit2.Repository(str(git_dir))


def _head_paths(git_dir) -> tuple[set[str], str]:
    """The paths the head commit changed, and its message."""
    repo = _repo(git_dir)
    head = repo[repo.head.target].peel(pygit2.Commit)
    diff = repo.diff(head.parents[0], head)
    return {delta.new_file.path for delta in diff.deltas}, head.message.strip()


def test_two_of_n_is_a_partial_commit_then_the_decision_commit(store, high, git_dir):
    first = services.task_approve(task_id="T-1", actor="alice", reason="reads well", expected_sha=high)
    assert (first.status, first.have, first.need, first.blob_sha) == ("awaiting_approval", 1, 2, high)
    paths, message = _head_paths(git_dir)
    assert {p for p in paths if not p.startswith("audit/")} == {"approvals/T-1.json"}
    assert message == "approve T-1 by alice"
    assert len(paths) == 2, "the approval and its audit line, one commit"
    assert read_json(store, "approvals/T-1.json")["blob_sha"] == high
    assert [a["by"] for a in read_json(store, "approvals/T-1.json")["approvals"]] == ["alice"]
    task = Task.objects.get()
    assert (task.status, task.blob_sha) == ("awaiting_approval", high), "the task file is untouched"
    assert AuditEntry.objects.get(action="approval_recorded").actor == "alice"

    second = services.task_approve(task_id="T-1", actor="bob", expected_sha=high)
    assert (second.status, second.have, second.need) == ("approved", 2, 2)
    paths, _ = _head_paths(git_dir)
    assert {p for p in paths if not p.startswith("audit/")} == {"tasks/T-1.json", "approvals/T-1.json"}
    assert read_json(store, "approvals/T-1.json") is None, "the pending file goes with the decision"
    document = read_json(store, "tasks/T-1.json")
    assert (document["status"], document["approved_by"]) == ("approved", "bob")
    assert [(a["by"], a["reason"]) for a in document["approvals"]] == [("alice", "reads well"), ("bob", "")]
    assert Task.objects.get().status == "approved"
    assert not TaskApprovals.objects.exists()
    assert differences(store) == []


def test_a_task_change_between_two_approvals_voids_the_first(store, high):
    services.task_approve(task_id="T-1", actor="alice")
    commit(
        store,
        {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high", title="changed")},
    )
    sync()
    changed = Task.objects.get().blob_sha
    with pytest.raises(StaleSha, match="changed since it was shown"):
        services.task_approve(task_id="T-1", actor="bob", expected_sha=high)
    decision = services.task_approve(task_id="T-1", actor="bob", expected_sha=changed)
    assert (decision.status, decision.have, decision.need) == ("awaiting_approval", 1, 2)
    pending = read_json(store, "approvals/T-1.json")
    assert (pending["blob_sha"], [a["by"] for a in pending["approvals"]]) == (changed, ["bob"])
    # alice approved the old version only: she may approve this one, and that makes two.
    assert services.task_approve(task_id="T-1", actor="alice").status == "approved"
    assert differences(store) == []


def test_the_same_approver_twice_is_refused(store, high):
    services.task_approve(task_id="T-1", actor="alice")
    head = store.head()
    with pytest.raises(Forbidden, match="alice already approved this version of task T-1"):
        services.task_approve(task_id="T-1", actor="alice")
    assert store.head() == head
    assert Task.objects.get().status == "awaiting_approval"


def test_the_person_who_requested_the_task_may_not_approve_it(store, high, people):
    people["olga"].groups.add(*people["alice"].groups.all())
    with pytest.raises(Forbidden, match="olga requested task T-1; the policy refuses self-approval"):
        services.task_approve(task_id="T-1", actor="olga")
    assert read_json(store, "approvals/T-1.json") is None


def test_self_approval_true_lets_the_requester_approve(store, people):
    _high(store, requested_by="alice")
    commit(store, {POLICY_PATH: {**HIGH_NEEDS_TWO, "self_approval": True}})
    sync()
    assert services.task_approve(task_id="T-1", actor="alice").have == 1


def test_a_reject_by_the_second_approver_rejects_at_once(store, high):
    services.task_approve(task_id="T-1", actor="alice")
    decision = services.task_reject(task_id="T-1", actor="bob", reason="missing tests")
    assert decision.status == "rejected"
    document = read_json(store, "tasks/T-1.json")
    assert (document["rejected_by"], document["reject_count"]) == ("bob", 1)
    assert read_json(store, "approvals/T-1.json") is None
    assert differences(store) == []


def test_an_approver_outside_the_groups_of_a_level_is_refused_but_allowed_on_another(store, people):
    commit(
        store,
        {
            POLICY_PATH: {"levels": {"high": {"approvals": 1, "groups": ["operators"]}}},
            "tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high"),
            "tasks/T-2.json": task_doc("T-2", status="awaiting_approval", risk_level="low"),
        },
    )
    sync()
    with pytest.raises(Forbidden, match="At risk level high, only members of 'operators' may approve"):
        services.task_approve(task_id="T-1", actor="alice")
    with pytest.raises(Forbidden, match="only members of 'operators'"):
        services.task_reject(task_id="T-1", actor="alice", reason="no")
    assert services.task_approve(task_id="T-2", actor="alice").status == "approved"
    assert services.task_approve(task_id="T-1", actor="olga").status == "approved"


def test_a_superuser_decides_at_every_level(store, people):
    _high(store)
    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 1, "groups": ["nobody-is-here"]}}}})
    sync()
    assert services.task_approve(task_id="T-1", actor="root").status == "approved"


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("executor", "Agents never approve"),
        ("ghost", "Only an active user"),
        ("staffer", "ssot.approve_task"),
    ],
)
def test_agents_unknown_names_and_staff_without_the_permission_never_approve(store, high, who, message):
    make_user("executor")
    make_user("staff", username="staffer")
    with pytest.raises(Forbidden, match=message):
        services.task_approve(task_id="T-1", actor=who)


def test_the_policy_at_the_head_applies_before_the_mirror_has_it(store, people):
    commit(store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high")})
    sync()
    commit(store, {POLICY_PATH: HIGH_NEEDS_TWO})
    assert policy_in_force().level("high").approvals == 1, "not synced yet"
    assert services.task_approve(task_id="T-1", actor="alice").status == "awaiting_approval"


def test_an_invalid_policy_at_the_head_leaves_the_previous_one_in_force(store, high):
    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": "two"}}}})
    assert services.task_approve(task_id="T-1", actor="alice").need == 2


def test_an_invalid_approvals_file_counts_nothing_and_is_replaced(store, high):
    commit(store, {"approvals/T-1.json": b'{"task_id": "T-1", "approvals": "all of us"}'})
    sync()
    decision = services.task_approve(task_id="T-1", actor="alice")
    assert (decision.status, decision.have) == ("awaiting_approval", 1)
    assert differences(store) == []


def test_override_needs_one_person(store, high):
    services.task_approve(task_id="T-1", actor="alice")
    decision = services.task_override(task_id="T-1", actor="olga", reason="ship now", status="approved")
    assert decision.status == "approved"
    assert read_json(store, "approvals/T-1.json") is None
    assert differences(store) == []


@pytest.mark.django_db(transaction=True)
def test_two_people_approving_the_same_version_at_once_are_both_recorded_and_approve_once(store, people):
    blob = _high(store)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def approve(name: str) -> None:
        try:
            barrier.wait()
            outcomes[name] = services.task_approve(task_id="T-1", actor=name, expected_sha=blob)
        except Exception as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(getattr(outcome, "status", repr(outcome)) for outcome in outcomes.values())
    assert statuses == ["approved", "awaiting_approval"]
    document = read_json(store, "tasks/T-1.json")
    assert sorted(a["by"] for a in document["approvals"]) == ["alice", "bob"]
    sync()
    assert AuditEntry.objects.filter(action="approved").count() == 1
    assert AuditEntry.objects.filter(action="approval_recorded").count() == 1
    assert differences(store) == []


def test_the_audit_line_of_a_partial_approval_says_how_far_it_is(store, high):
    services.task_approve(task_id="T-1", actor="alice", reason="ok")
    line = json.loads(AuditEntry.objects.get(action="approval_recorded").raw)
    assert (line["have"], line["need"], line["blob_sha"], line["detail"]) == (1, 2, high, "ok")


def test_an_approval_counts_only_while_its_author_may_approve(store, high, people):
    services.task_approve(task_id="T-1", actor="alice")
    people["alice"].groups.clear()
    decision = services.task_approve(task_id="T-1", actor="bob")
    assert (decision.status, decision.have, decision.need) == ("awaiting_approval", 1, 2)
    assert services.task_approve(task_id="T-1", actor="carol").status == "approved"
    document = read_json(store, "tasks/T-1.json")
    assert [entry["by"] for entry in document["approvals"]] == ["bob", "carol"]


def test_approvals_written_into_the_file_by_hand_count_only_for_people_who_may_approve(store, high, people):
    forged = [
        {"by": name, "at": "2026-11-30T10:00:00+00:00", "reason": "trust me"}
        for name in ("mallory", "executor", "olga")
    ]
    commit(store, {"approvals/T-1.json": {"task_id": "T-1", "blob_sha": high, "approvals": forged}})
    sync()
    make_user("executor")
    status = approval_status(Task.objects.get(), people["bob"])
    assert (status.have, [entry["by"] for entry in status.discounted]) == (0, ["mallory", "executor", "olga"])
    decision = services.task_approve(task_id="T-1", actor="bob")
    assert (decision.status, decision.have) == ("awaiting_approval", 1)


def test_an_approval_written_by_hand_in_a_real_approvers_name_never_counts(store, high, people):
    """An agent may push approvals/ (SPEC section 4) but cannot seal an entry: alice's name on an entry the
    control plane did not record counts for nothing, and does not stop alice from approving herself."""
    forged = [{"by": "alice", "at": "2026-11-30T10:00:00+00:00", "reason": "trust me"}]
    commit(store, {"approvals/T-1.json": {"task_id": "T-1", "blob_sha": high, "approvals": forged}})
    sync()
    status = approval_status(Task.objects.get(), people["bob"])
    assert (status.have, [entry["by"] for entry in status.discounted]) == (0, ["alice"])
    assert approval_status(Task.objects.get(), people["alice"]).may_approve, "the page offers alice approve"

    decision = services.task_approve(task_id="T-1", actor="bob")
    assert (decision.status, decision.have, decision.need) == ("awaiting_approval", 1, 2)
    pending = read_json(store, "approvals/T-1.json")["approvals"]
    assert [entry["by"] for entry in pending] == ["bob"], "the unsealed entry is not carried forward"
    assert pending[0]["seal"]

    assert services.task_approve(task_id="T-1", actor="alice").status == "approved"
    assert [entry["by"] for entry in read_json(store, "tasks/T-1.json")["approvals"]] == ["bob", "alice"]


def test_a_sealed_approval_copied_to_another_version_or_name_never_counts(store, high, people):
    """The seal binds the task, its version, the approver and the time: a copy of a real entry counts for
    nothing anywhere else."""
    services.task_approve(task_id="T-1", actor="alice")
    [real] = read_json(store, "approvals/T-1.json")["approvals"]
    renamed = {**real, "by": "bob"}
    commit(store, {"approvals/T-1.json": {"task_id": "T-1", "blob_sha": high, "approvals": [renamed]}})
    sync()
    status = approval_status(Task.objects.get(), people["alice"])
    assert (status.have, [entry["by"] for entry in status.discounted]) == (0, ["bob"])


# -- what the dashboard counts ------------------------------------------------------------------------


def _counted(task_id: str = "T-1") -> tuple[int, int] | None:
    """approval_counts for every task, as the dashboard's snapshot reads them (documents deferred)."""
    counted = approval_counts(Task.objects.defer("document")).get(task_id)
    return (counted.have, counted.need) if counted else None


def _shown(user, task_id: str = "T-1") -> tuple[int, int]:
    status = approval_status(Task.objects.get(task_id=task_id), user)
    return status.have, status.need


def test_the_dashboards_count_is_the_task_pages_through_a_tasks_life(store, high, people):
    bob = people["bob"]
    assert _counted() == _shown(bob) == (0, 2)
    services.task_approve(task_id="T-1", actor="alice")
    assert _counted() == _shown(bob) == (1, 2)
    people["alice"].groups.clear()  # her approval counts only while she may approve
    assert _counted() == _shown(bob) == (0, 2)
    people["alice"].groups.add(*people["bob"].groups.all())
    commit(
        store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high", title="v2")}
    )
    sync()
    assert _counted() == _shown(bob) == (0, 2), "approvals of the older version count for nothing"
    services.task_approve(task_id="T-1", actor="alice")
    services.task_approve(task_id="T-1", actor="bob")
    assert Task.objects.get().status == "approved"
    assert _counted() is None, "only tasks awaiting approval are counted"


def test_a_requesters_own_sealed_approval_is_not_counted_on_the_dashboard(store, people):
    """self_approval false: the requester's approval, sealed while the policy allowed it, counts for
    nothing once it does not, on the dashboard as on the task page."""
    commit(
        store,
        {
            POLICY_PATH: {**HIGH_NEEDS_TWO, "self_approval": True},
            "tasks/T-1.json": task_doc(
                "T-1", status="awaiting_approval", risk_level="high", requested_by="alice"
            ),
        },
    )
    sync()
    services.task_approve(task_id="T-1", actor="alice")
    assert _counted() == _shown(people["bob"]) == (1, 2)
    commit(store, {POLICY_PATH: HIGH_NEEDS_TWO})
    sync()
    assert _counted() == _shown(people["bob"]) == (0, 2)


def test_the_dashboards_counts_cost_two_queries_and_more_only_per_task_with_approvals(
    store, people, django_assert_num_queries, django_assert_max_num_queries
):
    commit(
        store,
        {
            POLICY_PATH: HIGH_NEEDS_TWO,
            **{
                f"tasks/T-{n}.json": task_doc(f"T-{n}", status="awaiting_approval", risk_level="high")
                for n in range(40)
            },
        },
    )
    sync()
    tasks = list(Task.objects.defer("document"))
    with django_assert_num_queries(2):  # the policy, the pending approvals
        assert set(approval_counts(tasks).values()) == {(0, 2)}
    for n in (3, 7):
        services.task_approve(task_id=f"T-{n}", actor="alice")
    # And the documents of the tasks with approvals of their version (one query), then per such task its
    # approvers and whether each may approve (ssot.policy.decide_refusal: agent, permission, group).
    with django_assert_max_num_queries(2 + 2 * (2 + 4)):
        counts = approval_counts(tasks)
    assert {task_id for task_id, counted in counts.items() if counted.have} == {"T-3", "T-7"}
