"""Processing of stored webhook deliveries, after the response, durably.

The choice: django-q2 plus a durable retry. The view stores the delivery (GUID unique) and hands its
id to django-q2 (`async_task`): with the ORM broker (embedded) the queue entry is written in the same
transaction as the row; with Redis (REDIS_URL) right after that transaction commits, so a worker never
sees an id before its row. A worker processes it a moment later, never inside the request. The queue
alone is not durable (a lost enqueue, a worker killed mid-task), so the row is the source of truth:
every delivery carries `next_attempt_at`, and `retry_due()` (scheduled every minute) processes what
is due. In tests, django-q2's sync mode (Q_CLUSTER["sync"]) runs the task inline after the commit.

A delivery is processed by whoever *claims* it first, with one conditional UPDATE (the healthchecks
pattern), so the queued task, the retry loop and a replay never process it twice at once:

    pending --claim--> processing --> done | ignored
                           |--error--> failed, next_attempt_at = now + 30 s * 2^(attempts-1)
                           |--error after MAX_ATTEMPTS--> failed, next_attempt_at = None (given up)

A claim holds a lease (`next_attempt_at` = now + LEASE): a worker that died mid-task is retried when it
expires. A fresh delivery is due PENDING_GRACE after it arrived, in case its queued task is lost.
A push also claims the other pushes still waiting for their task and answers them with the same sync
(`_claim_waiting_pushes`): a burst of pushes costs one sync, not one each; and a push stored while
another still waits is not queued at all, since that one's batch will carry it
(`_carried_by_a_waiting_push`).
`manage.py webhooks_replay` forces a re-run of failed or chosen deliveries. Processing is idempotent
(the sync is; CI and PR updates that change nothing write nothing), so a re-run is safe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ssot.audit import audit_queue
from ssot.stores.factory import branch, webhook_repo_name
from ssot.sync import SyncReport, sync
from webhooks import payloads
from webhooks.models import WebhookDelivery
from webhooks.services import task_ci_update, task_pr_update

log = logging.getLogger(__name__)

State = WebhookDelivery.State

MAX_ATTEMPTS = 5
BACKOFF_BASE_SEC = 30
LEASE_SEC = 300  # longer than the django-q2 task timeout (120 s)
PENDING_GRACE_SEC = 60
PUSH_BATCH = 200
RETRY_BATCH = 200
PROCESS_FUNCTION = "webhooks.processing.process_delivery"


@dataclass(frozen=True)
class Outcome:
    state: str
    note: str


# -- queueing ------------------------------------------------------------------------------------------


def first_due() -> datetime:
    """When a fresh delivery becomes due for `retry_due` if its queued task never ran."""
    return timezone.now() + timedelta(seconds=PENDING_GRACE_SEC)


@functools.cache
def _broker() -> Any:
    """One django-q2 broker per process. `async_task` would build one per call otherwise: for Redis a
    new client, connection and handshake per delivery, most of a webhook request's time."""
    from django_q.brokers import get_broker

    return get_broker()


def enqueue(pk: int) -> None:
    """Queue the processing of a stored delivery. If the broker fails, retry_due still processes it."""
    from django_q.tasks import async_task

    inline = bool(settings.Q_CLUSTER.get("sync", False))  # django-q2's sync mode (tests): run it now
    try:
        # A savepoint: a broker insert that fails leaves the caller's transaction usable. (Outside one,
        # the ORM broker would also close and reopen the connection, most of a request's time on SQLite.)
        with contextlib.nullcontext() if inline else transaction.atomic():
            async_task(
                PROCESS_FUNCTION, pk, task_name=f"webhook-{pk}", save=False, sync=inline, broker=_broker()
            )
    except Exception:
        # The broker is down: the row is due at `first_due`, and retry_due processes it then.
        log.exception("could not queue webhook delivery %s; retry_due will process it", pk)


def enqueue_with_commit(pk: int) -> None:
    """Queue a delivery stored in the current transaction: with it (ORM broker) or right after it."""
    if settings.Q_CLUSTER.get("orm") and not settings.Q_CLUSTER.get("sync"):
        # The queue is a table of the same database: the row and its queue entry commit together.
        enqueue(pk)
    else:
        # Redis (or sync mode) would see the id before the row is committed.
        transaction.on_commit(lambda: enqueue(pk))


