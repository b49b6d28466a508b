"""Credentials an admin can revoke (issue 15, SPEC section 7): API keys and the per-user cutoff of JWTs."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from ssot import credentials
from ssot.models import ApiKey, AuditEntry, TokenCutoff
from testing.api import PASSWORD, make_user, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


def bearer(credential: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


def new_key(user, **kwargs) -> str:
    return credentials.apikey_create(owner=user, actor="test", **kwargs).plaintext


def manager(username: str = "keymaster"):
    user = make_user("staff", username=username)
    user.user_permissions.add(Permission.objects.get(codename="manage_keys"))
    return user


# -- API keys --------------------------------------------------------------------------------------


def test_an_api_key_authenticates_its_owner(store):
    key = new_key(make_user("executor"))
    assert key.startswith("agos_")
    response = bearer(key).post("/api/agents/executor/heartbeat/", format="json")
    assert response.status_code in (200, 201), response.content


def test_a_wrong_secret_of_a_real_key_id_is_a_401():
    key = new_key(make_user("executor"))
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = bearer(forged).get("/api/tasks/")
    assert response.status_code == 401
    assert response.json()["code"] == "key_not_valid"


@pytest.mark.parametrize("raw", ["agos_", "agos_zz_secret", "agos_0123456789ab_short"])
def test_a_malformed_key_is_a_401(raw):
    assert bearer(raw).get("/api/tasks/").status_code == 401


def test_a_key_expires(time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    key = new_key(make_user("executor"), days=1)
    assert bearer(key).get("/api/tasks/").status_code == 200
    time_machine.shift(timedelta(days=1, seconds=1))
    assert bearer(key).get("/api/tasks/").status_code == 401


def test_a_key_defaults_to_90_days():
    created = credentials.apikey_create(owner=make_user("executor"), actor="test").key
    assert created.expires_at - created.created_at == timedelta(days=90)


@pytest.mark.parametrize("days", [0, 366])
def test_a_key_lives_at_most_365_days(days):
    with pytest.raises(credentials.Invalid, match="1 to 365"):
        credentials.apikey_create(owner=make_user("executor"), days=days, actor="test")


def test_a_revoked_key_is_refused_at_the_next_request():
    user = make_user("executor")
    key = new_key(user)
    assert bearer(key).get("/api/tasks/").status_code == 200
    credentials.apikey_revoke(key_id=ApiKey.objects.get().key_id, actor="admin")
    assert bearer(key).get("/api/tasks/").status_code == 401


def test_last_used_at_moves_at_most_once_a_minute(time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    key = new_key(make_user("executor"))
    assert ApiKey.objects.get().last_used_at is None
    bearer(key).get("/api/tasks/")
    assert ApiKey.objects.get().last_used_at == start
    time_machine.shift(timedelta(seconds=59))
    bearer(key).get("/api/tasks/")
    assert ApiKey.objects.get().last_used_at == start
    time_machine.shift(timedelta(seconds=1))
    bearer(key).get("/api/tasks/")
    assert ApiKey.objects.get().last_used_at == start + timedelta(seconds=60)


def test_a_deactivated_owner_loses_its_keys_for_good():
    user = make_user("executor")
    key = new_key(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert bearer(key).get("/api/tasks/").status_code == 401
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert bearer(key).get("/api/tasks/").status_code == 401
    assert ApiKey.objects.get().revoked_by == "system"


def test_the_plaintext_is_never_in_the_database_the_logs_or_the_audit(caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user("executor")
    out = StringIO()
    call_command("apikey_create", "executor", "--name", "ci", stdout=out, stderr=StringIO())
    created = bearer(token_for("executor")).post("/api/keys/", {"name": "api"}, format="json").json()["key"]
    via_command = out.getvalue().strip()
    for key in (via_command, created):
        assert bearer(key).get("/api/tasks/").status_code == 200
        credentials.apikey_revoke(key_id=credentials.key_id_of(key), actor="admin")
    # The secret is the key's last 43 characters: it may hold "_" itself, so no split on "_" finds it
    # (a split once left a 2-character tail, found by chance in a blob SHA).
    secrets = [credentials.KEY_PATTERN.fullmatch(key).group(2) for key in (via_command, created)]
    secrets += [via_command, created]
    assert all(len(secret) >= 43 for secret in secrets)
    with connection.cursor() as cursor:
        for model in (ApiKey, AuditEntry, TokenCutoff, type(user)):
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")  # noqa: S608 (our own table names)
            dump = repr(cursor.fetchall())
            assert not any(secret in dump for secret in secrets), model
    assert not any(secret in caplog.text for secret in secrets)
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert actions.count("apikey_created") == 2
    assert actions.count("apikey_revoked") == 2
    for entry in AuditEntry.objects.filter(action__startswith="apikey_"):
        assert '"key_id"' in entry.raw


# -- commands --------------------------------------------------------------------------------------


def test_apikey_create_prints_the_key_once_and_apikey_revoke_kills_it():
    make_user("executor")
    out, err = StringIO(), StringIO()
    call_command("apikey_create", "executor", "--name", "laptop", "--days", "7", stdout=out, stderr=err)
    key = out.getvalue().strip()
    row = ApiKey.objects.get()
    assert (row.name, row.expires_at - row.created_at) == ("laptop", timedelta(days=7))
    assert key not in err.getvalue()
    revoked = StringIO()
    call_command("apikey_revoke", row.key_id, stdout=revoked)
    assert "revoked" in revoked.getvalue()
    assert bearer(key).get("/api/tasks/").status_code == 401


def test_apikey_revoke_accepts_the_whole_key_and_refuses_an_unknown_id():
    key = new_key(make_user("executor"))
    call_command("apikey_revoke", key, stdout=StringIO())
    assert ApiKey.objects.get().revoked_at is not None
    with pytest.raises(CommandError, match="No API key"):
        call_command("apikey_revoke", "000000000000", stdout=StringIO())


# -- /api/keys/ ------------------------------------------------------------------------------------


def test_an_agent_creates_lists_and_revokes_its_own_keys():
    client = bearer(token_for(make_user("executor").username))
    created = client.post("/api/keys/", {"name": "runner", "days": 30}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"].startswith(f"agos_{body['key_id']}_")
    assert (body["owner"], body["name"], body["active"]) == ("executor", "runner", True)
    listed = client.get("/api/keys/").json()
    assert [row["key_id"] for row in listed["results"]] == [body["key_id"]]
    assert "key" not in listed["results"][0]
    revoked = client.delete(f"/api/keys/{body['key_id']}/")
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert bearer(body["key"]).get("/api/tasks/").status_code == 401


def test_a_user_neither_sees_nor_revokes_anothers_key():
    other = new_key(make_user("reviewer"))
    client = bearer(token_for(make_user("executor").username))
    assert client.get("/api/keys/").json()["results"] == []
    assert client.delete(f"/api/keys/{credentials.key_id_of(other)}/").status_code == 404
    assert client.post("/api/keys/", {"owner": "reviewer"}, format="json").status_code == 403


def test_manage_keys_sees_every_key_and_creates_for_others():
    new_key(make_user("reviewer"))
    client = bearer(token_for(manager().username))
    assert len(client.get("/api/keys/").json()["results"]) == 1
    created = client.post("/api/keys/", {"owner": "reviewer", "name": "ci"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == "reviewer"
    assert client.post("/api/keys/", {"owner": "ghost"}, format="json").status_code == 422


@pytest.mark.parametrize("body", [{"days": 0}, {"days": 366}, {"name": "x" * 101}])
def test_a_key_request_out_of_bounds_is_refused(body):
    response = bearer(token_for(make_user("executor").username)).post("/api/keys/", body, format="json")
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_keys_need_credentials():
    assert APIClient().get("/api/keys/").status_code == 401


# -- one query per request ---------------------------------------------------------------------------


def _authenticate(credential: str):
    """What DRF does for a request: authenticate it, then ask whether its user is an agent."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from core.permissions import is_agent
    from ssot.authentication import ApiKeyAuthentication, RevocableJWTAuthentication

    request = Request(
        APIRequestFactory().get("/api/tasks/", HTTP_AUTHORIZATION=f"Bearer {credential}"),
        authenticators=[ApiKeyAuthentication(), RevocableJWTAuthentication()],
    )
    return request.user, is_agent(request.user)


