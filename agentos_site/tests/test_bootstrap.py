"""bootstrap: what `make run` prepares before serving."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_q.models import Schedule

from ssot.models import Task
from ssot.stores.factory import reset_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh(settings, tmp_path):
    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = tmp_path / "ssot.git"
    settings.VAR_DIR = tmp_path
    reset_store()
    yield
    reset_store()


def run() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def test_first_run_makes_the_demo_an_admin_the_agents_and_the_schedules(fresh, settings):
    output = run()
    assert "admin login: admin / " in output
    users = get_user_model().objects
    assert users.get(username="admin").is_superuser
    for name in settings.AGENTS:
        agent = users.get(username=name)
        assert list(agent.groups.values_list("name", flat=True)) == ["agents"]
        assert not agent.has_usable_password()
    assert Task.objects.filter(status="awaiting_approval").exists()
    assert Schedule.objects.count() >= 5


def test_a_second_run_prints_no_password_and_adds_nothing(fresh):
    run()
    tasks, schedules = Task.objects.count(), Schedule.objects.count()
    output = run()
    assert "admin login" not in output and "agent users" not in output
    assert (Task.objects.count(), Schedule.objects.count()) == (tasks, schedules)
