"""The write path: SSOT first, one commit per change with its audit line, rows after, events after commit."""

from __future__ import annotations

import itertools
import json
import threading

import pygit2
import pytest
from django.db import DatabaseError, connection

from core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReasonRequired,
    SsotUnavailable,
    StaleSha,
    WrongState,
)
from ssot import audit, services
from ssot.documents import dump_json
from ssot.mirror import Mirror
from ssot.models import AuditEntry, Message, Task
from ssot.stores.factory import reset_store
from ssot.sync import sync
from ssot.verify import differences
from testing.content import commit, dispatch, read_json, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("deciders")]


@pytest.fixture
def store(any_store):
    """Every test here runs on the local store and on GitHub (through the emulator)."""
    return any_store


@pytest.fixture
def awaiting(store):
    """T-1 awaiting approval, with fields the control plane does not know."""
    commit(
        store,
        {
            "tasks/T-1.json": task_doc(
                "T-1",
                status="awaiting_approval",
                reject_count=2,
                custom={"keep": ["me", 1.25, None]},
                note="ünïcode",
            )
        },
    )
    sync()
    return store


def _commits(git_dir) -> int:
    repo = pygit2.Repository(str(git_dir))
    return sum(1 for _ in repo.walk(repo.head.target))


def _changed_paths(git_dir) -> set[str]:
    repo = pygit2.Repository(str(git_dir))
    head = repo[repo.head.target].peel(pygit2.Commit)
    diff = repo.diff(head.parents[0], head)
    return {delta.new_file.path for delta in diff.deltas}


def test_approve_writes_the_task_and_its_audit_line_in_one_commit(
    awaiting, git_dir, django_capture_on_commit_callbacks
):
    before = _commits(git_dir)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        decision = services.task_approve(task_id="T-1", actor="alice", reason="ship it")
    assert (decision.status, decision.prev_status) == ("approved", "awaiting_approval")
    assert _commits(git_dir) == before + 1
    audit_path = next(p for p in _changed_paths(git_dir) if p.startswith("audit/"))
    assert _changed_paths(git_dir) == {"tasks/T-1.json", audit_path}
    document = read_json(awaiting, "tasks/T-1.json")
    assert document["approved_by"] == "alice"
    assert (document["approval_reason"], document["last_writer"]) == ("ship it", "admin")
    assert document["custom"] == {"keep": ["me", 1.25, None]} and document["note"] == "ünïcode"
    assert Task.objects.get().status == "approved"
    entry = AuditEntry.objects.get(action="approved")
    assert (entry.in_ssot, entry.ssot_path, entry.line_no, entry.detail) == (True, audit_path, 1, "ship it")
    assert callbacks, "events are sent on commit"
    assert differences(awaiting) == []


def test_approve_keeps_the_key_order_of_the_file(awaiting):
    services.task_approve(task_id="T-1", actor="alice")
    keys = list(read_json(awaiting, "tasks/T-1.json"))
    assert keys[:4] == ["task_id", "title", "status", "risk_level"]


def test_reject_needs_a_reason_and_counts(awaiting):
    with pytest.raises(ReasonRequired, match="reason is required"):
        services.task_reject(task_id="T-1", actor="alice", reason="   ")
    services.task_reject(task_id="T-1", actor="alice", reason="tests missing")
    document = read_json(awaiting, "tasks/T-1.json")
    assert (document["status"], document["reject_count"], document["rejection_reason"]) == (
        "rejected",
        3,
        "tests missing",
    )
    assert Task.objects.get().reject_count == 3


def test_decisions_need_the_task_awaiting_approval(awaiting):
    services.task_approve(task_id="T-1", actor="alice")
    head = awaiting.head()
    with pytest.raises(WrongState, match="not awaiting_approval"):
        services.task_approve(task_id="T-1", actor="bob")
    with pytest.raises(WrongState):
        services.task_reject(task_id="T-1", actor="bob", reason="late")
    assert awaiting.head() == head


