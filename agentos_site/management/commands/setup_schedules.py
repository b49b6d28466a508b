"""setup_schedules: register every django-q2 schedule, by name; running it again changes nothing.

A schedule is found by its name and repointed: a deploy that moved an entry point updates the rows an
earlier version stored. The paths are taken from the functions themselves, so none can go stale.

django-q2 schedules count in whole minutes (`Schedule.MINUTES`, at least 1) and its scheduler looks
for due schedules about every 30 seconds, so an interval under a minute runs once a minute and any
interval is rounded up to whole minutes. The command says so when it rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from agentos_site import tasks as site_tasks
from monitoring import tasks as monitoring_tasks
from monitoring.services import schedule_minutes
from ssot import tasks as ssot_tasks
from webhooks import tasks as webhooks_tasks

PREFIX = "agentos:"
# Once a day: what it deletes is a month old.
PRUNE_SEC = 24 * 3600


def func_path(function: Callable[..., Any]) -> str:
    """The dotted path django-q2 stores and imports to run `function`."""
    return f"{function.__module__}.{function.__qualname__}"


@dataclass(frozen=True)
class Plan:
    name: str
    func: str
    seconds: int

    @property
    def minutes(self) -> int:
        return schedule_minutes(self.seconds)


def plans() -> list[Plan]:
    return [
        # The heartbeat check also runs the ACK scan and the stale-sync check, then sends notifications.
        Plan(
            f"{PREFIX} heartbeat check",
            func_path(monitoring_tasks.heartbeat_check),
            settings.HEARTBEAT_INTERVAL_SEC,
        ),
        Plan(f"{PREFIX} SSOT poll", func_path(ssot_tasks.ssot_poll), settings.SSOT_POLL_SEC),
        Plan(f"{PREFIX} audit flush", func_path(ssot_tasks.audit_flush), settings.AUDIT_FLUSH_SEC),
        Plan(f"{PREFIX} webhook retries", func_path(webhooks_tasks.webhook_retries), 60),
        Plan(f"{PREFIX} notifications", func_path(monitoring_tasks.notifications_send), 30),
        Plan(f"{PREFIX} prune", func_path(site_tasks.prune), PRUNE_SEC),
    ]


class Command(BaseCommand):
    help = "Register the django-q2 schedules (heartbeat + ACK scan, SSOT poll, audit flush, retries, prune)."

    def handle(self, *args, **options):
        for plan in plans():
            outcome = self._register(plan)
            rounded = f" (every {plan.seconds} s, rounded up)" if plan.minutes * 60 != plan.seconds else ""
            self.stdout.write(f"{outcome}: {plan.name} every {plan.minutes} min{rounded}")

    @transaction.atomic
    def _register(self, plan: Plan) -> str:
        wanted = {
            "func": plan.func,
            "schedule_type": Schedule.MINUTES,
            "minutes": plan.minutes,
            "repeats": -1,
        }
        existing = list(Schedule.objects.select_for_update().filter(name=plan.name).order_by("pk"))
        # Duplicates can only come from hand edits; one schedule per name is the invariant.
        Schedule.objects.filter(pk__in=[s.pk for s in existing[1:]]).delete()
        current = existing[0] if existing else None
        if current is not None and all(getattr(current, key) == value for key, value in wanted.items()):
            return "unchanged"
        _, created = Schedule.objects.update_or_create(
            name=plan.name, defaults=wanted, create_defaults={**wanted, "next_run": timezone.now()}
        )
        return "created" if created else "updated"
