"""Any file an agent pushes is mirrored or quarantined alone, with its reason; no content stops a sync."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from ssot import services
from ssot.models import Message, QuarantinedFile, SsotFile, Task
from ssot.sync import sync, sync_state
from ssot.verify import differences
from testing.content import commit, commit_gitlink, dispatch, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("deciders")]

TASK = b'{"task_id": "T-1", "status": "awaiting_approval", %s}'
MESSAGE = dispatch("T-1", n=1)
MSG_PATH = f"messages/{MESSAGE['msg_id']}.json"
DEEP_950 = "[" * 950 + "]" * 950


def _message_with(field: str, value: str) -> bytes:
    """The valid message with one member's JSON text replaced by `value`."""
    return json.dumps({**MESSAGE, field: "@@"}).replace('"@@"', value).encode()


# Each fault found by trying the sync as an agent would: (path, content, the reason quarantine shows).
HOSTILE = {
    "nan": ("tasks/T-1.json", TASK % b'"estimate": NaN', "NaN is not a JSON number"),
    "infinity": ("tasks/T-1.json", TASK % b'"estimate": Infinity', "Infinity is not a JSON number"),
    "minus_infinity": ("tasks/T-1.json", TASK % b'"estimate": -Infinity', "-Infinity is not a JSON number"),
    "float_overflow": ("tasks/T-1.json", TASK % b'"estimate": 1e400', "too large for a 64-bit float"),
    "reject_count_past_64_bits": (
        "tasks/T-1.json",
        TASK % b'"reject_count": 18446744073709551616',
        "must be an integer from 0 to 9223372036854775807",
    ),
    "escaped_lone_surrogate": ("tasks/T-1.json", TASK % b'"note": "\\ud800"', "lone surrogate"),
    "escaped_lone_low_surrogate_in_a_key": ("tasks/T-1.json", TASK % b'"\\udc00": 1', "lone surrogate"),
    "encoded_surrogate": ("tasks/T-1.json", TASK % b'"note": "\xed\xa0\x80"', "surrogate"),
    "deep_nesting": ("tasks/T-1.json", TASK % (b'"deep": ' + b"[" * 5000 + b"]" * 5000), "nested 5001 deep"),
    "long_integer": ("tasks/T-1.json", TASK % (b'"big": ' + b"7" * 5000), "a number of 5000 digits"),
    "long_float": ("tasks/T-1.json", TASK % (b'"big": 1.' + b"5" * 400), "a number of 401 digits"),
    "duplicate_key": ("tasks/T-1.json", TASK % b'"status": "done"', "duplicate key 'status'"),
    "trailing_data": ("tasks/T-1.json", TASK % b'"a": 1' + b" {}", "data after the JSON value"),
    "empty": ("tasks/T-1.json", b"", "empty"),
    "bom": ("tasks/T-1.json", b"\xef\xbb\xbf" + TASK % b'"a": 1', "byte order mark"),
    "utf16": ("tasks/T-1.json", (TASK % b'"a": 1').decode().encode("utf-16"), "UTF-16"),
    "invalid_utf8": ("tasks/T-1.json", TASK % b'"note": "\xff"', "not UTF-8"),
    "not_an_object": ("tasks/T-1.json", b"[1, 2]", "must be a JSON object, not an array"),
    "ack_timeout_past_64_bits": (
        MSG_PATH,
        _message_with("ack_timeout_sec", "18446744073709551616"),
        "must be <= 9223372036854775807",
    ),
    "message_deep_payload": (
        MSG_PATH,
        _message_with("payload", f'{{"branch": "x", "acceptance_criteria": ["a"], "d": {DEEP_950}}}'),
        "nested 952 deep",
    ),
    "timestamp_past_the_calendar_in_utc": (
        MSG_PATH,
        _message_with("timestamp", '"9999-12-31T23:00:00-05:00"'),
        "out of range",
    ),
    "ack_before_the_calendar_in_utc": (
        "acks/a-b-1.json",
        b'{"msg_id": "a-b-1", "by": "executor", "at": "0001-01-01T00:00:00+01:00"}',
        "out of range",
    ),
    "ack_nan": ("acks/a-b-1.json", b'{"msg_id": "a-b-1", "by": "executor", "at": NaN}', "NaN"),
    "heartbeat_surrogate": (
        "heartbeats/executor.json",
        b'{"agent": "executor", "at": "\\udfff"}',
        "lone surrogate",
    ),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_file_is_quarantined_alone_and_the_sync_goes_on(any_store, kind):
    path, content, reason = HOSTILE[kind]
    commit(any_store, {path: content, "tasks/T-9.json": task_doc("T-9", status="awaiting_approval")})
    report = sync()
    assert report.quarantined == [path]
    quarantined = QuarantinedFile.objects.get()
    assert bytes(quarantined.raw) == content
    assert reason in str(quarantined.errors), quarantined.errors
    assert Task.objects.filter(task_id="T-9").exists()
    assert sync_state().consecutive_errors == 0
    # The next change beside it is mirrored too: nothing is stuck behind the bad file.
    commit(any_store, {"tasks/T-10.json": task_doc("T-10")})
    assert sync().quarantined == []
    assert Task.objects.filter(task_id="T-10").exists()
    services.task_approve(task_id="T-9", actor="alice")
    assert Task.objects.get(task_id="T-9").status == "approved"
    assert differences(any_store) == []


def test_an_audit_line_with_a_hostile_value_costs_only_that_line(any_store):
    good = b'{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "ci", "action": "ci_result"}'
    content = b"\n".join(
        [
            good,
            b'{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "ci", "action": "x", "n": NaN}',
            b'{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "\\ud800", "action": "x"}',
            b'{"timestamp": "2026-11-01T10:00:00+00:00", "actor": "ci", "action": "x", "d": '
            + b"[" * 3000
            + b"]" * 3000
            + b"}",
            good,
        ]
    )
    commit(any_store, {"audit/log.jsonl": content, "tasks/T-9.json": task_doc("T-9")})
    sync()
    errors = str(QuarantinedFile.objects.get(path="audit/log.jsonl").errors)
    assert "line 2" in errors and "NaN" in errors
    assert "line 3" in errors and "lone surrogate" in errors
    assert "line 4" in errors and "nested" in errors
    assert Task.objects.filter(task_id="T-9").exists()
    assert differences(any_store) == []


def test_a_submodule_under_tasks_is_quarantined_not_fatal(any_store, git_dir):
    commit(any_store, {"tasks/T-9.json": task_doc("T-9")})
    sync()
    commit_gitlink(git_dir, "tasks/T-1.json", "1" * 40)
    commit(any_store, {"tasks/T-10.json": task_doc("T-10")})
    report = sync()
    assert report.quarantined == ["tasks/T-1.json"]
    quarantined = QuarantinedFile.objects.get()
    assert "submodule" in str(quarantined.errors)
    assert set(Task.objects.values_list("task_id", flat=True)) == {"T-9", "T-10"}
    assert SsotFile.objects.get(path="tasks/T-1.json").quarantined
    assert sync(full=True).files_read == 0
    assert differences(any_store) == []
    call_command("ssot_verify")


def test_a_submodule_found_by_a_full_resync_is_quarantined(any_store, git_dir):
    commit(any_store, {"tasks/T-9.json": task_doc("T-9")})
    commit_gitlink(git_dir, "messages/a-b-1.json", "2" * 40)
    report = sync(full=True)
    assert report.quarantined == ["messages/a-b-1.json"]
    assert Task.objects.filter(task_id="T-9").exists()
    assert differences(any_store) == []


def test_a_message_whose_deadline_overflows_the_calendar_is_mirrored_with_the_last_deadline(any_store):
    message = dispatch("T-1", timestamp="9999-12-31T23:00:00Z", ack_timeout_sec=10**12)
    commit(any_store, {f"messages/{message['msg_id']}.json": message})
    assert sync().quarantined == []
    assert Message.objects.get().ack_deadline.year == 9999
    assert differences(any_store) == []


def test_a_row_the_database_refuses_costs_only_its_file(any_store):
    from testing.dbfaults import rows_refused

    files = {f"tasks/T-{n}.json": task_doc(f"T-{n}") for n in range(1, 6)}
    commit(any_store, files)
    with rows_refused("ssot_task", "task_id", "T-3"):
        report = sync()
    assert report.quarantined == ["tasks/T-3.json"]
    assert "refused by a test trigger" in str(QuarantinedFile.objects.get().errors)
    assert set(Task.objects.values_list("task_id", flat=True)) == {"T-1", "T-2", "T-4", "T-5"}
    assert sync_state().consecutive_errors == 0
    assert differences(any_store) == []
    # Once the database takes it, a full resync reads the quarantined file again and mirrors it.
    report = sync(full=True)
    assert report.quarantined == []
    assert Task.objects.filter(task_id="T-3").exists()
    assert not QuarantinedFile.objects.exists()
    assert differences(any_store) == []


def test_a_refused_row_on_the_write_path_is_quarantined_and_the_commit_stands(store):
    from testing.dbfaults import rows_refused

    commit(store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval")})
    sync()
    with rows_refused("ssot_task", "status", "approved"):
        decision = services.task_approve(task_id="T-1", actor="alice")
    assert decision.status == "approved"
    assert QuarantinedFile.objects.get().path == "tasks/T-1.json"
    sync(full=True)
    assert Task.objects.get(task_id="T-1").status == "approved"
    assert differences(store) == []


def test_deciding_on_a_task_whose_file_is_a_submodule_is_a_404_not_an_outage(any_store, git_dir):
    from core.errors import NotFound

    commit(any_store, {"tasks/T-9.json": task_doc("T-9")})
    commit_gitlink(git_dir, "tasks/T-1.json", "1" * 40)
    sync()
    with pytest.raises(NotFound):
        services.task_approve(task_id="T-1", actor="alice")
