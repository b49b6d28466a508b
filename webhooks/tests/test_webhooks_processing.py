"""What each delivery does once processed: SSOT syncs, CI and PR updates, events, audit, retries, replay."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ssot.events import GROUP
from ssot.models import Agent, AuditEntry, Message, Task
from ssot.stores.factory import reset_store
from ssot.sync import sync, sync_state
from ssot.verify import differences
from testing.content import commit, dispatch, task_doc
from testing.factories import TaskFactory
from testing.git import clone, git
from testing.webhooks import Poster, payload, push_payload
from webhooks import processing
from webhooks.models import WebhookDelivery
from webhooks.processing import process_delivery, retry_due

pytestmark = pytest.mark.django_db

SECRET, TOKEN = "webhook-secret-for-processing", "xcode-token-for-processing"
SSOT_REPO = "local/ssot"


class EventTap:
    """A client of the `events` group: what was broadcast, in order, up to now."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self._join)()

    async def _join(self) -> str:
        channel = await self.layer.new_channel()
        await self.layer.group_add(GROUP, channel)
        return channel

    def events(self) -> list[dict]:
        async def collect() -> list[dict]:
            # Everything sent before the marker arrives before it: no waiting on a clock.
            marker = {"type": "tap_marker", "id": uuid.uuid4().hex}
            await self.layer.group_send(GROUP, {"type": "event.forward", "event": marker})
            seen: list[dict[str, Any]] = []
            while True:
                message = await asyncio.wait_for(self.layer.receive(self.channel), timeout=10)
                if message["event"] == marker:
                    return seen
                seen.append(message["event"])

        return async_to_sync(collect)()

    def of(self, kind: str) -> list[dict]:
        return [event for event in self.events() if event["type"] == kind]


@pytest.fixture
def tap() -> EventTap:
    return EventTap()


@pytest.fixture
def deliver(client, settings, django_capture_on_commit_callbacks):
    """Post a delivery and let django-q2 (sync mode) process it once the request's commit is done."""
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    settings.XCODE_WEBHOOK_SECRET = TOKEN
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    poster = Poster(client, secret=SECRET, token=TOKEN, address=f"10.9.{random.randrange(256)}.1")

    def post(event: str, data: dict, **options) -> WebhookDelivery:
        with django_capture_on_commit_callbacks(execute=True):
            if event == "xcode":
                response = poster.xcode(data, **options)
            else:
                response = poster.github(event, data, **options)
        assert response.status_code in (200, 202), response.content
        return WebhookDelivery.objects.get(guid=response.json()["guid"])

    return post


@pytest.fixture
def task() -> Task:
    return TaskFactory.create(task_id="T-0001", branch="feature/t-0001")


# -- CI and pull requests ----------------------------------------------------------------------------


