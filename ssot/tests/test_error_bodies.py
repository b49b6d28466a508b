"""Error bodies carry no filesystem path and no URL with credentials (issue 15: 503s named the SSOT path)."""

from __future__ import annotations

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from core.redact import public
from testing.api import jwt_client, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


def test_a_503_for_a_missing_local_ssot_does_not_name_its_path(tmp_path):
    settings.SSOT_LOCAL_PATH = tmp_path / "nowhere" / "ssot.git"
    from ssot.stores.factory import reset_store

    reset_store()
    try:
        response = jwt_client(make_user("executor")).post("/api/agents/executor/heartbeat/", format="json")
        resync = jwt_client(make_user("operator")).post("/api/sync/", {}, format="json")
        last_error = jwt_client(make_user("staff")).get("/api/sync/").json()["last_error"]
    finally:
        reset_store()
    assert response.status_code == 503
    assert response.json()["code"] == "ssot_unavailable"
    assert "SSOT_LOCAL_PATH" in response.json()["detail"]
    assert resync.status_code == 503
    assert last_error
    for body in (response.content.decode(), resync.content.decode(), last_error):
        assert str(tmp_path) not in body
        assert "/nowhere/" not in body


def test_public_keeps_api_paths_and_relative_ones():
    text = "tasks/T-1.json is quarantined; see /api/sync/ and https://github.com/o/r"
    assert public(text) == "tasks/T-1.json is quarantined; see [path] and https://github.com/o/r"


segment = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="._-"), min_size=1, max_size=12
)


@given(
    before=st.text(max_size=40),
    parts=st.lists(segment, min_size=2, max_size=6),
    after=st.sampled_from(["", " ", ": x", "'", ")"]),
)
def test_public_removes_any_absolute_path(before, parts, after):
    path = "/" + "/".join(parts)
    redacted = public(f"{before} {path}{after}")
    assert path not in redacted


@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789!$", min_size=1, max_size=20),
    scheme=st.sampled_from(["https", "redis", "postgres", "tgram"]),
)
def test_public_removes_credentials_from_urls(user, password, scheme):
    redacted = public(f"cannot reach {scheme}://{user}:{password}@host.example:6379/0 (refused)")
    assert f"{user}:{password}@" not in redacted
    assert f"{scheme}://[credentials]@host.example" in redacted
