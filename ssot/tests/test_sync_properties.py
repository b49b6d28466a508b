"""Whatever bytes agents push beside a valid task, the sync goes on: each file is mirrored or quarantined
with a reason, the valid task is mirrored and can be approved, and `ssot_verify` finds no drift."""

from __future__ import annotations

import io
import itertools
import json

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from ssot import services
from ssot.documents import dump_json
from ssot.models import Ack, AuditEntry, Message, QuarantinedFile, SsotFile, Task
from ssot.sync import sync, sync_state
from testing.content import commit, dispatch, task_doc
from testing.strategies import documents, encodings, examples, json_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("deciders")]

# Every example writes under ids of its own: the SSOT and the database live as long as the test.
_examples = itertools.count()


def _task(stem: str) -> st.SearchStrategy[str]:
    return documents({"task_id": json.dumps(stem), "status": '"awaiting_approval"', "reject_count": "0"})


def _message(stem: str) -> st.SearchStrategy[str]:
    envelope = {**dispatch("T-1"), "msg_id": stem}
    return documents({key: json.dumps(value) for key, value in envelope.items()})


def _ack(stem: str) -> st.SearchStrategy[str]:
    return documents({"msg_id": json.dumps(stem), "by": '"executor"', "at": '"2026-11-01T09:00:00Z"'})


def _heartbeat(stem: str) -> st.SearchStrategy[str]:
    return documents({"agent": json.dumps(stem), "at": '"2026-11-01T09:00:00Z"'})


def _audit_line() -> st.SearchStrategy[str]:
    return documents({"timestamp": '"2026-11-01T09:00:00Z"', "actor": '"ci"', "action": '"ci_result"'})


# (path template, the strategy of its content); {n} is the example, {i} the file's place in it.
KINDS = {
    "task": ("tasks/H{n}-{i}.json", lambda stem: _task(stem)),
    "message": ("messages/h-{n}-{i}.json", lambda stem: _message(stem)),
    "ack": ("acks/a-{n}-{i}.json", lambda stem: _ack(stem)),
    "heartbeat": ("heartbeats/hb{n}x{i}.json", lambda stem: _heartbeat(stem)),
}


@st.composite
def pushed_files(draw: st.DrawFn, n: int) -> dict[str, bytes]:
    """One to five files of any kind, each of near-valid, hostile or arbitrary content."""
    files: dict[str, bytes] = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from([*KINDS, "audit"]), min_size=1, max_size=5))):
        if kind == "audit":
            path = f"audit/{3000 + n}/01/{i + 1:02d}.jsonl"
            lines = draw(st.lists(st.one_of(_audit_line(), json_values), min_size=1, max_size=4))
            files[path] = "\n".join(lines).encode("utf-8", "surrogatepass")
            continue
        template, strategy = KINDS[kind]
        path = template.format(n=n, i=i)
        stem = path.rsplit("/", 1)[1].removesuffix(".json")
        files[path] = draw(encodings(st.one_of(strategy(stem), json_values)))
    return files


def _mirrored(path: str) -> bool:
    if path.startswith("tasks/"):
        return Task.objects.filter(ssot_path=path).exists()
    if path.startswith("messages/"):
        return Message.objects.filter(ssot_path=path).exists()
    if path.startswith("acks/"):
        return Ack.objects.filter(ssot_path=path).exists()
    if path.startswith("audit/"):
        return AuditEntry.objects.filter(ssot_path=path).exists()
    return True  # a heartbeat has no row of its own: the ledger is its record


@settings(max_examples=examples(25))
@given(data=st.data())
def test_any_files_pushed_beside_a_valid_task_are_mirrored_or_quarantined(any_store, data):
    n = next(_examples)
    files = data.draw(pushed_files(n))
    valid = f"V-{n}"
    commit(
        any_store, {**files, f"tasks/{valid}.json": dump_json(task_doc(valid, status="awaiting_approval"))}
    )

    report = sync()

    assert sync_state().consecutive_errors == 0
    assert Task.objects.filter(task_id=valid).exists()
    for path in files:
        ledger = SsotFile.objects.get(path=path)
        quarantined = QuarantinedFile.objects.filter(path=path).first()
        if ledger.quarantined:
            assert quarantined is not None and path in report.quarantined
            assert quarantined.errors and all(error["message"] for error in quarantined.errors)
        else:
            assert quarantined is None and _mirrored(path), path
    services.task_approve(task_id=valid, actor="alice")
    assert Task.objects.get(task_id=valid).status == "approved"
    out = io.StringIO()
    call_command("ssot_verify", stdout=out)  # exits 1 (SystemExit) on drift
    assert "mirror equals the SSOT" in out.getvalue()
