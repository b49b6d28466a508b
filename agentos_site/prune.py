"""Bounded growth (SPEC section 15): rows that live only in the database are deleted once they are old.

- webhook deliveries that are finished: `done` and `ignored` ones processed, and `failed` ones given up
  (no retry planned), more than PRUNE_WEBHOOKS_DAYS ago (by arrival for the failed ones, which keep no
  processing time); a delivery still pending, in processing or waiting for a retry is never touched;
- notifications `sent` (by when they were sent) or `failed` (by when they were created) more than
  PRUNE_NOTIFICATIONS_DAYS ago; pending ones are never touched;
- django-q2's task records: the successful ones are bounded by `save_limit` as django-q2 stores them
  (Q_CLUSTER, per function); this also trims them to it should the limit have been lowered, and keeps the
  newest PRUNE_TASK_FAILURES_KEEP failures (django-q2 keeps every failure).

What mirrors the SSOT (tasks, messages, acks, audit lines, escalations, agents, the ledger and the
quarantine) is never pruned here: the SSOT is the record, and the mirror is its copy. Each app prunes its
own rows (webhooks.services, monitoring.notify), a batch at a time (core/batches.py); this module is the
policy that wires them, with django-q2's records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Failure, Success

from core.batches import delete_in_batches
from monitoring.notify import notifications_prune
from webhooks.services import deliveries_prune


@dataclass(frozen=True)
class PruneReport:
    webhook_deliveries: int
    notifications: int
    task_successes: int
    task_failures: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _keep_newest(queryset: QuerySet, keep: int) -> int:
    """Delete all but the `keep` most recently stopped rows of `queryset` (django-q2's task records)."""
    if keep <= 0:
        return 0
    boundary = queryset.order_by("-stopped", "-pk").values_list("stopped", "pk")[keep : keep + 1].first()
    if boundary is None:
        return 0
    stopped, pk = boundary
    return delete_in_batches(queryset.filter(Q(stopped__lt=stopped) | Q(stopped=stopped, pk__lte=pk)))


def _task_successes() -> int:
    """Trim django-q2's successes to its save_limit (per function when `save_limit_per` says so)."""
    if Conf.SAVE_LIMIT <= 0:
        return 0
    if Conf.SAVE_LIMIT_PER != "func":
        return _keep_newest(Success.objects.all(), Conf.SAVE_LIMIT)
    deleted = 0
    for func in Success.objects.values_list("func", flat=True).distinct().order_by("func"):
        deleted += _keep_newest(Success.objects.filter(func=func), Conf.SAVE_LIMIT)
    return deleted


def prune(*, now: datetime | None = None) -> PruneReport:
    """Delete the rows past their age or count (see the module's docstring); returns how many of each."""
    now = now or timezone.now()
    return PruneReport(
        webhook_deliveries=deliveries_prune(before=now - timedelta(days=settings.PRUNE_WEBHOOKS_DAYS)),
        notifications=notifications_prune(before=now - timedelta(days=settings.PRUNE_NOTIFICATIONS_DAYS)),
        task_successes=_task_successes(),
        task_failures=_keep_newest(Failure.objects.all(), settings.PRUNE_TASK_FAILURES_KEEP),
    )


def describe(report: PruneReport) -> str:
    """One line for the command and the log: how many rows of each kind went."""
    return "pruned " + ", ".join(
        f"{count} {name.replace('_', ' ')}" for name, count in report.as_dict().items()
    )
