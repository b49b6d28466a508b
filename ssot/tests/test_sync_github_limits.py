"""The sync against GitHub's limits (issue 16): a folder GitHub will not list whole, a lagging branch read,
a blob GitHub will not serve. Through the GitHub store, over HTTP, against the emulator."""

from __future__ import annotations

import pytest

from core.errors import SyncFailed
from ssot import services
from ssot.documents import dump_json
from ssot.models import Message, QuarantinedFile, SsotFile, Task
from ssot.sync import UNAVAILABLE, sync, sync_state
from testing.content import dispatch, task_doc

pytestmark = pytest.mark.django_db

MESSAGES = 1200


@pytest.fixture
def github(github_ssot):
    return github_ssot


def _messages(count: int, start: int = 0) -> dict[str, bytes]:
    found = {}
    for n in range(start, start + count):
        message = dispatch(f"T-{n}", n=n)
        found[f"messages/{message['msg_id']}.json"] = dump_json(message)
    return found


def test_a_folder_github_will_not_list_whole_deletes_nothing_unseen_and_fails_the_sync(github):
    """Issue 16: a truncated listing was used as complete, deleting the rows of every file not seen."""
    emulator = github.emulator
    emulator.push({**_messages(MESSAGES), "tasks/T-1.json": dump_json(task_doc("T-1"))})
    sync()
    assert Message.objects.count() == MESSAGES
    emulator.truncate_trees_over(1000)
    emulator.truncate_folders_over(1000)
    emulator.push(_messages(1, start=MESSAGES), deletes=["tasks/T-1.json"])

    with pytest.raises(SyncFailed, match=r"truncated the listing of messages/"):
        sync(full=True)

    assert Message.objects.count() >= MESSAGES  # every row kept; what was seen of the new one may land
    assert SsotFile.objects.filter(kind="message").count() >= MESSAGES
    assert not Task.objects.filter(task_id="T-1").exists()  # a deletion outside the cut folder is applied
    state = sync_state()
    assert state.consecutive_errors == 1
    assert "nothing unseen deleted" in state.last_error
    assert not state.last_error.startswith(UNAVAILABLE)  # the sync's own failure: the monitor escalates

    with pytest.raises(SyncFailed):
        sync()
    assert sync_state().consecutive_errors == 2  # SYNC_FAILURES_TO_ESCALATE: an ssot_sync_failed escalation


def test_an_incremental_sync_over_a_cut_folder_deletes_nothing_unseen(github):
    emulator = github.emulator
    emulator.push(_messages(MESSAGES))
    sync()
    emulator.truncate_trees_over(1000)
    emulator.truncate_folders_over(1000)
    emulator.push(_messages(1, start=MESSAGES))

    with pytest.raises(SyncFailed, match="truncated"):
        sync()

    assert Message.objects.count() >= MESSAGES


def test_a_sharded_folder_past_githubs_limits_is_listed_whole(github):
    """Dated sub-folders (SPEC section 4) keep each folder under the limit: every file is seen."""
    emulator = github.emulator
    writes = {}
    for n, (path, data) in enumerate(_messages(MESSAGES).items()):
        writes[path.replace("messages/", f"messages/2026/11/{n % 3 + 1:02d}/")] = data
    emulator.push(writes)
    emulator.truncate_trees_over(1000)
    emulator.truncate_folders_over(1000)

    report = sync(full=True)

    assert report.files_read == MESSAGES
    assert Message.objects.count() == MESSAGES


def test_a_branch_read_lagging_behind_our_commit_never_moves_the_mirror_back(github):
    """Issue 16: a replica answering the head before our own commit moved the mirror back (deleting rows)."""
    emulator = github.emulator
    emulator.push({"tasks/T-1.json": dump_json(task_doc("T-1"))})
    sync()
    before = emulator.head()
    services.message_create(raw=dispatch("T-1"), sender="coordinator")
    ours = emulator.head()
    assert ours != before
    emulator.lag_reads(3)

    assert github.head() == ours  # the lagging answer (`before`) is not taken
    sync()
    sync(full=True)

    assert sync_state().head == ours
    assert Message.objects.filter(msg_id=dispatch("T-1")["msg_id"]).exists()
    assert emulator.requests["GET /repos/{owner}/{repo}/branches/{branch}"] >= 3  # the lag was served


def test_a_newer_head_from_another_client_is_taken_at_once(github):
    emulator = github.emulator
    emulator.push({"tasks/T-1.json": dump_json(task_doc("T-1"))})
    sync()
    services.message_create(raw=dispatch("T-1"), sender="coordinator")
    theirs = emulator.push({"tasks/T-2.json": dump_json(task_doc("T-2"))})

    assert github.head() == theirs
    sync()
    assert Task.objects.filter(task_id="T-2").exists()


def test_a_blob_github_will_not_serve_is_quarantined_and_the_sync_goes_on(github):
    """Issue 16: a blob over 100 MB (403 too_large) failed every sync; it is quarantined with the reason.
    (The emulator's limit is lowered so that "over the limit" is a few bytes, not 100 MB.)"""
    emulator = github.emulator
    big = dispatch("T-1", n=1)
    big["payload"]["notes"] = "x" * 2000
    emulator.push(
        {
            f"messages/{big['msg_id']}.json": dump_json(big),
            "tasks/T-2.json": dump_json(task_doc("T-2")),
        }
    )
    emulator.blob_limit = 1000

    report = sync()

    assert report.quarantined == [f"messages/{big['msg_id']}.json"]
    assert Task.objects.filter(task_id="T-2").exists()
    reason = QuarantinedFile.objects.get(path=f"messages/{big['msg_id']}.json").errors[0]["message"]
    assert "too large" in reason and "make the file smaller" in reason
    assert sync_state().consecutive_errors == 0
