"""JWT: /api/token/ and /api/token/refresh/, and `manage.py issue_token USER [--days N]`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from ssot.models import ApiKey
from testing.api import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


@pytest.mark.parametrize("path", ["/api/token/", "/api/token"])
def test_an_agent_obtains_a_token_pair_with_its_password(path):
    make_user("executor")
    response = APIClient().post(path, {"username": "executor", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


def test_a_wrong_password_is_a_401():
    make_user("executor")
    response = APIClient().post("/api/token/", {"username": "executor", "password": "guess"}, format="json")
    assert response.status_code == 401


def test_an_inactive_user_gets_no_token():
    make_user("executor", is_active=False)
    response = APIClient().post("/api/token/", {"username": "executor", "password": PASSWORD}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"username": 1}'])
def test_a_malformed_token_request_is_a_400(raw):
    response = APIClient().generic("POST", "/api/token/", raw, content_type="application/json")
    assert response.status_code == 400


def test_a_refresh_token_gives_a_new_access_token():
    make_user("executor")
    pair = (
        APIClient().post("/api/token/", {"username": "executor", "password": PASSWORD}, format="json").json()
    )
    response = APIClient().post("/api/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get("/api/tasks/").status_code == 200


def test_an_access_token_is_not_a_refresh_token():
    make_user("executor")
    pair = (
        APIClient().post("/api/token/", {"username": "executor", "password": PASSWORD}, format="json").json()
    )
    response = APIClient().post("/api/token/refresh/", {"refresh": pair["access"]}, format="json")
    assert response.status_code == 401


def test_a_token_stops_working_when_its_user_is_deactivated():
    user = make_user("executor")
    access = APIClient().post("/api/token/", {"username": "executor", "password": PASSWORD}, format="json")
    user.is_active = False
    user.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access.json()['access']}")
    assert client.get("/api/tasks/").status_code == 401


# -- issue_token ---------------------------------------------------------------------------------------


def _issue(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("issue_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_issue_token_prints_only_a_working_api_key():
    make_user("staff", username="admin")
    out, _ = _issue("admin")
    key = out.strip()
    assert out == key + "\n"
    assert key.startswith("agos_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/tasks/").status_code == 200


def test_issue_token_creates_a_revocable_key_listed_with_its_owner():
    make_user("executor")
    key = _issue("executor")[0].strip()
    row = ApiKey.objects.get()
    assert (row.owner.username, row.name) == ("executor", "issue_token")
    assert row.key_id in key
    call_command("apikey_revoke", row.key_id, stdout=StringIO())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/tasks/").status_code == 401


@pytest.mark.parametrize(("days", "expected"), [(None, 90), ("30", 30), ("365", 365)])
def test_issue_token_lasts_the_days_asked(days, expected):
    make_user("executor")
    _issue("executor", *(["--days", days] if days else []))
    row = ApiKey.objects.get()
    assert row.expires_at - row.created_at == timedelta(days=expected)


@pytest.mark.parametrize("days", ["0", "366", "-1"])
def test_issue_token_refuses_a_lifetime_out_of_range(days):
    make_user("executor")
    with pytest.raises(CommandError, match="from 1 to 365 days"):
        _issue("executor", "--days", days)


def test_issue_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user 'ghost'"):
        _issue("ghost")


def test_issue_token_refuses_an_inactive_user():
    make_user("executor", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        _issue("executor")