def test_a_check_run_sets_the_tasks_ci_status_and_sends_ci_update(deliver, task, tap):
    delivery = deliver("check_run", payload("check_run_completed"))

    assert (delivery.state, delivery.attempts) == ("done", 1)
    task.refresh_from_db()
    assert task.ci_status == {
        "build": {
            "state": "failure",
            "conclusion": "failure",
            "url": "https://github.com/agentos/app/runs/128620228",
            "at": "2026-11-21T10:05:41Z",
            "source": "github",
            "event": "check_run",
            "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        }
    }
    assert task.ci_state == "failure"
    [event] = tap.of("ci_update")
    assert event == {
        "type": "ci_update",
        "task_id": "T-0001",
        "branch": "feature/t-0001",
        "source": "github",
        "check": "build",
        "state": "failure",
        "ci_state": "failure",
        "ci_status": task.ci_status,
    }


def test_ci_state_sums_up_every_check(deliver, task):
    deliver("workflow_run", payload("workflow_run_in_progress"))
    task.refresh_from_db()
    assert task.ci_state == "pending"
    deliver("check_suite", payload("check_suite_completed"))
    deliver("workflow_run", payload("workflow_run_completed"))
    task.refresh_from_db()
    assert {name: entry["state"] for name, entry in task.ci_status.items()} == {
        "CI": "success",
        "Octo CI": "success",
    }
    assert task.ci_state == "success"
    deliver("status", payload("status_failure"))
    task.refresh_from_db()
    assert (task.ci_status["ci/lint"]["state"], task.ci_state) == ("failure", "failure")


def test_a_status_updates_the_task_of_every_branch_it_names(deliver, task):
    other = TaskFactory.create(task_id="T-0002", branch="feature/t-0002")
    deliver("status", payload("status_failure"))
    other.refresh_from_db()
    task.refresh_from_db()
    assert task.ci_status["ci/lint"]["url"] == "https://ci.example.com/agentos/app/builds/1234"
    assert other.ci_status["ci/lint"]["state"] == "failure"


def test_an_older_delivery_arriving_late_does_not_undo_a_newer_one(deliver, task):
    deliver("workflow_run", payload("workflow_run_completed"))
    late = deliver("workflow_run", payload("workflow_run_in_progress"))
    task.refresh_from_db()
    assert task.ci_status["CI"]["state"] == "success"
    assert late.error == "CI pending on feature/t-0001: no task changed"


def test_ci_for_a_branch_without_a_task_is_recorded_and_changes_nothing(deliver, task):
    data = payload("check_run_completed")
    data["check_run"]["check_suite"]["head_branch"] = "feature/unknown"
    delivery = deliver("check_run", data)
    assert (delivery.state, delivery.error) == ("done", "build failure on feature/unknown: no task changed")
    task.refresh_from_db()
    assert task.ci_status == {}


def test_a_ci_update_queues_an_audit_line_and_commits_nothing_to_the_ssot(deliver, task, store):
    head = store.head()
    deliver("check_run", payload("check_run_completed"))
    line = AuditEntry.objects.get(action="ci_update")
    assert (line.actor, line.task_id, line.detail, line.in_ssot) == (
        "github",
        "T-0001",
        "build on feature/t-0001: failure",
        False,
    )
    assert json.loads(line.raw)["url"] == "https://github.com/agentos/app/runs/128620228"
    assert store.head() == head


def test_a_pull_request_is_attached_to_the_task_of_its_head_branch(deliver, task, tap):
    delivery = deliver("pull_request", payload("pull_request_opened"))

    task.refresh_from_db()
    assert (task.pr_number, task.pr_state, task.pr_url, task.pr_title) == (
        42,
        "open",
        "https://github.com/agentos/app/pull/42",
        "Add the login form (T-0001)",
    )
    assert delivery.error == "PR #42 open on feature/t-0001: tasks T-0001"
    [event] = tap.of("pr_update")
    assert event == {
        "type": "pr_update",
        "task_id": "T-0001",
        "action": "opened",
        "branch": "feature/t-0001",
        "pr": {
            "number": 42,
            "state": "open",
            "url": "https://github.com/agentos/app/pull/42",
            "title": "Add the login form (T-0001)",
        },
    }
    assert AuditEntry.objects.get(action="pr_update").detail == "PR #42 open: Add the login form (T-0001)"


def test_a_merged_pull_request_marks_the_task_merged(deliver, task):
    deliver("pull_request", payload("pull_request_opened"))
    deliver("pull_request", payload("pull_request_closed_merged"))
    task.refresh_from_db()
    assert (task.pr_number, task.pr_state) == (42, "merged")


def test_a_pull_request_from_a_fork_with_a_tasks_branch_name_changes_nothing(deliver, task):
    delivery = deliver("pull_request", payload("pull_request_from_fork"))
    task.refresh_from_db()
    assert (delivery.state, task.pr_number) == ("ignored", None)


def test_a_processed_again_delivery_changes_and_sends_nothing_more(deliver, task, tap):
    delivery = deliver("pull_request", payload("pull_request_opened"))
    tap.events()
    assert process_delivery(delivery.pk, force=True) == "done"
    assert tap.of("pr_update") == []
    assert AuditEntry.objects.filter(action="pr_update").count() == 1


def test_the_sync_keeps_webhook_columns_when_the_task_file_changes(deliver, store):
    commit(store, {"tasks/T-0001.json": task_doc("T-0001", branch="feature/t-0001")})
    sync()
    deliver("check_run", payload("check_run_completed"))
    commit(store, {"tasks/T-0001.json": task_doc("T-0001", branch="feature/t-0001", status="review")})
    sync()
    task = Task.objects.get(task_id="T-0001")
    assert (task.status, task.ci_state) == ("review", "failure")


# -- Xcode Cloud -----------------------------------------------------------------------------------------


def test_xcode_cloud_builds_set_the_xcode_cloud_check(deliver, task, tap):
    deliver("xcode", payload("xcode_build_started"))
    task.refresh_from_db()
    assert (task.ci_status["xcode_cloud"]["state"], task.ci_state) == ("pending", "pending")

    deliver("xcode", payload("xcode_build_completed"), in_url=True)
    task.refresh_from_db()
    assert task.ci_status["xcode_cloud"] == {
        "state": "failure",
        "conclusion": "FAILED",
        "url": "https://api.appstoreconnect.apple.com/v1/ciBuildRuns/56c512e6-111e-4067-8e88-640c28ce91a7",
        "at": "2026-11-21T10:14:10.194Z",
        "source": "xcode_cloud",
        "event": "BUILD_COMPLETED",
        "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    }
    assert [e["state"] for e in tap.of("ci_update")] == ["pending", "failure"]
    assert AuditEntry.objects.filter(action="ci_update", actor="xcode_cloud").count() == 2


def test_an_xcode_resend_is_processed_once(deliver, task):
    first = deliver("xcode", payload("xcode_build_completed"))
    again = deliver("xcode", payload("xcode_build_completed"))
    assert first.pk == again.pk
    assert WebhookDelivery.objects.get().attempts == 1


def test_an_unrecognised_xcode_event_is_stored_and_ignored(deliver, task):
    data = payload("xcode_build_completed")
    data["metadata"]["attributes"]["eventType"] = "UNRECOGNIZED"
    delivery = deliver("xcode", data)
    task.refresh_from_db()
    assert (delivery.state, task.ci_status) == ("ignored", {})


# -- other events ----------------------------------------------------------------------------------------


def test_a_ping_is_done_and_audited(deliver):
    delivery = deliver("ping", payload("ping"))
    assert (delivery.state, delivery.error) == ("done", "ping from hook 30")
    assert AuditEntry.objects.get().action == "webhook"


def test_any_other_event_is_stored_and_recorded_as_ignored(deliver):
    delivery = deliver("issues", payload("issues_opened"))
    assert (delivery.state, delivery.error) == ("ignored", "stored: nothing to do for issues")
    assert AuditEntry.objects.get().detail == "issues opened: stored: nothing to do for issues"


# -- pushes to the SSOT ------------------------------------------------------------------------------------


def write(work: Path, files: dict[str, dict | None]) -> None:
    for path, content in files.items():
        target = work / path
        if content is None:
            git(work, "rm", "-q", path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=2) + "\n")
        git(work, "add", path)


def test_a_push_of_three_commits_brings_adds_changes_and_deletes_into_the_rows(deliver, store, tmp_path):
    first = dispatch("T-2")
    commit(
        store,
        {
            "tasks/T-1.json": task_doc("T-1"),
            "tasks/T-2.json": task_doc("T-2"),
            f"messages/{first['msg_id']}.json": first,
        },
    )
    sync()
    before = store.head()
    work = tmp_path / "work"
    clone(store.path, work)
    write(work, {"tasks/T-3.json": task_doc("T-3", last_writer="executor")})
    git(work, "commit", "-q", "-m", "add T-3")
    write(work, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", last_writer="executor")})
    git(work, "commit", "-q", "-m", "T-1 awaits approval")
    write(work, {"tasks/T-2.json": None, f"messages/{first['msg_id']}.json": None})
    git(work, "commit", "-q", "-m", "drop T-2")
    git(work, "push", "-q", "origin", "HEAD:main")
    after = store.head()
    assert after != before

    delivery = deliver("push", push_payload(repository=SSOT_REPO, before=before, after=after))

    assert delivery.state == "done"
    assert delivery.error.startswith(f"sync incremental to {after[:10]}: 2 read, 2 deleted")
    assert dict(Task.objects.values_list("task_id", "status")) == {
        "T-1": "awaiting_approval",
        "T-3": "in_progress",
    }
    assert not Message.objects.exists()
    assert differences(store) == []
    assert Agent.objects.get(name="executor").last_seen is not None
    push_line = AuditEntry.objects.get(action="ssot_push")
    assert push_line.detail.startswith(f"refs/heads/main {before[:10]}..{after[:10]}: sync incremental")


def test_a_push_whose_before_is_not_the_mirrored_head_still_syncs_to_the_new_head(deliver, store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    commit(store, {"tasks/T-2.json": task_doc("T-2")})
    middle = store.head()
    commit(store, {"tasks/T-3.json": task_doc("T-3")}, deletes=("tasks/T-1.json",))
    # A delivery for the last push only: the first one was missed.
    delivery = deliver("push", push_payload(repository=SSOT_REPO, before=middle, after=store.head()))
    assert delivery.state == "done"
    assert set(Task.objects.values_list("task_id", flat=True)) == {"T-2", "T-3"}
    assert sync_state().head == store.head()


def test_a_push_to_another_repository_or_branch_is_recorded_as_ignored(deliver, store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    other_repo = deliver("push", push_payload(repository="agentos/app", before="0" * 40, after="1" * 40))
    other_branch = deliver(
        "push", push_payload(repository=SSOT_REPO, before="0" * 40, after="1" * 40, ref="refs/heads/feature")
    )
    assert (other_repo.state, other_branch.state) == ("ignored", "ignored")
    assert (
        other_branch.error
        == "ignored: push to local/ssot refs/heads/feature (the SSOT is local/ssot refs/heads/main)"
    )
    assert not Task.objects.exists()
    assert AuditEntry.objects.filter(action="webhook").count() == 2


def test_a_push_to_the_github_ssot_is_matched_by_its_full_name(deliver, settings):
    settings.SSOT_BACKEND = "github"
    settings.GITHUB_SSOT_REPO = "agentos/ssot"
    delivery = deliver("push", push_payload(repository="local/ssot", before="0" * 40, after="1" * 40))
    assert delivery.error.startswith("ignored: push to local/ssot refs/heads/main (the SSOT is agentos/ssot")


@pytest.fixture
def waiting(client, settings):
    """Post deliveries whose queued tasks have not run yet (the worker is busy): they stay pending."""
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    poster = Poster(client, secret=SECRET, token=TOKEN, address="10.7.0.1")

    def post(event: str, data: dict) -> WebhookDelivery:
        response = poster.github(event, data)
        assert response.status_code == 202, response.content
        return WebhookDelivery.objects.get(guid=response.json()["guid"])

    return post


def test_one_sync_answers_every_push_waiting_for_its_task(waiting, store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    first = waiting("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=store.head()))
    before = store.head()
    commit(store, {"tasks/T-2.json": task_doc("T-2")})
    second = waiting("push", push_payload(repository=SSOT_REPO, before=before, after=store.head()))
    elsewhere = waiting("push", push_payload(repository="agentos/app", before="0" * 40, after="1" * 40))
    pull_request = waiting("pull_request", payload("pull_request_opened"))

    assert process_delivery(first.pk) == "done"

    rows = {d.pk: d for d in WebhookDelivery.objects.all()}
    note = f"sync full to {store.head()[:10]}: 2 read, 0 deleted"
    assert (rows[first.pk].state, rows[first.pk].error) == ("done", note)
    assert (rows[second.pk].state, rows[second.pk].error) == ("done", note)  # the same sync, not a no-op
    assert rows[elsewhere.pk].state == "ignored"
    assert rows[pull_request.pk].state == "pending"  # only pushes share a sync
    assert set(Task.objects.values_list("task_id", flat=True)) == {"T-1", "T-2"}
    pushes = AuditEntry.objects.filter(action="ssot_push")
    assert sorted(json.loads(entry.raw)["delivery"] for entry in pushes) == sorted([first.guid, second.guid])
    # The second push's own task comes later and finds it done: nothing runs twice.
    assert process_delivery(second.pk) == "done"
    assert WebhookDelivery.objects.get(pk=second.pk).attempts == 1


def test_when_the_shared_sync_fails_every_push_of_the_batch_is_retried(waiting, store, ssot_outage):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    deliveries = [
        waiting("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=store.head()))
        for _ in range(3)
    ]
    ssot_outage.begin()
    assert process_delivery(deliveries[1].pk) == "failed"

    rows = list(WebhookDelivery.objects.order_by("pk"))
    assert [(row.state, row.attempts) for row in rows] == [("failed", 1)] * 3
    assert all(row.error.startswith("SsotUnavailable: SSOT unavailable") for row in rows)
    assert all(row.next_attempt_at > timezone.now() for row in rows)
    ssot_outage.end()
    with time_machine.travel(rows[0].next_attempt_at + timedelta(seconds=1)):
        assert retry_due() == 3
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"done"}


def test_a_push_stored_while_another_waits_is_carried_not_queued(waiting, store, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(processing, "enqueue_with_commit", queued.append)
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    first = waiting("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=store.head()))
    second = waiting("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=store.head()))
    check = waiting("check_run", payload("check_run_completed"))

    assert queued == [first.pk, check.pk]  # the second push rides with the first; a CI event never does
    assert process_delivery(first.pk) == "done"
    assert WebhookDelivery.objects.get(pk=second.pk).state == "done"


def test_a_full_batch_gives_the_next_waiting_push_a_task(waiting, store, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(processing, "enqueue_with_commit", queued.append)
    monkeypatch.setattr(processing, "enqueue", queued.append)
    monkeypatch.setattr(processing, "PUSH_BATCH", 2)
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    pushes = [
        waiting("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=store.head()))
        for _ in range(4)
    ]
    assert queued == [pushes[0].pk]

    assert process_delivery(pushes[0].pk) == "done"
    states = list(WebhookDelivery.objects.order_by("pk").values_list("state", flat=True))
    assert states == ["done", "done", "pending", "pending"]
    assert queued == [pushes[0].pk, pushes[2].pk]  # the oldest one left gets a task; it carries the rest
    assert process_delivery(pushes[2].pk) == "done"
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"done"}


# -- failures, retries, replay --------------------------------------------------------------------------


@pytest.fixture
def ssot_outage(store):
    """Take the local SSOT away (as an unmounted disk would) and bring it back."""
    hidden = store.path.with_name("ssot-away.git")

    class Outage:
        def begin(self) -> None:
            store.path.rename(hidden)
            reset_store()

        def end(self) -> None:
            hidden.rename(store.path)
            reset_store()

    return Outage()


def test_a_push_that_fails_is_retried_with_backoff_until_it_goes_through(deliver, store, ssot_outage):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    after = store.head()
    ssot_outage.begin()
    delivery = deliver("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=after))

    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.error.startswith("SsotUnavailable: SSOT unavailable: the local SSOT is unavailable")
    first_retry = delivery.next_attempt_at
    assert first_retry - timezone.now() == pytest.approx(timedelta(seconds=30), abs=timedelta(seconds=5))
    assert retry_due() == 0  # not due yet

    with time_machine.travel(first_retry + timedelta(seconds=1)):
        assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.next_attempt_at - first_retry > timedelta(seconds=59)  # the wait doubled

    ssot_outage.end()
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("done", 3, None)
    assert Task.objects.filter(task_id="T-1").exists()


def test_after_the_last_attempt_it_is_failed_and_webhooks_replay_runs_it_again(
    deliver, store, ssot_outage, capsys
):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    after = store.head()
    ssot_outage.begin()
    delivery = deliver("push", push_payload(repository=SSOT_REPO, before="0" * 40, after=after))
    for _ in range(processing.MAX_ATTEMPTS - 1):
        delivery.refresh_from_db()
        with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
            retry_due()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("failed", 5, None)
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert retry_due() == 0  # given up: only a replay runs it again

    with pytest.raises(CommandError, match="some deliveries did not go through"):
        call_command("webhooks_replay", "--failed")
    ssot_outage.end()
    call_command("webhooks_replay", "--failed")

    out = capsys.readouterr().out
    assert f"{delivery.guid} push: failed -> done (sync full to {after[:10]}: 1 read, 0 deleted)" in out
    assert "replayed 1 deliveries: 1 done" in out
    assert Task.objects.filter(task_id="T-1").exists()


def test_webhooks_replay_reruns_chosen_deliveries_in_any_state(deliver, task, capsys):
    delivery = deliver("check_run", payload("check_run_completed"))
    call_command("webhooks_replay", delivery.guid)
    assert f"{delivery.guid} check_run: done -> done" in capsys.readouterr().out
    delivery.refresh_from_db()
    assert delivery.attempts == 2


def test_webhooks_replay_since_selects_by_arrival(deliver, task, capsys):
    with time_machine.travel(timezone.now() - timedelta(hours=3)):
        deliver("check_run", payload("check_run_completed"))
    recent = deliver("pull_request", payload("pull_request_opened"))
    call_command("webhooks_replay", "--since", "1h")
    out = capsys.readouterr().out
    assert recent.guid in out
    assert "replayed 1 deliveries: 1 done" in out


def test_webhooks_replay_says_what_it_needs(capsys):
    with pytest.raises(CommandError, match="Say which deliveries"):
        call_command("webhooks_replay")
    with pytest.raises(CommandError, match="--since takes an ISO 8601 time"):
        call_command("webhooks_replay", "--since", "yesterday")
    with pytest.raises(CommandError, match="did not go through"):
        call_command("webhooks_replay", "no-such-guid")
    assert "no-such-guid: no such delivery" in capsys.readouterr().err


def test_a_delivery_whose_queued_task_was_lost_is_processed_by_retry_due(client, settings, task):
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    poster = Poster(client, secret=SECRET, token=TOKEN, address="10.8.0.1")
    poster.github("pull_request", payload("pull_request_opened"), guid="lost-1")  # on_commit never runs
    delivery = WebhookDelivery.objects.get(guid="lost-1")
    assert retry_due() == 0
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        assert retry_due() == 1
    task.refresh_from_db()
    assert task.pr_number == 42


def test_a_delivery_whose_worker_died_is_retried_when_its_lease_expires(deliver, task):
    delivery = deliver("pull_request", payload("pull_request_opened"))
    lease_end = timezone.now() + timedelta(seconds=processing.LEASE_SEC)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="processing", next_attempt_at=lease_end)
    assert process_delivery(delivery.pk) == "processing"  # someone holds it
    with time_machine.travel(lease_end + timedelta(seconds=1)):
        assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("done", 2)


def test_a_done_delivery_is_not_processed_again_without_force(deliver, task):
    delivery = deliver("pull_request", payload("pull_request_opened"))
    assert process_delivery(delivery.pk) == "done"
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_processing_an_unknown_delivery_reports_it_missing():
    assert process_delivery(987654321) == "missing"