def test_a_stale_expected_sha_is_refused(awaiting):
    seen = Task.objects.get().blob_sha
    commit(awaiting, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", title="changed")})
    with pytest.raises(StaleSha, match="changed since it was shown"):
        services.task_approve(task_id="T-1", actor="alice", expected_sha=seen)
    sync()
    decision = services.task_approve(task_id="T-1", actor="alice", expected_sha=Task.objects.get().blob_sha)
    assert decision.status == "approved"


def test_override_from_any_state_keeps_the_previous_status(awaiting):
    with pytest.raises(ReasonRequired):
        services.task_override(task_id="T-1", actor="root", reason="")
    decision = services.task_override(task_id="T-1", actor="root", reason="unblock", status="in_progress")
    assert (decision.prev_status, decision.status) == ("awaiting_approval", "in_progress")
    document = read_json(awaiting, "tasks/T-1.json")
    assert (document["prev_status"], document["override_by"], document["override_reason"]) == (
        "awaiting_approval",
        "root",
        "unblock",
    )
    assert services.task_override(task_id="T-1", actor="root", reason="again").status == "override"


@pytest.mark.parametrize("status", [" ", "\t", "x" * 65])
def test_override_refuses_a_bad_target_status(awaiting, status):
    with pytest.raises(Invalid):
        services.task_override(task_id="T-1", actor="root", reason="r", status=status)


@pytest.mark.parametrize("task_id", ["T-404", "../etc/passwd", "a b", ""])
def test_unknown_or_unsafe_task_ids_are_not_found(awaiting, task_id):
    with pytest.raises(NotFound):
        services.task_approve(task_id=task_id, actor="alice")


def test_a_quarantined_task_cannot_be_decided(store):
    commit(store, {"tasks/T-1.json": b"{broken"})
    with pytest.raises(Conflict, match="quarantined"):
        services.task_override(task_id="T-1", actor="root", reason="fix")


def test_a_huge_reason_is_refused(awaiting):
    with pytest.raises(Invalid, match="too long"):
        services.task_reject(task_id="T-1", actor="alice", reason="x" * 5000)


def test_a_push_racing_the_decision_is_retried_on_the_new_head(awaiting, monkeypatch):
    real_commit = awaiting.commit
    raced: list[str] = []

    def push_first(**kwargs):
        if not raced:
            doc = task_doc("T-1", status="awaiting_approval", v=2)
            raced.append(
                real_commit(
                    parent=awaiting.head(),
                    writes={"tasks/T-1.json": dump_json(doc)},
                    message="coordinator edits",
                    author="coordinator",
                )
            )
        return real_commit(**kwargs)

    monkeypatch.setattr(awaiting, "commit", push_first)
    services.task_approve(task_id="T-1", actor="alice")
    document = read_json(awaiting, "tasks/T-1.json")
    assert (document["status"], document["v"]) == ("approved", 2)


def test_a_push_that_decides_first_makes_the_retry_refuse(awaiting, monkeypatch):
    real_commit = awaiting.commit

    def reject_first(**kwargs):
        if read_json(awaiting, "tasks/T-1.json")["status"] == "awaiting_approval":
            doc = task_doc("T-1", status="cancelled")
            real_commit(
                parent=awaiting.head(),
                writes={"tasks/T-1.json": dump_json(doc)},
                message="coordinator cancels",
                author="coordinator",
            )
        return real_commit(**kwargs)

    monkeypatch.setattr(awaiting, "commit", reject_first)
    with pytest.raises(WrongState, match="'cancelled'"):
        services.task_approve(task_id="T-1", actor="alice")


def _break(store, settings, tmp_path) -> None:
    """Make the SSOT really unreachable: a file where the repository was, or GitHub answering 502."""
    if store.backend == "github":
        store.emulator.fail_next(100, status=502)
        return
    blocker = tmp_path / "not-a-repo"
    blocker.write_text("a file, not a repository")
    settings.SSOT_LOCAL_PATH = blocker
    reset_store()


def test_ssot_unavailable_changes_nothing(awaiting, settings, tmp_path):
    _break(awaiting, settings, tmp_path)
    with pytest.raises(SsotUnavailable):
        services.task_approve(task_id="T-1", actor="alice")
    assert Task.objects.get().status == "awaiting_approval"
    assert not AuditEntry.objects.filter(action="approved").exists()


def test_a_failed_commit_leaves_the_rows_untouched(awaiting, monkeypatch):
    from ssot.stores.base import StoreUnavailable

    def refuse(**kwargs):
        raise StoreUnavailable("remote hung up")

    monkeypatch.setattr(awaiting, "commit", refuse)
    with pytest.raises(SsotUnavailable, match="remote hung up"):
        services.task_reject(task_id="T-1", actor="alice", reason="no")
    assert Task.objects.get().status == "awaiting_approval"


def test_a_crash_after_the_commit_is_repaired_by_the_next_sync(awaiting, monkeypatch):
    def crash(self, files):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(Mirror, "apply", crash)
    decision = services.task_approve(task_id="T-1", actor="alice")
    assert decision.status == "approved"
    assert Task.objects.get().status == "awaiting_approval"
    assert differences(awaiting)
    monkeypatch.undo()
    sync()
    assert Task.objects.get().status == "approved"
    assert differences(awaiting) == []


def test_message_create_writes_once_and_resends_are_idempotent(store):
    message = dispatch("T-1")
    first = services.message_create(raw=message, sender="coordinator")
    head = store.head()
    again = services.message_create(raw=dict(message), sender="coordinator")
    assert (first.created, again.created) == (True, False)
    assert store.head() == head
    assert Message.objects.get().msg_id == message["msg_id"]
    with pytest.raises(Conflict, match="other content"):
        services.message_create(
            raw={**message, "payload": {**message["payload"], "branch": "feature/x"}}, sender="coordinator"
        )


def test_message_create_lists_every_violation_and_audits_the_refusal(store):
    bad = dispatch("T-1", to="nobody", payload={"branch": "MAIN", "acceptance_criteria": []})
    with pytest.raises(Invalid) as caught:
        services.message_create(raw=bad, sender="coordinator")
    paths = {error["path"] for error in caught.value.errors}
    assert {"to", "payload.branch", "payload.acceptance_criteria"} <= paths
    assert store.head() is None
    assert AuditEntry.objects.get().action == "message_rejected"


def test_an_agent_can_only_send_as_itself(store):
    with pytest.raises(Forbidden, match="must be sent by that agent"):
        services.message_create(raw=dispatch("T-1"), sender="executor")


def test_ack_by_the_addressee_only_and_once(store):
    message = dispatch("T-1")
    services.message_create(raw=message, sender="coordinator")
    with pytest.raises(Forbidden, match="Only the addressee"):
        services.message_ack(msg_id=message["msg_id"], by="reviewer")
    assert services.message_ack(msg_id=message["msg_id"], by="executor").created
    head = store.head()
    assert not services.message_ack(msg_id=message["msg_id"], by="executor").created
    assert store.head() == head
    assert Message.objects.get().ack_state == Message.AckState.ACKED
    with pytest.raises(NotFound):
        services.message_ack(msg_id="task_result-T-1-1", by="executor")


def test_heartbeat_writes_the_heartbeat_file(store):
    services.agent_heartbeat(agent="executor")
    assert read_json(store, "heartbeats/executor.json")["agent"] == "executor"


def test_queued_audit_lines_are_flushed_in_one_commit(store, git_dir):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    for n in range(5):
        audit.audit_queue(actor="github", action="ci_result", task_id="T-1", detail=f"run {n}")
    before = _commits(git_dir)
    assert services.audit_flush() == 5
    assert _commits(git_dir) == before + 1
    assert services.audit_flush() == 0
    assert not AuditEntry.objects.filter(in_ssot=False).exists()
    sync()
    assert AuditEntry.objects.count() == 5
    assert differences(store) == []


def test_a_sync_between_the_flush_commit_and_its_claim_leaves_one_row_per_line(store, monkeypatch):
    from ssot import writing

    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    for n in range(3):
        audit.audit_queue(actor="github", action="ci_result", detail=f"run {n}")
    real_commit = writing._commit

    def commit_then_sync(*args, **kwargs):
        committed = real_commit(*args, **kwargs)
        sync()  # mirrors the three new lines as rows of their own before the flush claims its rows
        return committed

    monkeypatch.setattr(writing, "_commit", commit_then_sync)
    assert services.audit_flush() == 3
    assert AuditEntry.objects.count() == 3
    assert not AuditEntry.objects.filter(in_ssot=False).exists()
    assert differences(store) == []


def test_flush_then_decision_append_to_the_same_day_file(awaiting):
    audit.audit_queue(actor="github", action="ci_result", detail="green")
    services.audit_flush()
    services.task_approve(task_id="T-1", actor="alice")
    sync()
    lines = sorted(AuditEntry.objects.values_list("line_no", "action"))
    assert lines == [(1, "ci_result"), (2, "approved")]
    assert differences(awaiting) == []


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_writers_on_one_task_lose_no_update(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1", status="s-start")})
    sync()
    errors: list[Exception] = []

    def write(n: int) -> None:
        try:
            services.task_override(task_id="T-1", actor=f"admin{n}", reason=f"writer {n}", status=f"s-{n}")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sync()
    day = AuditEntry.objects.filter(action="override").exclude(ssot_path=None).order_by("line_no")
    chain = [json.loads(entry.raw) for entry in day]
    assert len(chain) == 20
    assert chain[0]["prev_status"] == "s-start"
    for earlier, later in itertools.pairwise(chain):
        assert later["prev_status"] == earlier["status"]
    assert {line["status"] for line in chain} == {f"s-{n}" for n in range(20)}
    assert Task.objects.get().status == chain[-1]["status"]
    assert differences(store) == []