def delivery_store(
    *, source: str, guid: str, event: str, action: str, headers: dict[str, str], body: bytes
) -> WebhookDelivery | None:
    """Store a verified delivery and queue its processing; None when the GUID is known (a redelivery)."""
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                source=source,
                guid=guid,
                event=event[:64],
                action=action[:64],
                headers=headers,
                body=body,
                next_attempt_at=first_due(),
            )
            if not _carried_by_a_waiting_push(delivery):
                enqueue_with_commit(delivery.pk)
    except IntegrityError:
        return None
    return delivery


def delivery_refuse(
    *, source: str, guid: str, event: str, headers: dict[str, str], body: bytes, reason: str
) -> None:
    """Store a verified delivery whose body the strict reader refuses: failed with the reason, never queued
    nor retried (the same bytes would be refused again). A known GUID (a redelivery) stores nothing."""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                source=source,
                guid=guid,
                event=event[:64],
                headers=headers,
                body=body,
                state=State.FAILED,
                next_attempt_at=None,
                error=reason[:4000],
            )
    except IntegrityError:
        return
    log.warning("%s webhook %s refused: %s", source, guid, reason)


def _carried_by_a_waiting_push(delivery: WebhookDelivery) -> bool:
    """Whether a push needs no task of its own: another push waits for its task, and the batch that
    claims that one will claim this one too (`_claim_waiting_pushes`).

    The waiting push is locked until this transaction commits (a row lock on PostgreSQL; on SQLite the
    transaction holds the database's write lock from its start), so no batch can claim it and finish
    looking for waiting pushes before this one is visible. Under a burst, deliveries then cost the
    queue nothing; if the carrier's task is lost, `retry_due` processes them all after the grace.
    """
    if delivery.source != "github" or delivery.event != "push":
        return False
    # Any one waiting push will do (no ORDER BY: the first the state index finds, however long the
    # backlog). Plain SQL: on every push delivery, the ORM's query building cost more than the query.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {WebhookDelivery._meta.db_table} "  # noqa: S608 (no user input)
            f"WHERE state = %s AND source = %s AND event = %s AND id <> %s LIMIT 1{lock}",
            [State.PENDING, "github", "push", delivery.pk],
        )
        return cursor.fetchone() is not None


# -- processing ----------------------------------------------------------------------------------------


def _claim(pk: int, *, force: bool) -> WebhookDelivery | None:
    now = timezone.now()
    lease_expired = Q(state=State.PROCESSING, next_attempt_at__lte=now)
    if force:
        claimable = ~Q(state=State.PROCESSING) | lease_expired
    else:
        claimable = Q(state=State.PENDING) | Q(state=State.FAILED, next_attempt_at__lte=now) | lease_expired
    claimed = (
        WebhookDelivery.objects.filter(claimable, pk=pk).update(
            state=State.PROCESSING,
            attempts=F("attempts") + 1,
            next_attempt_at=now + timedelta(seconds=LEASE_SEC),
        )
        == 1
    )
    return WebhookDelivery.objects.filter(pk=pk).first() if claimed else None


def process_delivery(pk: int, *, force: bool = False) -> str:
    """Process one delivery if it can be claimed; returns its state afterwards.

    `force` (a replay) also re-runs a done, ignored or given-up delivery. A push also takes the other
    pushes still waiting for their task and answers them all with one sync (see `_claim_waiting_pushes`).
    """
    delivery = _claim(pk, force=force)
    if delivery is None:
        return WebhookDelivery.objects.filter(pk=pk).values_list("state", flat=True).first() or "missing"
    batch = [delivery]
    if delivery.source == "github" and delivery.event == "push":
        batch += _claim_waiting_pushes(exclude=pk)
    shared_sync = SharedSync()
    state = ""
    for claimed in batch:
        # Only this claim may record the result: if its lease expired and another run claimed the row,
        # `attempts` moved on and these updates match nothing.
        mine = WebhookDelivery.objects.filter(
            pk=claimed.pk, state=State.PROCESSING, attempts=claimed.attempts
        )
        try:
            outcome_state = _process(claimed, mine, shared_sync).state
        except Exception as exc:
            _failed(claimed, mine, exc)
            outcome_state = State.FAILED
        if claimed.pk == pk:
            state = outcome_state
    return state


