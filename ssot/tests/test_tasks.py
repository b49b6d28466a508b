"""The SSOT mirror's django-q2 entry points: the safety-net poll and the audit flush."""

from __future__ import annotations

import pytest

from ssot import tasks
from ssot.audit import audit_queue
from ssot.models import AuditEntry, SyncState
from ssot.stores.factory import reset_store
from testing.monitor import T0, heartbeat

pytestmark = pytest.mark.django_db


def test_the_poll_task_syncs_and_reports_a_failure_without_raising(store, ssot_path):
    heartbeat(store, "executor", T0)

    assert tasks.ssot_poll()["mode"] == "noop"
    ssot_path.rename(ssot_path.with_name("away.git"))
    reset_store()
    failed = tasks.ssot_poll()
    assert "SSOT unavailable" in failed["error"]
    assert SyncState.objects.get().consecutive_errors == 1


def test_the_audit_flush_task_commits_queued_lines(store):
    audit_queue(actor="system", action="webhook", detail="ping")

    assert tasks.audit_flush() == 1
    assert AuditEntry.objects.get(action="webhook").in_ssot
