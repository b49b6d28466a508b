"""The write budget: content-creating GitHub requests paced by two token buckets (SPEC sections 3-4).

GitHub allows about 80 content-creating requests a minute and 500 an hour (secondary rate limits); a
commit costs three (tree, commit, ref) plus one per binary file. Every process draws on the same
`WriteBudget` row, under a cross-process lock, so the limits hold for the whole deployment. The write path
reserves a commit's requests before it takes the write lock; while the budget is spent, changes wait in the
queue and batch up. A rate limit GitHub answers anyway pauses every writer until it lifts (`pause`).
The local store has no such limit: every function here is free for it.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction

from ssot.locking import exclusive
from ssot.models import WriteBudget
from ssot.stores.base import Store

COMMIT_COST = 3  # create tree, create commit, update ref


def _limited(store: Store) -> bool:
    return store.backend == "github"


def _bucket(store: Store, now: float) -> WriteBudget:
    """The row, refilled to `now` (call under the budget lock)."""
    per_min, per_hour = settings.GITHUB_WRITES_PER_MIN, settings.GITHUB_WRITES_PER_HOUR
    row, _ = WriteBudget.objects.get_or_create(
        repository=settings.GITHUB_SSOT_REPO,
        defaults={"minute_tokens": per_min, "hour_tokens": per_hour, "updated_at": now},
    )
    elapsed = max(now - row.updated_at, 0.0)
    row.minute_tokens = min(per_min, row.minute_tokens + elapsed * per_min / 60)
    row.hour_tokens = min(per_hour, row.hour_tokens + elapsed * per_hour / 3600)
    row.updated_at = now
    return row


def _wait_for(row: WriteBudget, cost: float, now: float) -> float:
    """Seconds until the buckets hold `cost` tokens and no pause is in force."""
    per_min, per_hour = settings.GITHUB_WRITES_PER_MIN, settings.GITHUB_WRITES_PER_HOUR
    minute = max(cost - row.minute_tokens, 0.0) * 60 / per_min
    hour = max(cost - row.hour_tokens, 0.0) * 3600 / per_hour
    return max(minute, hour, row.paused_until - now, 0.0)


def reserve(store: Store, cost: int = COMMIT_COST) -> float:
    """Take `cost` requests from the budget and return 0, or return the seconds until they are there
    (taking nothing). Free for stores without a budget."""
    if not _limited(store):
        return 0.0
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        row = _bucket(store, now)
        wait = _wait_for(row, cost, now)
        if wait == 0:
            row.minute_tokens -= cost
            row.hour_tokens -= cost
        row.save()
        return wait


def spend(store: Store, requests: int) -> None:
    """Charge requests made beyond what was reserved (negative: give back what was not used)."""
    if not _limited(store) or requests == 0:
        return
    with exclusive("write-budget"), transaction.atomic():
        row = _bucket(store, time.time())
        row.minute_tokens -= requests
        row.hour_tokens -= requests
        row.save()


def pause(store: Store, seconds: float) -> None:
    """GitHub rate-limited a write: hold every writer of every process back for `seconds`."""
    if not _limited(store):
        return
    with exclusive("write-budget"), transaction.atomic():
        now = time.time()
        row = _bucket(store, now)
        row.paused_until = max(row.paused_until, now + seconds)
        row.save()


def remaining(store: Store) -> tuple[float, float]:
    """The requests left this minute and this hour (diagnostics and benchmarks)."""
    with exclusive("write-budget"), transaction.atomic():
        row = _bucket(store, time.time())
        return row.minute_tokens, row.hour_tokens
