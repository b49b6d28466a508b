"""The sync mirrors the SSOT faithfully and cheaply: adds, changes, deletes, quarantine, idempotence."""

from __future__ import annotations

import json

import pytest

from ssot.models import (
    Ack,
    Agent,
    AuditEntry,
    Escalation,
    Message,
    QuarantinedFile,
    SsotFile,
    SyncState,
    Task,
)
from ssot.stores.base import StoreUnavailable, git_blob_sha
from ssot.sync import mirrored_head, sync, sync_state
from ssot.verify import differences
from testing.content import commit, dispatch, result, task_doc

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(any_store):
    """Every test here runs on the local store and on GitHub (through the emulator)."""
    return any_store


def test_sync_mirrors_adds_changes_and_deletes(store):
    first = dispatch("T-1")
    commit(
        store,
        {
            "tasks/T-1.json": task_doc("T-1"),
            "tasks/T-2.json": task_doc("T-2"),
            f"messages/{first['msg_id']}.json": first,
            "README.md": b"not mirrored",
        },
    )
    report = sync()
    assert report.mode == "full"
    assert set(Task.objects.values_list("task_id", flat=True)) == {"T-1", "T-2"}
    assert Message.objects.get().ack_state == Message.AckState.PENDING

    commit(
        store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval")}, deletes=("tasks/T-2.json",)
    )
    report = sync()
    assert report.mode == "incremental"
    assert (report.files_read, report.files_deleted) == (1, 1)
    assert list(Task.objects.values_list("task_id", "status")) == [("T-1", "awaiting_approval")]
    assert not SsotFile.objects.filter(path="tasks/T-2.json").exists()
    assert differences(store) == []


def test_a_second_sync_of_the_same_head_reads_and_writes_nothing(store, django_assert_max_num_queries):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    with django_assert_max_num_queries(4):
        report = sync()
    assert (report.mode, report.files_read, report.rows_written) == ("noop", 0, 0)
    full = sync(full=True)
    assert (full.files_read, full.rows_written) == (0, 0)


def test_blob_sha_unchanged_file_is_not_read_again(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1"), "tasks/T-2.json": task_doc("T-2")})
    sync()
    commit(store, {"tasks/T-2.json": task_doc("T-2", status="done"), "tasks/T-1.json": task_doc("T-1")})
    assert sync().files_read == 1


def test_unknown_fields_are_kept_in_the_document(store):
    doc = task_doc("T-1", extra={"nested": [1, 2.5, None, "ü"]}, big=2**70)
    commit(store, {"tasks/T-1.json": doc})
    sync()
    assert Task.objects.get().document == doc


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("tasks/T-1.json", b"{not json", "not valid JSON"),
        ("tasks/T-1.json", b"[1, 2]", "must be a JSON object"),
        ("tasks/T-1.json", b'{"task_id": "T-2", "status": "x"}', "must equal the file name"),
        ("tasks/T-1.json", b'{"task_id": "T-1"}', "status"),
        ("tasks/T-1.json", b'{"task_id": "T-1", "status": "x", "risk_level": "extreme"}', "risk_level"),
        ("tasks/T-1.json", b'{"task_id": "T-1", "status": "x", "risk_level": ["high"]}', "risk_level"),
        ("tasks/bad id.json", b'{"task_id": "bad id", "status": "x"}', "unsafe id"),
        ("messages/a-b-c.json", b'{"msg_id": "a-b-c"}', "protocol_version"),
        ("acks/a-b-c.json", b'{"msg_id": "a-b-c", "by": "nobody", "at": "2026-01-01T00:00:00"}', "by"),
        ("heartbeats/executor.json", b'{"agent": "executor", "at": "yesterday"}', "at"),
    ],
)
def test_invalid_files_are_quarantined_with_their_errors(store, path, content, message):
    commit(store, {path: content, "tasks/T-9.json": task_doc("T-9")})
    report = sync()
    quarantined = QuarantinedFile.objects.get()
    assert (quarantined.path, bytes(quarantined.raw)) == (path, content)
    assert message in str(quarantined.errors)
    assert report.quarantined == [path]
    assert Task.objects.filter(task_id="T-9").exists()
    queued = AuditEntry.objects.get(action="quarantined", in_ssot=False)
    assert path in queued.detail
    assert differences(store) == []


def test_invalid_amp_message_lists_every_violation(store):
    bad = dispatch("T-1", payload={"branch": "main", "acceptance_criteria": []})
    commit(store, {f"messages/{bad['msg_id']}.json": bad})
    sync()
    paths = {error["path"] for error in QuarantinedFile.objects.get().errors}
    assert {"payload.branch", "payload.acceptance_criteria"} <= paths
    assert not Message.objects.exists()


