"""Data migrations: what they repair in a database mirrored by an earlier version."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.db import connection

from ssot.documents import dump_json
from ssot.models import Message, QuarantinedFile, SsotFile, SyncState, Task
from ssot.stores.base import git_blob_sha
from ssot.sync import sync
from ssot.verify import differences
from testing.content import commit, dispatch, task_doc

pytestmark = pytest.mark.django_db

reread = importlib.import_module("ssot.migrations.0004_reread_refused_rows")


class _Editor:
    connection = connection


def test_rows_the_strict_reader_refuses_are_forgotten_then_quarantined_by_the_next_sync(store):
    deep = task_doc("T-1", plan=json.loads("[" * 300 + "]" * 300))
    long_number = {**dispatch("T-2"), "payload": {"branch": "b", "acceptance_criteria": ["x"], "n": 10**500}}
    files = {
        "tasks/T-1.json": dump_json(deep),
        "tasks/T-3.json": dump_json(task_doc("T-3")),
        f"messages/{long_number['msg_id']}.json": dump_json(long_number),
    }
    commit(store, files)
    sync()
    # As an earlier version mirrored them: the rows exist, and the ledger says they are up to date.
    for path in ("tasks/T-1.json", f"messages/{long_number['msg_id']}.json"):
        QuarantinedFile.objects.filter(path=path).delete()
        SsotFile.objects.filter(path=path).update(quarantined=False)
    Task.objects.create(
        task_id="T-1",
        document=deep,
        ssot_path="tasks/T-1.json",
        blob_sha=git_blob_sha(files["tasks/T-1.json"]),
    )
    Message.objects.create(
        msg_id=long_number["msg_id"],
        protocol_version="AMP/1.0",
        type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id="T-2",
        timestamp="2026-11-01T09:00:00Z",
        payload=long_number["payload"],
        envelope=long_number,
        ssot_path=f"messages/{long_number['msg_id']}.json",
        blob_sha="0" * 40,
    )

    reread.forget_refused_rows(apps, _Editor())

    assert list(Task.objects.values_list("task_id", flat=True)) == ["T-3"]
    assert not Message.objects.exists()
    assert SyncState.objects.get().head == ""
    report = sync()
    assert report.mode == "full"
    assert sorted(report.quarantined) == sorted(["tasks/T-1.json", f"messages/{long_number['msg_id']}.json"])
    assert "nested 301 deep" in str(QuarantinedFile.objects.get(path="tasks/T-1.json").errors)
    assert differences(store) == []


def test_a_mirror_with_nothing_refused_is_left_alone(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    head = SyncState.objects.get().head
    reread.forget_refused_rows(apps, _Editor())
    assert Task.objects.exists() and SyncState.objects.get().head == head
