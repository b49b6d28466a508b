"""An unexpected failure answers JSON to programs (under /api/ and /webhooks/) and Django's page to people,
and says nothing of what failed."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("agentos_site.tests.error_urls")]


@pytest.mark.parametrize("path", ["/api/fails/", "/webhooks/fails"])
def test_an_unexpected_failure_under_the_api_is_a_json_500(client, path):
    client.raise_request_exception = False
    response = client.get(path)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "A server error occurred.", "code": "server_error"}


def test_an_unexpected_failure_elsewhere_is_djangos_page(client):
    client.raise_request_exception = False
    response = client.get("/fails/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "secret" not in response.content.decode()
