"""The SSOT commands: ssot_init, ssot_resync, ssot_verify and ssot_flush_audit, as an operator runs them."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from django.core.management import CommandError, call_command

from ssot import audit
from ssot.models import AuditEntry, Message, Task
from ssot.stores.factory import get_store, reset_store
from testing.content import commit, task_doc

pytestmark = pytest.mark.django_db


def run(name: str, *args: str, **options) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def fresh_ssot(tmp_path, settings):
    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = tmp_path / "fresh.git"
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    reset_store()
    yield settings.SSOT_LOCAL_PATH
    reset_store()


def test_ssot_init_creates_the_layout_the_hook_and_mirrors_the_demo(fresh_ssot, settings):
    output = run("ssot_init", demo=True)
    assert "added demo tasks" in output
    store = get_store()
    paths = {entry.path for entry in store.list(store.head())}
    assert {"tasks/.gitkeep", "messages/.gitkeep", "acks/.gitkeep", "audit/.gitkeep"} <= paths
    hook = fresh_ssot / "hooks" / "post-receive"
    assert hook.stat().st_mode & stat.S_IXUSR
    config = json.loads((fresh_ssot / "hooks" / "agentos-hook.json").read_text())
    assert config["url"] == settings.SSOT_HOOK_URL
    assert settings.GITHUB_WEBHOOK_SECRETS[0] not in json.dumps(config)
    secret_file = config["secret_file"]
    assert oct(os.stat(secret_file).st_mode & 0o777) == "0o600"
    assert Task.objects.filter(status="awaiting_approval").count() == 1
    assert Message.objects.count() >= 10
    assert {"task_dispatch", "task_result", "review_request", "review_verdict"} <= set(
        Message.objects.values_list("type", flat=True)
    )


def test_ssot_init_twice_adds_nothing(fresh_ssot):
    run("ssot_init", demo=True)
    head = get_store().head()
    assert "demo skipped" in run("ssot_init", demo=True)
    assert get_store().head() == head


def test_ssot_resync_says_what_it_did(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1"), "tasks/T-2.json": b"{oops"})
    output = run("ssot_resync")
    assert "full sync" in output and "2 files read" in output and "1 quarantined" in output
    assert "quarantined: tasks/T-2.json" in output
    assert "noop sync" in run("ssot_resync")
    # A full resync reads the quarantined file again (its cause may be fixed), and it stays where it is.
    again = run("ssot_resync", full=True)
    assert "1 files read" in again and "0 rows written" in again and "0 quarantined" in again


def test_ssot_verify_is_clean_after_a_sync(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    run("ssot_resync")
    assert "mirror equals the SSOT" in run("ssot_verify")


def test_ssot_verify_lists_drift_and_exits_1(store, capsys):
    commit(store, {"tasks/T-1.json": task_doc("T-1"), "tasks/T-2.json": task_doc("T-2")})
    run("ssot_resync")
    Task.objects.filter(task_id="T-1").update(status="forged")
    commit(store, deletes=("tasks/T-2.json",))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("ssot_verify", stdout=out)
    assert exit_.value.code == 1
    report = out.getvalue()
    assert "DRIFT tasks/T-1.json: the row differs from the file" in report
    assert "DRIFT mirror is at" in report
    assert "tasks/T-2.json" in report


def test_ssot_verify_on_an_unreachable_ssot_is_a_clear_error(store, settings, tmp_path):
    settings.SSOT_LOCAL_PATH = tmp_path / "missing" / "ssot.git"
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "ssot.git").write_text("not a repository")
    reset_store()
    with pytest.raises(CommandError, match="SSOT unavailable"):
        run("ssot_verify")


def test_ssot_flush_audit_commits_the_queue(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    audit.audit_queue(actor="github", action="ci_result", detail="green")
    assert "flushed 1 audit lines" in run("ssot_flush_audit")
    assert AuditEntry.objects.get().in_ssot
    assert "flushed 0 audit lines" in run("ssot_flush_audit")


def test_ssot_resync_and_verify_take_hostile_files_in_their_stride(any_store, git_dir):
    from testing.content import commit_gitlink

    commit(
        any_store,
        {
            "tasks/T-1.json": task_doc("T-1"),
            "tasks/T-2.json": b'{"task_id": "T-2", "status": "x", "n": NaN}',
            "tasks/T-3.json": b'{"task_id": "T-3", "status": "x", "d": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        },
    )
    commit_gitlink(git_dir, "tasks/T-4.json", "4" * 40)
    output = run("ssot_resync")
    assert "3 quarantined" in output
    for path in ("tasks/T-2.json", "tasks/T-3.json", "tasks/T-4.json"):
        assert f"quarantined: {path}" in output
    assert "mirror equals the SSOT" in run("ssot_verify")


def test_ssot_resync_reports_a_database_failure_in_one_line(store):
    from testing.dbfaults import table_missing

    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    with table_missing("ssot_task"), pytest.raises(CommandError) as failed:
        run("ssot_resync")
    assert str(failed.value).startswith("Sync failed: mirroring tasks/T-1.json: ")
    assert "ssot_task" in str(failed.value)
