"""The write path at GitHub's limits (issue 16): refusals answered at once, rate limits and the write budget
answered 503 with Retry-After, never waited out while holding the write lock or past SSOT_WRITE_WAIT_SEC."""

from __future__ import annotations

import os
import threading
import time

import pytest

from core.errors import Conflict, SsotBusy, SsotUnavailable
from ssot import budget, services
from ssot.locking import exclusive, write_lock
from ssot.models import Message, WriteBudget
from ssot.sync import sync
from testing.api import jwt_client, make_user
from testing.content import commit, dispatch

pytestmark = pytest.mark.django_db

PATCH_REF = "PATCH /repos/{owner}/{repo}/git/refs/{ref}"
POST_TREE = "POST /repos/{owner}/{repo}/git/trees"


@pytest.fixture
def gh_store(github_ssot):
    """GitHub through its emulator, with one commit."""
    commit(github_ssot, {"README.md": b"the SSOT"})
    sync()
    return github_ssot, github_ssot.emulator


def test_a_protected_branch_is_a_503_with_githubs_message_at_once(gh_store):
    """Issue 16: retried eight times as a conflict (four calls and two writes each), then a misleading 409."""
    _, emulator = gh_store
    emulator.refuse_ref_updates("main")
    emulator.reset_counts()

    with pytest.raises(SsotUnavailable) as refused:
        services.message_create(raw=dispatch("T-1"), sender="coordinator")

    assert not isinstance(refused.value, Conflict)
    assert "Protected branch update failed for refs/heads/main." in refused.value.detail
    assert emulator.requests[PATCH_REF] == 1
    assert not Message.objects.exists()


def test_a_secondary_rate_limit_without_retry_after_is_a_503_at_once_not_a_minute_under_the_lock(
    gh_store, settings
):
    """Issue 16: with no `retry-after`, a request slept 60 s holding the write lock."""
    _, emulator = gh_store
    emulator.rate_limit_next(1, kind="secondary", retry_after=None)
    client = jwt_client(make_user("coordinator"))

    response = client.post("/api/messages/", dispatch("T-2"), format="json")

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "ssot_busy"
    assert int(response["Retry-After"]) >= 60  # GitHub: "wait for at least one minute"
    assert emulator.statuses[429] == 1
    assert sum(emulator.statuses.values()) == emulator.total_requests()  # nothing retried meanwhile
    with write_lock(timeout=0):  # not held by anyone
        pass
    # The pause holds every writer back: the next one is answered at once, GitHub not asked.
    before = emulator.total_requests()
    again = client.post("/api/messages/", dispatch("T-3"), format="json")
    assert again.status_code == 503 and int(again["Retry-After"]) >= 59
    assert emulator.total_requests() == before


def test_a_spent_write_budget_answers_503_with_retry_after_and_asks_github_nothing(gh_store, settings):
    store, emulator = gh_store
    settings.GITHUB_WRITES_PER_MIN = 3  # one commit a minute
    settings.GITHUB_WRITES_PER_HOUR = 500
    settings.SSOT_WRITE_WAIT_SEC = 0.1
    services.message_create(raw=dispatch("T-4"), sender="coordinator")
    emulator.reset_counts()

    with pytest.raises(SsotBusy) as busy:
        services.message_create(raw=dispatch("T-5"), sender="coordinator")

    assert busy.value.retry_after is not None and 55 <= busy.value.retry_after <= 60
    assert emulator.requests[POST_TREE] == 0
    assert budget.remaining(store)[0] < 3


def _spent(settings, times: list[float]) -> None:
    """The requests made at these times (as another process would have recorded them)."""
    WriteBudget.objects.update_or_create(repository=settings.GITHUB_SSOT_REPO, defaults={"spent": times})


def test_a_budget_gap_shorter_than_the_wait_is_waited_out_then_written(gh_store, settings):
    """While the budget is spent, writes wait (unlocked) and batch up rather than reach GitHub's limit."""
    _, emulator = gh_store
    settings.GITHUB_WRITES_PER_MIN = 6
    settings.GITHUB_WRITES_PER_HOUR = 500
    # Six requests 59.5 s ago fill this minute's window; the oldest three leave it within a second.
    _spent(settings, [time.time() - 59.5] * 6)
    emulator.reset_counts()

    services.message_create(raw=dispatch("T-6"), sender="coordinator")

    assert emulator.requests[POST_TREE] == 1
    assert Message.objects.filter(msg_id=dispatch("T-6")["msg_id"]).exists()


def test_commits_are_paced_over_the_minute_and_no_window_holds_more_than_the_budget(gh_store, settings):
    store, _ = gh_store
    settings.GITHUB_WRITES_PER_MIN = 9  # three commits a minute: one every 20 s
    settings.GITHUB_WRITES_PER_HOUR = 500

    assert budget.reserve(store) == 0.0
    assert 19 <= budget.reserve(store) <= 20  # paced (0.5 s of slack): not the minute in its first second
    assert budget.remaining(store)[0] == 6

    # Six requests 30 s ago (another process's): a fourth commit in that window would make twelve.
    now = time.time()
    _spent(settings, [now - 30] * 6)
    WriteBudget.objects.update(next_at=0)
    assert budget.reserve(store) == 0.0
    WriteBudget.objects.update(next_at=0)
    assert 29 <= budget.reserve(store) <= 30
    budget.spend(store, -3)  # a reserved commit not made gives its requests back
    assert budget.remaining(store)[0] == 3


def test_a_stale_local_ref_lock_is_a_503_naming_it_at_once(store):
    """Issue 16: a stale `refs/heads/main.lock` ended in 409 "the SSOT kept changing" after 16.5 s."""
    commit(store, {"README.md": b"the SSOT"})
    lock = store.path / "refs" / "heads" / "main.lock"
    lock.write_text("")
    old = time.time() - 600
    os.utime(lock, (old, old))
    client = jwt_client(make_user("coordinator"))

    response = client.post("/api/messages/", dispatch("T-7"), format="json")

    assert response.status_code == 503, response.content
    assert "main.lock" in response.json()["detail"] and "stale" in response.json()["detail"]


def test_a_write_lock_held_elsewhere_past_the_wait_is_busy(store, settings):
    """Another holder of the cross-process write lock (a thread with its own database session, or its own
    lock file handle on SQLite, as another process would hold it): the writer gives up at its bound."""
    settings.SSOT_WRITE_WAIT_SEC = 0.05
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive("ssot-write"):
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        with pytest.raises(SsotBusy, match="another process holds the SSOT write lock"):
            services.message_create(raw=dispatch("T-8"), sender="coordinator")
    finally:
        done.set()
        holder.join()
    assert not Message.objects.exists()


def test_a_sync_request_meeting_a_long_rate_limit_is_a_503_with_retry_after_at_once(gh_store, settings):
    """No request waits past SSOT_WRITE_WAIT_SEC for GitHub's rate limit, a sync's neither."""
    _, emulator = gh_store
    emulator.push({"tasks/T-9.json": b"{}"})
    client = jwt_client(make_user("operator"))
    emulator.reset_counts()
    emulator.rate_limit_next(1, kind="secondary", retry_after=120)

    response = client.post("/api/sync/", {}, format="json")

    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) == 120
    assert emulator.statuses[429] == 1 and sum(emulator.statuses.values()) == 1
