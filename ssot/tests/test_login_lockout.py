"""Brute force (issue 15): failed logins on /admin/login/ and /api/token/ are limited per username and per
address by django-axes, with a clear message, an audit line, and an end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cache
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from ssot.lockout import lockout_audit_key
from ssot.models import AuditEntry
from testing.api import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


@pytest.fixture
def on_the_real_cache(real_login_failures) -> Iterator[None]:
    """Lockouts counted where production counts them (Redis when set); the address is cleared after."""
    yield
    AxesProxyHandler.reset_attempts(ip_address="127.0.0.1")
    for username in ("root", "executor", *(f"nobody-{n}" for n in range(1, 6))):
        AxesProxyHandler.reset_attempts(username=username)
        get_cache().delete(lockout_audit_key(username, "127.0.0.1"))


def admin_login(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def token(username: str, password: str):
    return APIClient().post("/api/token/", {"username": username, "password": password}, format="json")


@pytest.mark.usefixtures("on_the_real_cache")
def test_the_admin_login_locks_a_username_out_after_the_limit():
    make_user("staff", username="root", is_superuser=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert admin_login(client, "root", "wrong").status_code == 200
    locked = admin_login(client, "root", "wrong")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert int(locked["Retry-After"]) == 15 * 60
    # The right password does not get through while locked out.
    assert admin_login(client, "root", PASSWORD).status_code == 429
    line = AuditEntry.objects.get(action="login_locked_out")
    assert "root" in line.detail
    assert PASSWORD not in line.raw


@pytest.mark.usefixtures("on_the_real_cache")
def test_the_token_endpoint_locks_out_with_a_json_answer():
    make_user("executor")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token("executor", "wrong").status_code == 401
    locked = token("executor", "wrong")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out"
    assert "try again in 15 minutes" in locked.json()["detail"]
    assert token("executor", PASSWORD).status_code == 429
    assert AuditEntry.objects.filter(action="login_locked_out").count() == 1


@pytest.mark.usefixtures("on_the_real_cache")
def test_one_address_trying_many_usernames_is_locked_out():
    make_user("executor")
    for number in range(1, settings.AXES_FAILURE_LIMIT + 1):
        token(f"nobody-{number}", "guess")
    assert token("executor", PASSWORD).status_code == 429


def test_the_lockout_ends_after_the_cool_off(time_machine):
    # On the per-test local cache: its expiry follows the clock time-machine moves (Redis keeps its own).
    time_machine.move_to(timezone.now(), tick=False)
    make_user("executor")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token("executor", "wrong")
    assert token("executor", PASSWORD).status_code == 429
    time_machine.shift(settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert token("executor", PASSWORD).status_code == 429
    time_machine.shift(timedelta(seconds=2))
    assert token("executor", PASSWORD).status_code == 200


def test_a_success_before_the_limit_resets_the_count():
    make_user("executor")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        token("executor", "wrong")
    assert token("executor", PASSWORD).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token("executor", "wrong").status_code == 401
    assert token("executor", PASSWORD).status_code == 200