def test_a_quarantined_file_that_is_fixed_leaves_quarantine(store):
    commit(store, {"tasks/T-1.json": b"{oops"})
    sync()
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    assert not QuarantinedFile.objects.exists()
    assert Task.objects.get().status == "in_progress"


def test_a_valid_task_that_turns_invalid_is_quarantined_and_its_row_goes(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    commit(store, {"tasks/T-1.json": b"{oops"})
    sync()
    assert not Task.objects.exists()
    assert QuarantinedFile.objects.get().path == "tasks/T-1.json"
    assert differences(store) == []


def test_a_folder_of_more_than_1000_files_is_mirrored_whole(store):
    commit(store, {f"tasks/T-{n:04d}.json": task_doc(f"T-{n:04d}") for n in range(1200)})
    assert sync().files_read == 1200
    assert Task.objects.count() == 1200
    assert differences(store, deep=False) == []


def test_ack_file_by_the_addressee_acknowledges(store):
    message = dispatch("T-1")
    commit(store, {f"messages/{message['msg_id']}.json": message})
    sync()
    ack = {"msg_id": message["msg_id"], "by": "executor", "at": "2026-11-01T09:01:00+00:00"}
    commit(store, {f"acks/{message['msg_id']}.json": ack}, author="executor")
    sync()
    row = Message.objects.get()
    assert row.ack_state == Message.AckState.ACKED
    assert Ack.objects.get().via == Ack.Via.FILE


def test_ack_written_before_its_message_still_counts(store):
    message = dispatch("T-1")
    ack = {"msg_id": message["msg_id"], "by": "executor", "at": "2026-11-01T09:01:00+00:00"}
    commit(store, {f"acks/{message['msg_id']}.json": ack})
    sync()
    commit(store, {f"messages/{message['msg_id']}.json": message})
    sync()
    assert Message.objects.get().ack_state == Message.AckState.ACKED


def test_ack_by_someone_else_does_not_count(store):
    message = dispatch("T-1")
    ack = {"msg_id": message["msg_id"], "by": "reviewer", "at": "2026-11-01T09:01:00+00:00"}
    commit(store, {f"messages/{message['msg_id']}.json": message, f"acks/{message['msg_id']}.json": ack})
    sync()
    assert Message.objects.get().ack_state == Message.AckState.PENDING


def test_later_message_from_the_addressee_naming_it_acknowledges(store):
    message = dispatch("T-1")
    reply = result("T-1", refs=(message["msg_id"],))
    commit(store, {f"messages/{reply['msg_id']}.json": reply, f"messages/{message['msg_id']}.json": message})
    sync()
    assert Message.objects.get(msg_id=message["msg_id"]).ack_state == Message.AckState.ACKED
    assert Ack.objects.get().via == Ack.Via.CONTEXT_REF


def test_an_escalation_naming_a_message_does_not_acknowledge_it(store):
    import amp

    message = dispatch("T-1", to="system")
    escalation = amp.build_escalation(
        task_id="T-1",
        escalation_type="ack_timeout",
        severity="warning",
        triggered_by="system",
        description="late",
        affected_msgs=[message["msg_id"]],
        msg_id="escalation-ack-T-1-1",
    )
    commit(
        store,
        {f"messages/{message['msg_id']}.json": message, "messages/escalation-ack-T-1-1.json": escalation},
    )
    sync()
    assert Message.objects.get(msg_id=message["msg_id"]).ack_state == Message.AckState.PENDING


def test_agents_liveness_is_recorded_from_what_they_wrote(store, settings):
    message = dispatch("T-1")
    commit(
        store,
        {
            f"messages/{message['msg_id']}.json": message,
            "heartbeats/reviewer.json": {"agent": "reviewer", "at": "2026-11-01T10:00:00+00:00"},
        },
    )
    sync()
    seen = dict(Agent.objects.values_list("name", "last_seen_via"))
    assert seen == {"coordinator": "message", "reviewer": "heartbeat"}
    commit(store, {"tasks/T-1.json": task_doc("T-1", last_writer="executor")})
    sync()
    assert Agent.objects.get(name="executor").last_seen_via == "task"


def test_escalation_state_is_derived_from_audit_lines(store):
    import amp

    envelope = amp.build_escalation(
        task_id="T-1",
        escalation_type="blocked",
        severity="warning",
        triggered_by="executor",
        description="cannot build",
        msg_id="escalation-T-1-1",
    )
    line = (
        '{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "alice", "action": "escalation_resolved", '
        '"msg_id": "escalation-T-1-1", "detail": "fixed the runner"}\n'
    )
    commit(store, {"messages/escalation-T-1-1.json": envelope})
    sync()
    assert Escalation.objects.get().status == Escalation.Status.OPEN
    commit(store, {"audit/2026/11/01.jsonl": line.encode()})
    sync()
    escalation = Escalation.objects.get()
    assert (escalation.status, escalation.resolved_by, escalation.resolution) == (
        "resolved",
        "alice",
        "fixed the runner",
    )


def test_audit_files_are_mirrored_line_by_line_and_bad_lines_reported(store):
    content = (
        b'{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "ci", "action": "ci_result"}\n'
        b"garbage\n"
        b'{"timestamp": "2026-11-01T10:01:00+00:00", "actor": "ci", "action": "ci_result"}\n'
    )
    commit(store, {"audit/log.jsonl": content})
    sync()
    mirrored = AuditEntry.objects.filter(ssot_path="audit/log.jsonl").order_by("line_no")
    assert list(mirrored.values_list("line_no", flat=True)) == [1, 3]
    assert "line 2" in str(QuarantinedFile.objects.get(path="audit/log.jsonl").errors)
    assert differences(store) == []


def test_an_unreachable_ssot_is_reported_and_recorded(store, monkeypatch):
    from core.errors import SsotUnavailable
    from ssot.sync import sync_state

    def down():
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(store, "head", down)
    with pytest.raises(SsotUnavailable, match="disk gone"):
        sync()
    state = sync_state()
    assert (state.consecutive_errors, state.last_error) == (1, "SSOT unavailable: disk gone")


def test_a_message_id_found_at_two_paths_is_quarantined_in_both_places(store):
    """SPEC section 4: message and ack files may sit in dated sub-folders; the file name is what counts,
    and an id found twice is quarantined in both places (here: first mirrored flat, then pushed dated)."""
    message = dispatch("T-1", n=1)
    flat = f"messages/{message['msg_id']}.json"
    dated = f"messages/2026/11/01/{message['msg_id']}.json"
    commit(store, {flat: message})
    sync()
    assert Message.objects.filter(msg_id=message["msg_id"]).exists()

    commit(store, {dated: message})
    report = sync()

    assert sorted(report.quarantined) == sorted([flat, dated])
    assert not Message.objects.filter(msg_id=message["msg_id"]).exists()
    reasons = dict(QuarantinedFile.objects.values_list("path", "errors"))
    assert f"also at {dated}" in reasons[flat][0]["message"]
    assert f"also at {flat}" in reasons[dated][0]["message"]
    # Both in one pass (a full resync reads quarantined files again): still both quarantined.
    sync(full=True)
    assert set(QuarantinedFile.objects.values_list("path", flat=True)) == {flat, dated}
    # One of them removed: the other is mirrored again by the next full resync.
    commit(store, deletes=(flat,))
    sync()
    sync(full=True)
    assert Message.objects.get(msg_id=message["msg_id"]).ssot_path == dated
    assert differences(store) == []


def test_a_duplicate_ids_earlier_file_is_quarantined_verbatim(store):
    """The file mirrored before is kept as it is in the SSOT (its bytes match its blob SHA), not as the
    control plane would have written it."""
    message = dispatch("T-1", n=2)
    flat = f"messages/{message['msg_id']}.json"
    compact = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    commit(store, {flat: compact})
    sync()
    commit(store, {f"messages/2026/11/02/{message['msg_id']}.json": message})
    sync()

    kept = QuarantinedFile.objects.get(path=flat)
    assert (bytes(kept.raw), kept.blob_sha) == (compact, git_blob_sha(compact))


@pytest.mark.django_db
def test_a_duplicate_ids_earlier_file_the_ssot_cannot_serve_is_kept_as_its_row_holds_it(github_ssot, caplog):
    from ssot.mirror import FileUpdate, Mirror, _rebuilt
    from testing.github_fixture import github_store

    message = dispatch("T-1", n=3)
    flat = f"messages/{message['msg_id']}.json"
    commit(github_ssot, {flat: json.dumps(message).encode()})
    sync()
    dated = f"messages/2026/11/03/{message['msg_id']}.json"
    head = commit(github_ssot, {dated: message})
    entry = github_ssot.entry(head, dated)
    update = FileUpdate(dated, "message", entry.sha, github_ssot.read(entry.sha))
    row = Message.objects.get(msg_id=message["msg_id"])
    cold = github_store(github_ssot.emulator)  # nothing cached: reading the flat file's blob is a request
    github_ssot.emulator.fail_next(1)

    Mirror(live=True, commit=head, store=cold, by_history=True).apply([update])

    assert bytes(QuarantinedFile.objects.get(path=flat).raw) == _rebuilt(row)
    assert f"blob {row.blob_sha} of {flat} is unreadable, kept as rebuilt from its row" in caplog.text


@pytest.mark.django_db
def test_the_mirrored_head_is_the_sync_states_and_its_row_exists_once_asked(store):
    assert not SyncState.objects.exists()
    assert mirrored_head() == ""  # never synced
    assert SyncState.objects.count() == 1  # created, as sync_state() does

    head = commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()

    assert mirrored_head() == head == sync_state().head
