"""The write path of webhook-sourced task columns: CI status and pull request (never mirrored from the SSOT);
and the pruning of finished deliveries (agentos_site/prune.py runs it).

These columns come from GitHub and Xcode Cloud, not from task files, so they are written here, in the
ORM only; the sync never touches them. Each change queues an audit line for the batched flush (never a
commit per webhook) and sends its event after the DB commit. A change that changes nothing (a resend,
an older delivery arriving late) writes nothing and sends nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from core.batches import delete_in_batches
from ssot import events
from ssot.audit import audit_queue
from ssot.models import Task
from webhooks.models import WebhookDelivery
from webhooks.payloads import CheckUpdate, PrUpdate, ci_state, is_older


def task_ci_update(*, update: CheckUpdate, delivery: str = "") -> list[str]:
    """Record one check's state on every task whose branch it ran on; returns the task ids changed."""
    changed: list[str] = []
    with transaction.atomic():
        for task in Task.objects.select_for_update().filter(branch=update.branch).order_by("pk"):
            status = dict(task.ci_status) if isinstance(task.ci_status, dict) else {}
            current = status.get(update.check)
            entry = update.entry()
            if current == entry:
                continue
            if isinstance(current, dict) and update.at and is_older(update.at, str(current.get("at", ""))):
                continue
            status[update.check] = entry
            task.ci_status = status
            task.ci_state = ci_state(status)
            task.save(update_fields=["ci_status", "ci_state", "updated_at"])
            audit_queue(
                actor=update.source,
                action="ci_update",
                task_id=task.task_id,
                detail=f"{update.check} on {update.branch}: {update.state}"[:2000],
                extra={
                    "check": update.check,
                    "state": update.state,
                    "conclusion": update.conclusion,
                    "url": update.url,
                    "ci_state": task.ci_state,
                    "delivery": delivery,
                },
            )
            events.broadcast_on_commit(
                events.ci_update(
                    task, source=update.source, check=update.check, state=update.state, branch=update.branch
                )
            )
            changed.append(task.task_id)
    return changed


def task_pr_update(*, update: PrUpdate, delivery: str = "") -> list[str]:
    """Attach a pull request to every task whose branch is its head; returns the task ids changed."""
    changed: list[str] = []
    with transaction.atomic():
        for task in Task.objects.select_for_update().filter(branch=update.branch).order_by("pk"):
            values = {
                "pr_number": update.number,
                "pr_state": update.state[:32],
                "pr_url": update.url[:500],
                "pr_title": update.title[:500],
            }
            if all(getattr(task, name) == value for name, value in values.items()):
                continue
            for name, value in values.items():
                setattr(task, name, value)
            task.save(update_fields=[*values, "updated_at"])
            audit_queue(
                actor="github",
                action="pr_update",
                task_id=task.task_id,
                detail=f"PR #{update.number} {update.state}: {update.title}"[:2000],
                extra={
                    "pr_number": update.number,
                    "pr_state": update.state,
                    "pr_url": update.url,
                    "action": update.action,
                    "delivery": delivery,
                },
            )
            events.broadcast_on_commit(events.pr_update(task, action=update.action))
            changed.append(task.task_id)
    return changed


def deliveries_prune(*, before: datetime) -> int:
    """Delete deliveries finished before `before`: processed (done, ignored) or given up (failed, no retry
    planned; by arrival, as they keep no processing time). Pending, processing and retrying ones stay."""
    state = WebhookDelivery.State
    finished = Q(state__in=[state.DONE, state.IGNORED], processed_at__lt=before)
    given_up = Q(state=state.FAILED, next_attempt_at__isnull=True, received_at__lt=before)
    return delete_in_batches(WebhookDelivery.objects.filter(finished | given_up))
