"""The /dashboard/ page: staff only; approve and reject appear for users with the permission."""

from __future__ import annotations

import pytest

from testing.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/dashboard/")


def test_a_user_who_is_not_staff_is_sent_to_the_login(client):
    client.force_login(UserFactory(is_staff=False, password="!"))
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_approver_gets_the_page_with_the_decision_buttons_enabled(client):
    client.force_login(UserFactory(username="alice", password="!", groups=["approvers"]))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-can-approve="true"' in page
    assert 'data-ws-path="/ws/events/"' in page
    assert "/static/monitoring/dashboard.js" in page
    assert "/static/monitoring/dashboard.css" in page
    # The page loads nothing from elsewhere: no CDN.
    head = page.split("<body>")[0]
    assert "http" not in head and '"//' not in head
    assert response.cookies["csrftoken"].value


def test_staff_without_the_permission_see_no_decision_buttons(client):
    client.force_login(UserFactory(username="viewer", password="!"))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert 'data-can-approve="false"' in response.content.decode()
