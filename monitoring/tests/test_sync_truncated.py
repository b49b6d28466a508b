"""A folder GitHub will not list whole (issue 16): the sync mirrors what it saw, deletes nothing unseen, and
the monitor escalates it as a failing sync (`ssot_sync_failed`), naming the folder."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.errors import SyncFailed
from monitoring.envelopes import SYNC_FAILED
from monitoring.services import sync_health
from ssot.documents import dump_json
from ssot.models import Message
from ssot.sync import sync, sync_state
from testing.content import dispatch

pytestmark = pytest.mark.django_db


def test_a_folder_github_will_not_list_whole_is_escalated_as_a_failing_sync(github_ssot):
    emulator = github_ssot.emulator
    messages = {}
    for n in range(1100):
        message = dispatch(f"T-{n}", n=n)
        messages[f"messages/{message['msg_id']}.json"] = dump_json(message)
    emulator.push(messages)
    sync()
    emulator.truncate_trees_over(1000)
    emulator.truncate_folders_over(1000)
    emulator.push({"tasks/T-1.json": b'{"task_id": "T-1"}'})

    for _ in range(2):
        with pytest.raises(SyncFailed):
            sync()

    health = sync_health(sync_state(), timezone.now())
    assert health.escalate and health.kind == SYNC_FAILED
    assert "truncated the listing of messages/" in health.reason
    assert Message.objects.count() == 1100
