"""The write budget: content-creating GitHub requests kept under GitHub's limits (SPEC sections 3-4).

GitHub allows about 80 content-creating requests a minute and 500 an hour (secondary rate limits); a
commit costs three (tree, commit, ref) plus one per binary file. Every process draws on the same
`WriteBudget` row, under a cross-process lock: a log of the request times of the last hour, so that no
60 s window holds more than GITHUB_WRITES_PER_MIN and no hour more than GITHUB_WRITES_PER_HOUR (a token
bucket would allow twice the minute's number in a minute's window, right after a quiet spell); and the
minute's budget is paced evenly (a commit of 3 requests at most every 3 x 60 / 80 = 2.25 s), so that a
burst does not spend the minute in its first seconds and leave the next fifty without a commit. The write
path reserves a commit's requests before it takes the write lock; meanwhile changes wait in the queue and
batch up: under load, one commit carries what arrived in those 2.25 s. A rate limit GitHub answers
anyway pauses every writer until it lifts (`pause`). The local store has no such limit: every function
here is free for it.
"""

from __future__ import annotations

import bisect
import time

from django.conf import settings
from django.db import transaction

from ssot.locking import exclusive
from ssot.models import WriteBudget
from ssot.stores.base import Store

COMMIT_COST = 3  # create tree, create commit, update ref
MINUTE, HOUR = 60.0, 3600.0
# Pacing lets a commit go this much ahead of its even slot (GCRA's tolerance); the windows still hold.
PACING_SLACK_SEC = 0.5


def _limited(store: Store) -> bool:
    return store.backend == "github"


def _row(now: float) -> WriteBudget:
    """The row with the requests older than an hour forgotten (call under the budget lock)."""
    row, _ = WriteBudget.objects.get_or_create(repository=settings.GITHUB_SSOT_REPO)
    row.spent = row.spent[bisect.bisect_right(row.spent, now - HOUR) :]
    return row


def _wait_for(spent: list[float], cost: int, now: float) -> float:
    """Seconds until `cost` more requests fit in every window."""
    wait = 0.0
    for window, limit in ((MINUTE, settings.GITHUB_WRITES_PER_MIN), (HOUR, settings.GITHUB_WRITES_PER_HOUR)):
        recent = spent[bisect.bisect_right(spent, now - window) :]
        excess = len(recent) + cost - limit
        if excess > 0:
            # The excess-th oldest request of the window must leave it (all of them if cost > limit).
            wait = max(wait, recent[min(excess, len(recent)) - 1] + window - now)
    return wait


def reserve(store: Store, cost: int = COMMIT_COST) -> float:
    """Take `cost` requests from the budget and return 0, or return the seconds until they fit (taking
    nothing). Free for stores without a budget."""
    if not _limited(store):
        return 0.0
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        row = _row(now)
        paced = row.next_at - PACING_SLACK_SEC - now
        wait = max(_wait_for(row.spent, cost, now), row.paused_until - now, paced, 0.0)
        if wait == 0:
            row.spent.extend([now] * cost)
            row.next_at = max(row.next_at, now) + cost * MINUTE / settings.GITHUB_WRITES_PER_MIN
            row.save(update_fields=["spent", "next_at"])
        return wait


def spend(store: Store, requests: int) -> None:
    """Charge requests made beyond what was reserved (negative: give back the latest unused ones)."""
    if not _limited(store) or requests == 0:
        return
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        row = _row(now)
        if requests > 0:
            row.spent.extend([now] * requests)
        else:
            del row.spent[max(len(row.spent) + requests, 0) :]
        row.save(update_fields=["spent"])


def pause(store: Store, seconds: float) -> None:
    """GitHub rate-limited a write: hold every writer of every process back for `seconds`."""
    if not _limited(store):
        return
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        row = _row(now)
        row.paused_until = max(row.paused_until, now + seconds)
        row.save(update_fields=["spent", "paused_until"])


def remaining(store: Store) -> tuple[int, int]:
    """The requests that would fit now in this minute's and this hour's window (diagnostics, benchmarks)."""
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        spent = _row(now).spent
        minute = len(spent) - bisect.bisect_right(spent, now - MINUTE)
        return settings.GITHUB_WRITES_PER_MIN - minute, settings.GITHUB_WRITES_PER_HOUR - len(spent)
