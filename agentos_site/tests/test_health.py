"""GET /healthz: liveness of the database, the channel layer and the SSOT, with no auth and no data."""

from __future__ import annotations

import pytest

from ssot.stores.factory import reset_store

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_everything_answers(client, store):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok", "ssot": "ok", "ssot_sync": "ok"},
    }
    assert client.get("/healthz/").status_code == 200
    assert client.get("/healthz?ready=1").status_code == 200


def test_healthz_is_503_when_the_ssot_is_unreachable(client, settings, tmp_path):
    broken = tmp_path / "gone.git"
    broken.write_text("not a repository")
    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = broken
    reset_store()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["ssot"] == "down"
    assert str(tmp_path) not in response.content.decode()
    reset_store()


def test_healthz_refuses_other_methods(client, store):
    assert client.post("/healthz").status_code == 405