@pytest.mark.parametrize("role, agent", [("executor", True), ("staff", False)])
@pytest.mark.parametrize("kind", ["jwt", "api key"])
def test_a_credential_its_cutoff_and_the_agent_check_cost_one_query(
    django_assert_num_queries, role, agent, kind
):
    user = make_user(role)
    credential = token_for(user.get_username()) if kind == "jwt" else new_key(user)
    ApiKey.objects.update(last_used_at=timezone.now())  # no last-use write in the counted request
    if kind == "jwt":
        credentials.tokens_revoke(user=user, reason="a cutoff row exists", actor="test")
        credential = token_for(user.get_username())
    with django_assert_num_queries(1):
        authenticated, is_an_agent = _authenticate(credential)
    assert authenticated.pk == user.pk
    assert is_an_agent is agent


def test_the_joined_cutoff_refuses_as_the_separate_query_did():
    user = make_user("executor")
    before = token_for("executor")  # issued with no cutoff row: epoch 0
    credentials.tokens_revoke(user=user, reason="signed out everywhere", actor="admin")
    after = token_for("executor")
    response = bearer(before).get("/api/tasks/")
    assert (response.status_code, response.json()["code"]) == (401, "token_revoked")
    assert bearer(after).get("/api/tasks/").status_code == 200
    # A missing row (the LEFT JOIN's NULL) reads as epoch 0, as current_epoch reads it.
    TokenCutoff.objects.filter(user=user).delete()
    assert bearer(before).get("/api/tasks/").status_code == 200
    assert bearer(after).get("/api/tasks/").status_code == 401