def _claim_waiting_pushes(*, exclude: int) -> list[WebhookDelivery]:
    """Claim the push deliveries still waiting for their task (oldest first, up to PUSH_BATCH).

    Each was stored after its push was complete (GitHub and the hook send a delivery once the ref
    has moved), and they are all claimed before the sync reads the head: one sync to that head
    answers every one of them. Their own tasks, if they have one, then find nothing to claim. A
    burst of pushes costs one sync, not one per delivery.

    It looks again after each claim until it finds no new waiting push: a push stored while it was
    claiming may have counted on being carried by one it claimed (`_carried_by_a_waiting_push`).
    When the batch is full, the oldest push still waiting is given a task, for the same reason.
    """
    claimed: list[int] = []
    seen = {exclude}
    lease = timezone.now() + timedelta(seconds=LEASE_SEC)
    while len(claimed) < PUSH_BATCH - 1:
        waiting = [pk for pk in _waiting_pushes(PUSH_BATCH) if pk not in seen][
            : PUSH_BATCH - 1 - len(claimed)
        ]
        if not waiting:
            break
        seen.update(waiting)
        claimed += _claim_pending(waiting, lease)
    else:
        for pk in _waiting_pushes(1):
            enqueue(pk)
    return list(WebhookDelivery.objects.filter(pk__in=claimed).order_by("pk"))


def _claim_pending(pks: list[int], lease: datetime) -> list[int]:
    """Claim those of `pks` still pending with one statement; returns the ones this call claimed.

    `UPDATE ... RETURNING` (SQLite 3.35+, PostgreSQL): one row lock pass instead of one UPDATE per
    delivery, so a batch holds SQLite's write lock, which daphne's inserts wait for, a moment only.
    """
    table = WebhookDelivery._meta.db_table
    placeholders = ", ".join(["%s"] * len(pks))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET state = %s, attempts = attempts + 1, next_attempt_at = %s "  # noqa: S608
            f"WHERE state = %s AND id IN ({placeholders}) RETURNING id",
            [State.PROCESSING, connection.ops.adapt_datetimefield_value(lease), State.PENDING, *pks],
        )
        return [row[0] for row in cursor.fetchall()]


