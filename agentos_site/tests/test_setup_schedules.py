"""`setup_schedules`: every django-q2 schedule once, by name, following the settings and the code's paths."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule
from django_q.tasks import schedule as django_q_schedule

pytestmark = pytest.mark.django_db


def run(command: str, **options) -> str:
    out = StringIO()
    call_command(command, stdout=out, **options)
    return out.getvalue()


def test_setup_schedules_registers_every_schedule_once(settings):
    settings.HEARTBEAT_INTERVAL_SEC, settings.SSOT_POLL_SEC, settings.AUDIT_FLUSH_SEC = 60, 60, 120

    first = run("setup_schedules")
    second = run("setup_schedules")

    assert sorted(Schedule.objects.values_list("name", "func", "schedule_type", "minutes")) == [
        ("agentos: SSOT poll", "ssot.tasks.ssot_poll", "I", 1),
        ("agentos: audit flush", "ssot.tasks.audit_flush", "I", 2),
        ("agentos: heartbeat check", "monitoring.tasks.heartbeat_check", "I", 1),
        ("agentos: notifications", "monitoring.tasks.notifications_send", "I", 1),
        ("agentos: prune", "agentos_site.tasks.prune", "I", 1440),
        ("agentos: webhook retries", "webhooks.tasks.webhook_retries", "I", 1),
    ]
    assert first.count("created: ") == 6
    assert second.count("unchanged: ") == 6
    assert "notifications every 1 min (every 30 s, rounded up)" in second


def test_setup_schedules_follows_the_settings(settings):
    run("setup_schedules")
    settings.HEARTBEAT_INTERVAL_SEC = 150
    before = Schedule.objects.get(name="agentos: heartbeat check")

    output = run("setup_schedules")

    after = Schedule.objects.get(name="agentos: heartbeat check")
    assert "updated: agentos: heartbeat check every 3 min (every 150 s, rounded up)" in output
    assert (after.pk, after.minutes, after.next_run) == (before.pk, 3, before.next_run)
    assert Schedule.objects.count() == 6


def test_a_schedule_stored_by_an_earlier_version_is_repointed_to_the_moved_entry_point():
    """Before issue 12 every entry point lived in monitoring.tasks; a deploy's setup_schedules moves them."""
    old = {
        "agentos: SSOT poll": "monitoring.tasks.ssot_poll",
        "agentos: audit flush": "monitoring.tasks.audit_flush",
        "agentos: webhook retries": "monitoring.tasks.webhook_retries",
        "agentos: prune": "monitoring.tasks.prune",
    }
    for name, func in old.items():
        django_q_schedule(func, name=name, schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)
    kept = Schedule.objects.get(name="agentos: SSOT poll")

    output = run("setup_schedules")

    assert output.count("updated: ") == 4 and output.count("created: ") == 2
    assert dict(Schedule.objects.filter(name__in=old).values_list("name", "func")) == {
        "agentos: SSOT poll": "ssot.tasks.ssot_poll",
        "agentos: audit flush": "ssot.tasks.audit_flush",
        "agentos: webhook retries": "webhooks.tasks.webhook_retries",
        "agentos: prune": "agentos_site.tasks.prune",
    }
    assert Schedule.objects.get(name="agentos: SSOT poll").pk == kept.pk
    assert Schedule.objects.count() == 6


def test_every_scheduled_path_imports_and_names_a_function():
    """What the worker will import: a path that does not resolve would fail only when the schedule is due."""
    from django.utils.module_loading import import_string

    run("setup_schedules")

    for func in Schedule.objects.values_list("func", flat=True):
        assert callable(import_string(func)), func