def test_a_token_naming_no_user_or_an_inactive_one_is_refused_as_simplejwt_does():
    from rest_framework_simplejwt.tokens import AccessToken

    user = make_user("executor")
    token = AccessToken.for_user(user)
    token[credentials.EPOCH_CLAIM] = credentials.current_epoch(user)
    del token["user_id"]
    assert bearer(str(token)).get("/api/tasks/").json()["code"] == "token_not_valid"
    ghost = AccessToken.for_user(user)
    ghost["user_id"] = user.pk + 1000
    assert bearer(str(ghost)).get("/api/tasks/").json()["code"] == "user_not_found"
    live = token_for("executor")
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal: the cutoff stays
    assert bearer(live).get("/api/tasks/").json()["code"] == "user_inactive"


# -- JWT cutoff ------------------------------------------------------------------------------------


def test_a_password_change_kills_earlier_jwts_and_new_ones_work():
    user = make_user("executor")
    old = token_for("executor")
    user.set_password("another long password")
    user.save()
    response = bearer(old).get("/api/tasks/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert bearer(token_for("executor", "another long password")).get("/api/tasks/").status_code == 200


def test_a_deactivation_kills_jwts_and_reactivation_does_not_revive_them():
    user = make_user("executor")
    old = token_for("executor")
    user.is_active = False
    user.save()
    user.is_active = True
    user.save()
    assert bearer(old).get("/api/tasks/").status_code == 401
    assert bearer(token_for("executor")).get("/api/tasks/").status_code == 200


def test_a_refresh_token_issued_before_the_cutoff_gives_nothing():
    user = make_user("executor")
    pair = APIClient().post("/api/token/", {"username": "executor", "password": PASSWORD}, format="json")
    credentials.tokens_revoke(user=user, reason="signed out everywhere", actor="admin")
    response = APIClient().post("/api/token/refresh/", {"refresh": pair.json()["refresh"]}, format="json")
    assert response.status_code == 401


def test_sign_out_everywhere_in_the_admin_refuses_earlier_jwts(client):
    target = make_user("executor")
    old = token_for("executor")
    admin = make_user("staff", username="root", is_superuser=True)
    client.force_login(admin)
    response = client.post(
        "/admin/auth/user/",
        {"action": "sign_out_everywhere", "_selected_action": [target.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "every JWT issued so far is refused; 0 browser sessions ended" in response.content.decode()
    assert bearer(old).get("/api/tasks/").status_code == 401
    assert AuditEntry.objects.filter(action="tokens_revoked", actor="root").exists()


def test_sign_out_everywhere_ends_the_users_browser_sessions_and_only_theirs(client):
    from django.test import Client

    target = make_user("staff", username="bob")
    other = make_user("staff", username="carol")
    phone, laptop, carols = Client(), Client(), Client()
    for browser, user in ((phone, target), (laptop, target), (carols, other)):
        browser.force_login(user)
        assert browser.get("/dashboard/").status_code == 200
    client.force_login(make_user("staff", username="root", is_superuser=True))
    response = client.post(
        "/admin/auth/user/", {"action": "sign_out_everywhere", "_selected_action": [target.pk]}, follow=True
    )
    # The admin capitalises the first letter of a message.
    assert "Bob: every JWT issued so far is refused; 2 browser sessions ended" in response.content.decode()
    for browser in (phone, laptop):
        assert browser.get("/dashboard/").status_code == 302  # to the login page
    assert carols.get("/dashboard/").status_code == 200
    assert client.get("/admin/").status_code == 200  # the admin who acted is still signed in


# -- the admin -------------------------------------------------------------------------------------


def test_the_admin_shows_a_new_key_once_and_revokes_it(client):
    owner = make_user("executor")
    client.force_login(make_user("staff", username="root", is_superuser=True))
    response = client.post("/admin/ssot/apikey/add/", {"owner": owner.pk, "name": "ci", "days": 30})
    assert response.status_code == 200
    page = response.content.decode()
    row = ApiKey.objects.get()
    assert f"agos_{row.key_id}_" in page
    assert "no-store" in response["Cache-Control"]
    key = page.split('id="agentos-new-key"', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
    assert bearer(key).get("/api/tasks/").status_code == 200
    assert key not in client.get(f"/admin/ssot/apikey/{row.pk}/change/").content.decode()
    revoked = client.post(
        "/admin/ssot/apikey/", {"action": "revoke_keys", "_selected_action": [row.pk]}, follow=True
    )
    assert "is revoked" in revoked.content.decode()
    assert bearer(key).get("/api/tasks/").status_code == 401


def test_the_admin_refuses_a_key_for_an_inactive_user(client):
    owner = make_user("executor", is_active=False)
    client.force_login(make_user("staff", username="root", is_superuser=True))
    response = client.post("/admin/ssot/apikey/add/", {"owner": owner.pk, "name": "ci", "days": 30})
    assert "inactive" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_decision_long_poll_takes_an_api_key_and_refuses_a_revoked_one():
    key = new_key(make_user("executor"))
    assert bearer(key).get("/api/tasks/T-404/decision/?wait=0").status_code == 404
    credentials.apikey_revoke(key_id=credentials.key_id_of(key), actor="admin")
    assert bearer(key).get("/api/tasks/T-404/decision/?wait=0").status_code == 401


def test_creations_and_revocations_reach_the_ssot_with_the_key_id_only(store):
    from ssot import services

    new = credentials.apikey_create(owner=make_user("executor"), actor="admin")
    credentials.apikey_revoke(key_id=new.key.key_id, actor="admin")

    assert services.audit_flush() == 2
    texts = [store.read(entry.sha).decode() for entry in store.list(store.head(), "audit/")]
    lines = [json.loads(line) for text in texts for line in text.splitlines() if line]
    assert [line["action"] for line in lines] == ["apikey_created", "apikey_revoked"]
    assert all(line["key_id"] == new.key.key_id for line in lines)
    secret = new.plaintext.rsplit("_", 1)[1]
    assert not any(secret in text for text in texts)