def _waiting_pushes(limit: int) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(source="github", event="push", state=State.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


class SharedSync:
    """One sync for a batch of push deliveries: run at the first call; later calls get its report, or
    its error again (each delivery of the batch then fails, and is retried, on its own)."""

    def __init__(self) -> None:
        self._report: SyncReport | None = None
        self._error: Exception | None = None

    def __call__(self) -> SyncReport:
        if self._error is not None:
            raise self._error
        if self._report is None:
            try:
                self._report = sync()
            except Exception as exc:
                self._error = exc
                raise
        return self._report


def _failed(delivery: WebhookDelivery, mine: QuerySet, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:4000]
    if isinstance(exc, payloads.PayloadError):
        # The stored body is refused: another attempt would read the same bytes.
        log.error("webhook %s cannot be read, not retried: %s", delivery.guid, error)
        mine.update(state=State.FAILED, next_attempt_at=None, error=error)
        return
    if delivery.attempts >= MAX_ATTEMPTS:
        retry_at = None
        log.error("webhook %s failed %d times, giving up: %s", delivery.guid, delivery.attempts, error)
    else:
        retry_at = timezone.now() + timedelta(seconds=BACKOFF_BASE_SEC * 2 ** (delivery.attempts - 1))
        log.warning(
            "webhook %s failed (attempt %d), retried later: %s", delivery.guid, delivery.attempts, error
        )
    mine.update(state=State.FAILED, next_attempt_at=retry_at, error=error)


def _finish(mine: QuerySet, outcome: Outcome) -> None:
    mine.update(
        state=outcome.state, next_attempt_at=None, error=outcome.note[:4000], processed_at=timezone.now()
    )


def _process(delivery: WebhookDelivery, mine: QuerySet, shared_sync: SharedSync) -> Outcome:
    headers = delivery.headers if isinstance(delivery.headers, dict) else {}
    payload = payloads.decode(bytes(delivery.body), str(headers.get("Content-Type", "application/json")))
    if delivery.source == "github" and delivery.event == "push":
        # The sync runs its own transactions under the mirror lock; the audit line and the outcome are
        # then recorded together.
        outcome, record = _push(delivery, payload, shared_sync)
        with transaction.atomic():
            record()
            _finish(mine, outcome)
        return outcome
    with transaction.atomic():
        outcome = _other(delivery, payload)
        _finish(mine, outcome)
    return outcome


def _push(
    delivery: WebhookDelivery, payload: dict[str, Any], shared_sync: SharedSync
) -> tuple[Outcome, Callable[[], object]]:
    """Sync a push to the SSOT (or ignore another one); returns the outcome and its audit line to write."""
    repository = payloads.text(payload, "repository", "full_name")
    ref = payloads.text(payload, "ref")
    pusher = payloads.text(payload, "pusher", "name") or "github"
    expected_ref = f"refs/heads/{branch()}"
    if repository != webhook_repo_name() or ref != expected_ref:
        note = (
            f"ignored: push to {repository or '?'} {ref or '?'} "
            f"(the SSOT is {webhook_repo_name()} {expected_ref})"
        )
        return Outcome(State.IGNORED, note), lambda: _audit(delivery, note)
    # The payload's commit list is not trusted (it can be truncated or forged by a mistaken secret
    # holder); the sync diffs the trees itself, from the mirrored head to the store's head.
    report = shared_sync()
    before, after = payloads.text(payload, "before"), payloads.text(payload, "after")
    note = (
        f"sync {report.mode} to {(report.head or 'nothing')[:10]}: {report.files_read} read, "
        f"{report.files_deleted} deleted"
    )
    return Outcome(State.DONE, note), lambda: audit_queue(
        actor=pusher[:150],
        action="ssot_push",
        detail=f"{ref} {before[:10]}..{after[:10]}: {note}",
        extra={"delivery": delivery.guid, "head": report.head or ""},
    )


def _other(delivery: WebhookDelivery, payload: dict[str, Any]) -> Outcome:
    if delivery.source == "xcode":
        updates = payloads.xcode_build(payload)
        if not updates:
            note = f"ignored: Xcode Cloud {delivery.event or 'event'} without a build on a branch"
            _audit(delivery, note)
            return Outcome(State.IGNORED, note)
        return _ci(delivery, updates)
    if delivery.event == "ping":
        note = f"ping from hook {payload.get('hook_id', '?')}"
        _audit(delivery, note)
        return Outcome(State.DONE, note)
    if delivery.event == "pull_request":
        update = payloads.pull_request(payload)
        if update is None:
            note = "ignored: a pull request without a head branch of this repository"
            _audit(delivery, note)
            return Outcome(State.IGNORED, note)
        changed = task_pr_update(update=update, delivery=delivery.guid)
        return _applied(delivery, f"PR #{update.number} {update.state} on {update.branch}", changed)
    if delivery.event in payloads.CI_EVENTS:
        updates = payloads.CI_EVENTS[delivery.event](payload)
        if not updates:
            note = f"ignored: {delivery.event} without a head branch"
            _audit(delivery, note)
            return Outcome(State.IGNORED, note)
        return _ci(delivery, updates)
    note = f"stored: nothing to do for {delivery.event}"
    _audit(delivery, note)
    return Outcome(State.IGNORED, note)


def _ci(delivery: WebhookDelivery, updates: list[payloads.CheckUpdate]) -> Outcome:
    changed: list[str] = []
    for update in updates:
        changed += task_ci_update(update=update, delivery=delivery.guid)
    described = ", ".join(f"{u.check} {u.state} on {u.branch}" for u in updates)
    return _applied(delivery, described, changed)


def _applied(delivery: WebhookDelivery, described: str, changed: list[str]) -> Outcome:
    if changed:
        return Outcome(State.DONE, f"{described}: tasks {', '.join(changed)}")
    # Nothing changed: no task on that branch yet, or a resend of what is already recorded.
    note = f"{described}: no task changed"
    _audit(delivery, note)
    return Outcome(State.DONE, note)


def _audit(delivery: WebhookDelivery, note: str) -> None:
    audit_queue(
        actor="xcode_cloud" if delivery.source == "xcode" else "github",
        action="webhook",
        detail=f"{delivery.event} {delivery.action}: {note}".replace("  ", " ")[:2000],
        extra={"delivery": delivery.guid, "event": delivery.event},
    )


# -- the durable retry -------------------------------------------------------------------------------


def retry_due(*, limit: int = RETRY_BATCH) -> int:
    """Process deliveries whose queued task was lost, whose worker died, or whose backoff is over."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            state__in=[State.PENDING, State.FAILED, State.PROCESSING], next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        process_delivery(pk)
    return len(due)
