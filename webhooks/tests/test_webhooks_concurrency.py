"""Duplicates at the same moment: threads with their own database connections, as daphne and workers have."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from ssot.models import AuditEntry, Task
from testing.factories import TaskFactory
from testing.webhooks import Poster, payload
from webhooks.models import WebhookDelivery
from webhooks.processing import process_delivery

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "concurrency-secret"
THREADS = 8


def at_once(work: Callable[[int], object]) -> list[Any]:
    """Run `work(i)` in THREADS threads released together; each thread closes its own connection."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # reported by the assertion on results below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_the_same_guid_posted_at_once_is_stored_and_processed_once(settings):
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    TaskFactory(task_id="T-0001", branch="feature/t-0001")
    guid = "0b989ba4-242f-11e5-81e1-c7b6966d2516"

    def post(index: int) -> int:
        poster = Poster(Client(), secret=SECRET, token="", address=f"10.77.0.{index + 1}")
        return poster.github("pull_request", payload("pull_request_opened"), guid=guid).status_code

    codes = at_once(post)

    assert sorted(codes) == [200] * (THREADS - 1) + [202]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.guid, delivery.state, delivery.attempts) == (guid, "done", 1)
    assert AuditEntry.objects.filter(action="pr_update").count() == 1
    assert Task.objects.get().pr_number == 42


def test_workers_racing_for_one_delivery_process_it_once(settings):
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    TaskFactory(task_id="T-0001", branch="feature/t-0001")
    Poster(Client(), secret=SECRET, token="", address="10.77.1.1").github(
        "check_run", payload("check_run_completed"), guid="race-1"
    )
    pk = WebhookDelivery.objects.get().pk

    states = at_once(lambda index: process_delivery(pk))

    assert "done" in states
    assert all(state in ("done", "processing") for state in states), states
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("done", 1)
    assert AuditEntry.objects.filter(action="ci_update").count() == 1


def test_pushes_stored_while_a_batch_is_claiming_are_never_left_without_a_task(store, monkeypatch):
    """Posters store pushes (most of them carried by a waiting one, with no task of their own) while a
    worker processes every queued task; at the end nothing may be left pending."""
    from testing.content import commit, task_doc
    from testing.webhooks import push_payload
    from webhooks import processing

    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    body = json.dumps(push_payload(repository="local/ssot", before="0" * 40, after=store.head())).encode()
    queue: list[int] = []
    queue_lock = threading.Lock()

    def queued(pk: int) -> None:
        with queue_lock:
            queue.append(pk)

    # As the real one (the ORM broker's entry commits with the row): seen once the delivery's row is.
    monkeypatch.setattr(
        processing, "enqueue_with_commit", lambda pk: transaction.on_commit(lambda: queued(pk))
    )
    monkeypatch.setattr(processing, "enqueue", queued)
    posting = threading.Event()
    posting.set()
    per_thread = 15
    posters_left = THREADS - 1

    def work(index: int) -> object:
        if index == 0:  # the worker
            done = 0
            while posting.is_set() or queue:
                with queue_lock:
                    pk = queue.pop(0) if queue else None
                if pk is None:
                    time.sleep(0.001)
                    continue
                processing.process_delivery(pk)
                done += 1
            return done
        try:
            for number in range(per_thread):
                processing.delivery_store(
                    source="github",
                    guid=f"race-{index}-{number}",
                    event="push",
                    action="",
                    headers={"Content-Type": "application/json"},
                    body=body,
                )
        finally:
            # Posting ends when every poster has returned, so every task queued on a commit is in the
            # queue: a delivery's row is seen by others a moment before its commit's task is queued.
            nonlocal posters_left
            with queue_lock:
                posters_left -= 1
                if posters_left == 0:
                    posting.clear()
        return per_thread

    results = at_once(work)

    assert results[1:] == [per_thread] * (THREADS - 1), results
    assert isinstance(results[0], int), f"the worker did not finish: {results[0]!r}"
    states = list(WebhookDelivery.objects.values_list("state", flat=True))
    assert len(states) == (THREADS - 1) * per_thread
    assert set(states) == {"done"}, f"the worker processed {results[0]} queued deliveries"
