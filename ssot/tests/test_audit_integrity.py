"""A record nobody can quietly rewrite (issue 15, SPEC sections 4-5), on both stores: audit lines a push
removes or changes are kept and marked with the commit; a task an agent pushes to approved/rejected is
flagged decision_unverified; a decision through the control plane never is."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ssot import services
from ssot.models import AuditEntry, Task
from ssot.seals import decision_seal
from ssot.stores.base import git_blob_sha
from ssot.sync import sync
from ssot.verify import differences
from testing.api import jwt_client, make_user
from testing.content import commit, task_doc
from testing.strategies import examples

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


@pytest.fixture
def store(any_store):
    return any_store


@pytest.fixture
def approved(store):
    """T-1 approved through the control plane by alice; the audit file holds its sealed decision line."""
    make_user("approver", username="alice")
    commit(store, {"tasks/T-1.json": task_doc("T-1", "awaiting_approval")})
    sync()
    services.task_approve(task_id="T-1", actor="alice", reason="fine")
    sync()
    line = AuditEntry.objects.get(action="approved")
    return line.ssot_path


def flag(task_id: str) -> tuple[bool, str, str]:
    """Whether the task's decision is flagged unverified, in which commit, by whom."""
    task = Task.objects.get(task_id=task_id)
    return task.decision_unverified, task.decision_unverified_in, task.decision_unverified_by


def audit_text(store, path: str) -> str:
    entry = store.entry(store.head(), path)
    return store.read(entry.sha).decode()


def audit_api(query: str = "") -> list[dict]:
    response = jwt_client(make_user("staff", username="watcher")).get(f"/api/audit/?action=approved{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


# -- rewritten audit lines -----------------------------------------------------------------------------


def test_a_push_deleting_the_approval_line_is_kept_and_marked_with_its_commit(store, approved):
    text = audit_text(store, approved)
    kept = "".join(line + "\n" for line in text.splitlines() if '"approved"' not in line)
    head = commit(store, {approved: kept.encode()}, author="executor", message="tidy the log")
    sync()

    assert audit_api() == []
    [line] = audit_api("&include=rewritten")
    assert (line["rewritten_in"], line["rewritten_by"], line["rewritten_how"]) == (
        head,
        "executor",
        "removed",
    )
    assert line["rewritten_path"] == approved
    assert line["actor"] == "alice"
    row = AuditEntry.objects.get(action="approved")
    assert (row.ssot_path, row.line_no) == (None, None)
    # The kept line is no drift: the mirror still equals the SSOT.
    assert differences(store) == []


def test_a_push_editing_a_line_keeps_the_old_one_beside_the_new(store, approved):
    text = audit_text(store, approved)
    forged = text.replace('"actor": "alice"', '"actor": "mallory"')
    assert forged != text
    head = commit(store, {approved: forged.encode()}, author="executor")
    sync()

    [current] = audit_api()
    assert current["actor"] == "mallory"
    old = AuditEntry.objects.get(rewritten_in=head)
    assert (old.actor, old.rewritten_how, old.rewritten_by) == ("alice", "changed", "executor")


def test_one_sync_of_several_pushes_blames_each_rewrite_on_the_commit_that_made_it(store, approved):
    """executor forges the approval line; then reviewer appends a line, and later rewrites the line it
    appended before; all synced at once. The forged line is blamed on executor's commit, not on the last
    commit that touched the file; reviewer's own rewrite on reviewer's."""
    note = json.dumps({"timestamp": "2026-11-30T10:00:00+00:00", "actor": "reviewer", "action": "note"})
    commit(store, {approved: (audit_text(store, approved) + note + "\n").encode()}, author="reviewer")
    sync()
    text = audit_text(store, approved)
    forged = commit(
        store, {approved: text.replace('"actor": "alice"', '"actor": "mallory"').encode()}, author="executor"
    )
    later = json.dumps({"timestamp": "2026-11-30T11:00:00+00:00", "actor": "reviewer", "action": "later"})
    appended = audit_text(store, approved) + later + "\n"
    commit(store, {approved: appended.encode()}, author="reviewer")
    edited = commit(store, {approved: appended.replace('"note"', '"nothing"').encode()}, author="reviewer")
    sync()

    approval = AuditEntry.objects.get(action="approved", actor="alice")
    assert (approval.rewritten_in, approval.rewritten_by, approval.rewritten_how) == (
        forged,
        "executor",
        "changed",
    )
    old_note = AuditEntry.objects.get(action="note")
    assert (old_note.rewritten_in, old_note.rewritten_by) == (edited, "reviewer")


def test_a_deleted_audit_file_keeps_every_line_marked_removed(store, approved):
    count = AuditEntry.objects.filter(ssot_path=approved).count()
    head = commit(store, deletes=(approved,), author="executor")
    sync()

    rows = AuditEntry.objects.filter(rewritten_in=head)
    assert rows.count() == count
    assert set(rows.values_list("rewritten_how", flat=True)) == {"removed"}


def test_appending_is_never_a_rewrite(store, approved):
    text = audit_text(store, approved)
    line = json.dumps({"timestamp": "2026-11-30T10:00:00+00:00", "actor": "executor", "action": "note"})
    commit(store, {approved: (text + line + "\n").encode()}, author="executor")
    sync()
    services.task_override(task_id="T-1", actor="alice", reason="again", status="in_progress")
    sync()

    assert not AuditEntry.objects.exclude(rewritten_in="").exists()
    assert not AuditEntry.objects.filter(rewritten_at__isnull=False).exists()


def test_the_audit_filter_refuses_an_unknown_include():
    response = jwt_client(make_user("staff")).get("/api/audit/?include=everything")
    assert response.status_code == 400


# -- decisions not made here ----------------------------------------------------------------------------


def test_an_agent_pushing_approved_is_flagged_decision_unverified(store):
    commit(store, {"tasks/T-2.json": task_doc("T-2", "awaiting_approval")})
    sync()
    head = commit(store, {"tasks/T-2.json": task_doc("T-2", "approved")}, author="executor")
    sync()

    assert flag("T-2") == (True, head, "executor")
    body = jwt_client(make_user("staff")).get("/api/tasks/T-2/").json()
    assert body["decision_unverified"] is True
    assert body["decision_unverified_by"] == "executor"


def test_a_forged_decision_line_does_not_vouch(store):
    commit(store, {"tasks/T-3.json": task_doc("T-3", "awaiting_approval")})
    sync()
    document = task_doc("T-3", "approved", approved_by="alice")
    data = json.dumps(document, indent=2).encode() + b"\n"
    sha = git_blob_sha(data)
    line = {
        "timestamp": "2026-11-30T10:00:00+00:00",
        "actor": "alice",
        "action": "approved",
        "task_id": "T-3",
        "status": "approved",
        "task_sha": sha,
        # Sealed with a key that is not the control plane's.
        "seal": decision_seal(
            task_id="T-3", action="approved", status="approved", task_sha=sha, secret="guess"
        ),
    }
    commit(
        store,
        {"tasks/T-3.json": data, "audit/2026/11/30.jsonl": (json.dumps(line) + "\n").encode()},
        author="executor",
    )
    sync()

    assert Task.objects.get(task_id="T-3").decision_unverified is True


def test_an_agent_pushing_rejected_is_flagged_and_the_flag_goes_when_the_task_moves_on(store):
    commit(store, {"tasks/T-4.json": task_doc("T-4", "awaiting_approval")})
    sync()
    commit(store, {"tasks/T-4.json": task_doc("T-4", "rejected")}, author="executor")
    sync()
    assert Task.objects.get(task_id="T-4").decision_unverified is True

    commit(store, {"tasks/T-4.json": task_doc("T-4", "in_progress")}, author="coordinator")
    sync()
    assert Task.objects.get(task_id="T-4").decision_unverified is False


def test_decisions_through_the_control_plane_are_never_flagged(store):
    make_user("approver", username="alice")
    make_user("operator", username="olga")
    commit(
        store,
        {
            "tasks/T-5.json": task_doc("T-5", "awaiting_approval"),
            "tasks/T-6.json": task_doc("T-6", "awaiting_approval"),
            "tasks/T-7.json": task_doc("T-7", "in_progress"),
        },
    )
    sync()
    approve = jwt_client(make_user("approver", username="bob")).post(
        "/api/tasks/T-5/approve/", {"reason": "ok"}, format="json"
    )
    assert approve.status_code == 200, approve.content
    services.task_reject(task_id="T-6", actor="alice", reason="no")
    services.task_override(task_id="T-7", actor="olga", reason="ship it", status="approved")
    sync()
    # A resync from scratch reads the same history again: still nothing flagged.
    sync(full=True)

    assert not Task.objects.filter(decision_unverified=True).exists()
    assert set(Task.objects.values_list("status", flat=True)) == {"approved", "rejected"}


def test_a_rebuilt_mirror_keeps_vouching_for_a_decided_task_edited_since(store):
    make_user("approver", username="alice")
    commit(store, {"tasks/T-8.json": task_doc("T-8", "awaiting_approval")})
    sync()
    services.task_approve(task_id="T-8", actor="alice")
    document = json.loads(store.read(store.entry(store.head(), "tasks/T-8.json").sha))
    commit(store, {"tasks/T-8.json": {**document, "note": "merged"}}, author="coordinator")
    sync()
    rebuild_from_nothing()

    assert Task.objects.get(task_id="T-8").decision_unverified is False


def rebuild_from_nothing() -> None:
    from ssot.models import SsotFile

    Task.objects.all().delete()
    AuditEntry.objects.all().delete()
    SsotFile.objects.all().delete()
    sync(full=True)


def test_a_rebuilt_mirror_does_not_let_an_old_seal_vouch_for_a_later_forged_decision(store, approved):
    """T-1 was approved here (its sealed line names that version). An agent then moves it back to
    awaiting_approval and pushes it to approved again on its own: flagged live, and still flagged by a
    mirror rebuilt from nothing, since a version with another status lies between the seal and now."""
    document = json.loads(store.read(store.entry(store.head(), "tasks/T-1.json").sha))
    commit(store, {"tasks/T-1.json": {**document, "status": "awaiting_approval"}}, author="executor")
    forged = commit(store, {"tasks/T-1.json": {**document, "note": "again"}}, author="executor")
    sync()
    assert Task.objects.get(task_id="T-1").decision_unverified is True

    rebuild_from_nothing()

    assert flag("T-1") == (True, forged, "executor")


def test_a_rebuilt_mirror_vouches_through_edits_that_keep_the_decided_status(store, approved):
    document = json.loads(store.read(store.entry(store.head(), "tasks/T-1.json").sha))
    for n in range(3):
        commit(store, {"tasks/T-1.json": {**document, "note": f"edit {n}"}}, author="coordinator")
    sync()

    rebuild_from_nothing()

    assert Task.objects.get(task_id="T-1").decision_unverified is False


def test_a_rebuilt_mirror_does_not_flag_a_decided_task_edited_past_the_history_it_reads(store, approved):
    """More same-status edits since the decision than HISTORY_LIMIT: the history cannot reach the sealed
    version, so the rule for what the history cannot tell holds (a seal of this task and status vouches)."""
    from ssot.stores.base import HISTORY_LIMIT

    document = json.loads(store.read(store.entry(store.head(), "tasks/T-1.json").sha))
    for n in range(HISTORY_LIMIT + 1):
        commit(store, {"tasks/T-1.json": {**document, "note": f"edit {n}"}}, author="coordinator")

    rebuild_from_nothing()

    assert Task.objects.get(task_id="T-1").decision_unverified is False


def test_a_push_landing_after_the_syncs_head_does_not_change_its_verdict(store, approved):
    """A sync mirrors up to the head it read; the history it traces starts there, not at a branch that
    moved on meanwhile (here: the task, approved and then edited, is moved to in_progress by a later
    push that this pass does not mirror)."""
    from ssot.mirror import FileUpdate, Mirror

    document = json.loads(store.read(store.entry(store.head(), "tasks/T-1.json").sha))
    edited = commit(store, {"tasks/T-1.json": {**document, "note": "pr 12"}}, author="executor")
    entry = store.entry(edited, "tasks/T-1.json")
    update = FileUpdate("tasks/T-1.json", "task", entry.sha, store.read(entry.sha))
    commit(store, {"tasks/T-1.json": {**document, "status": "in_progress"}}, author="executor")
    mirror = Mirror(live=True, commit=edited, store=store, by_history=True)

    mirror.apply([update])
    mirror.finish()

    assert flag("T-1") == (False, "", "")


def test_a_decision_whose_history_cannot_be_read_is_flagged_not_waved_through(github_ssot, caplog):
    """Rebuilding from nothing, GitHub fails the task's history request: the decision no seal names is
    judged without it (flagged, on the commit that last changed the file), and the failure is logged."""
    from ssot.mirror import FileUpdate, Mirror

    forged = commit(github_ssot, {"tasks/T-2.json": task_doc("T-2", "approved")}, author="executor")
    entry = github_ssot.entry(forged, "tasks/T-2.json")
    mirror = Mirror(live=False, commit=forged, store=github_ssot, by_history=True)
    mirror.apply([FileUpdate("tasks/T-2.json", "task", entry.sha, github_ssot.read(entry.sha))])
    github_ssot.emulator.fail_next(1)

    mirror.finish()

    assert flag("T-2") == (True, forged, "executor")
    assert "the history of tasks/T-2.json is unknown, its decision judged without it" in caplog.text


def test_a_rewrite_whose_history_cannot_be_read_is_blamed_on_the_files_last_change(github_ssot, caplog):
    from ssot.mirror import FileUpdate, Mirror

    make_user("approver", username="alice")
    commit(github_ssot, {"tasks/T-3.json": task_doc("T-3", "awaiting_approval")})
    sync()
    services.task_approve(task_id="T-3", actor="alice")
    sync()
    path = AuditEntry.objects.get(action="approved").ssot_path
    last = commit(github_ssot, {path: b""}, author="executor")
    entry = github_ssot.entry(last, path)
    update = FileUpdate(path, "audit", entry.sha, github_ssot.read(entry.sha))
    mirror = Mirror(live=True, commit=last, store=github_ssot, by_history=True)
    github_ssot.emulator.fail_next(1)  # the next request: the file's history

    mirror.apply([update])

    line = AuditEntry.objects.get(action="approved")
    assert (line.rewritten_in, line.rewritten_by, line.rewritten_how) == (last, "executor", "removed")
    assert f"the history of {path} is unknown, its rewrites blamed on its last change" in caplog.text


def test_the_admin_shows_rewritten_lines_and_unverified_decisions(store, approved, client):
    text = audit_text(store, approved)
    kept = "".join(line + "\n" for line in text.splitlines() if '"action": "approved"' not in line)
    head = commit(store, {approved: kept.encode()}, author="executor")
    commit(store, {"tasks/T-9.json": task_doc("T-9", "awaiting_approval")})
    sync()
    commit(store, {"tasks/T-9.json": task_doc("T-9", "approved")}, author="executor")
    sync()
    client.force_login(make_user("staff", username="root", is_superuser=True))

    audit_page = client.get("/admin/ssot/auditentry/").content.decode()
    task_page = client.get("/admin/ssot/task/?decision_unverified__exact=1").content.decode()

    assert f"removed in {head[:10]} by executor" in audit_page
    assert "T-9" in task_page and "T-1" not in task_page


# -- whatever an agent does to an audit file -----------------------------------------------------------

_files = itertools.count()


def _line(actor: str) -> str:
    return json.dumps({"timestamp": "2026-11-01T09:00:00+00:00", "actor": actor, "action": "note"})


@hypothesis_settings(max_examples=examples(15))
@given(data=st.data())
def test_any_edit_of_an_audit_file_marks_exactly_the_lines_it_removed_or_changed(any_store, data):
    n = next(_files)
    path = f"audit/2026/{1 + n // 28:02d}/{1 + n % 28:02d}.jsonl"
    old = [_line(f"agent{n}-{i}") for i in range(data.draw(st.integers(1, 6), label="lines"))]
    commit(any_store, {path: "".join(line + "\n" for line in old).encode()})
    sync()
    fates = data.draw(
        st.lists(st.sampled_from(["keep", "remove", "change"]), min_size=len(old), max_size=len(old))
    )
    new = [
        line if fate == "keep" else line.replace('"note"', '"forged"')
        for line, fate in zip(old, fates, strict=True)
        if fate != "remove"
    ]
    new += [_line(f"late{n}-{i}") for i in range(data.draw(st.integers(0, 2), label="appended"))]
    head = commit(any_store, {path: "".join(line + "\n" for line in new).encode()}, author="executor")
    sync()

    expected = {number for number, line in enumerate(old, 1) if number > len(new) or new[number - 1] != line}
    marked = AuditEntry.objects.filter(rewritten_path=path)
    assert set(marked.values_list("rewritten_line", flat=True)) == expected
    assert set(marked.values_list("rewritten_in", "rewritten_by")) <= {(head, "executor")}
    live = AuditEntry.objects.filter(ssot_path=path).order_by("line_no")
    assert list(live.values_list("raw", flat=True)) == new


@hypothesis_settings(max_examples=examples(15))
@given(data=st.data())
def test_pushes_synced_at_once_blame_each_rewritten_line_on_the_commit_that_rewrote_it(any_store, data):
    """Several agents each push an edit of the same audit file (keep, remove or change each line, append
    some) and one sync reads them all: every line no longer as mirrored is marked with the commit after
    the newest version that still held it, and that commit's author."""
    n = next(_files)
    path = f"audit/2027/{1 + n // 28:02d}/{1 + n % 28:02d}.jsonl"
    old = [_line(f"agent{n}-{i}") for i in range(data.draw(st.integers(1, 5), label="lines"))]
    commit(any_store, {path: "".join(line + "\n" for line in old).encode()})
    sync()
    versions: list[tuple[str, str, list[str]]] = [("", "", old)]  # (commit, author, lines), oldest first
    for push in range(data.draw(st.integers(1, 4), label="pushes")):
        current = versions[-1][2]
        fates = data.draw(
            st.lists(
                st.sampled_from(["keep", "remove", "change"]), min_size=len(current), max_size=len(current)
            ),
            label=f"fates {push}",
        )
        lines = [
            line if fate == "keep" else line.replace('"note"', f'"forged {push}"')
            for line, fate in zip(current, fates, strict=True)
            if fate != "remove"
        ]
        lines += [_line(f"late{n}-{push}-{i}") for i in range(data.draw(st.integers(0, 2), label="appended"))]
        author = f"agent-{push}"
        head = commit(any_store, {path: "".join(line + "\n" for line in lines).encode()}, author=author)
        versions.append((head, author, lines))
    sync()

    def held(lines: list[str], number: int) -> bool:
        return number <= len(lines) and lines[number - 1] == old[number - 1]

    expected = {}
    for number in range(1, len(old) + 1):
        if held(versions[-1][2], number):
            continue
        newest_holding = max(i for i, (_, _, lines) in enumerate(versions) if held(lines, number))
        commit_, author, _ = versions[newest_holding + 1]
        expected[number] = (commit_, author)
    marked = AuditEntry.objects.filter(rewritten_path=path)
    assert {row.rewritten_line: (row.rewritten_in, row.rewritten_by) for row in marked} == expected


_tasks = itertools.count()
STATUSES = ("awaiting_approval", "approved", "rejected", "in_progress")


@hypothesis_settings(max_examples=examples(15))
@given(data=st.data())
def test_any_sequence_of_pushes_and_decisions_is_flagged_as_its_history_says(any_store, data):
    """An agent creates the task in any status; agents push it to any status, the control plane decides
    (its commit carries the sealed line), syncs fall anywhere between. At the end the task is flagged
    exactly when it is approved or rejected and no version of its newest run in that status is one a
    seal names; the flag names the commit that began the run. A mirror rebuilt from nothing agrees."""
    from ssot.documents import dump_json

    n = next(_tasks)
    task_id, path = f"P-{n}", f"tasks/P-{n}.json"
    audit = f"audit/2028/{1 + n // 28:02d}/{1 + n % 28:02d}.jsonl"
    first = data.draw(st.sampled_from(STATUSES), label="created as")
    created = commit(any_store, {path: task_doc(task_id, first)}, author="creator")
    sync()
    # (commit, author, status, sealed), oldest first
    history: list[tuple[str, str, str, bool]] = [(created, "creator", first, False)]
    sealed_lines: list[str] = []
    for step in range(data.draw(st.integers(1, 6), label="steps")):
        decide = data.draw(st.booleans(), label=f"decision {step}")
        status = data.draw(st.sampled_from(("approved", "rejected") if decide else STATUSES))
        body = dump_json(task_doc(task_id, status, description=f"step {step}"))
        writes = {path: body}
        author = "admin" if decide else f"agent-{step % 2}"
        if decide:
            sha = git_blob_sha(body)
            action = status
            sealed_lines.append(
                json.dumps(
                    {
                        "timestamp": "2026-11-30T10:00:00+00:00",
                        "actor": "alice",
                        "action": action,
                        "task_id": task_id,
                        "status": status,
                        "task_sha": sha,
                        "seal": decision_seal(task_id=task_id, action=action, status=status, task_sha=sha),
                    }
                )
            )
            writes[audit] = "".join(line + "\n" for line in sealed_lines).encode()
        history.append((commit(any_store, writes, author=author), author, status, decide))
        if data.draw(st.booleans(), label=f"sync after {step}"):
            sync()
    sync()

    final = history[-1][2]
    expected = (False, "", "")
    if final in ("approved", "rejected"):
        run = []
        for version in reversed(history):
            if version[2] != final:
                break
            run.append(version)
        if not any(version[3] for version in run):
            expected = (True, run[-1][0], run[-1][1])
    assert flag(task_id) == expected
    rebuild_from_nothing()
    assert flag(task_id) == expected
