"""Every query parameter is bounded: a page holds at most 500 rows, numbers stay in range, and anything
else is a 400 JSON answer that names the parameter (never a 500, never an HTML page)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.pagination import MAX_LIMIT
from testing.api import jwt_client, make_user
from testing.factories import (
    AgentFactory,
    AuditEntryFactory,
    EscalationFactory,
    MessageFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db

LISTS = ["/api/tasks/", "/api/messages/", "/api/audit/", "/api/agents/", "/api/escalations/"]


@pytest.fixture
def staff(api_settings):
    return jwt_client(make_user("staff"))


@pytest.fixture
def rows():
    """One row of every listed kind, so that a page is really read from the database."""
    TaskFactory()
    MessageFactory()
    AuditEntryFactory()
    AgentFactory()
    EscalationFactory()


def _refused(response, parameter: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "bad_request"
    assert parameter in [error["path"] for error in body["errors"]]


@pytest.mark.parametrize("path", LISTS)
def test_a_limit_past_64_bits_is_a_400_naming_limit(staff, rows, path):
    _refused(staff.get(f"{path}?limit=9223372036854775808"), "limit")


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_past_64_bits_is_a_400_naming_offset(staff, rows, path):
    _refused(staff.get(f"{path}?offset=99999999999999999999999"), "offset")


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1e3", "1.5", "9" * 5000])
def test_a_limit_that_is_not_a_page_size_is_a_400(staff, rows, path, value):
    _refused(staff.get(path, {"limit": value}), "limit")


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", ["-1", "abc", "2.5"])
def test_an_offset_that_is_not_a_position_is_a_400(staff, rows, path, value):
    _refused(staff.get(path, {"offset": value}), "offset")


def test_a_page_holds_at_most_500_rows(staff):
    assert MAX_LIMIT == 500
    response = staff.get("/api/tasks/", {"limit": MAX_LIMIT + 1})
    _refused(response, "limit")
    assert "from 1 to 500" in response.json()["errors"][0]["message"]


def test_a_page_of_500_is_served(staff):
    TaskFactory.create_batch(3)
    response = staff.get("/api/tasks/", {"limit": MAX_LIMIT, "offset": 1})
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 2


def test_the_default_page_is_50(staff):
    TaskFactory.create_batch(51)
    response = staff.get("/api/tasks/")
    assert len(response.json()["results"]) == 50
    assert "limit=50" in response.json()["next"]


def test_an_offset_past_the_rows_is_an_empty_page(staff, rows):
    response = staff.get("/api/tasks/", {"offset": 10**9})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/tasks/", "status"),
        ("/api/tasks/", "branch"),
        ("/api/tasks/", "search"),
        ("/api/messages/", "task_id"),
        ("/api/messages/", "from"),
        ("/api/audit/", "actor"),
        ("/api/escalations/", "task_id"),
    ],
)
def test_a_filter_longer_than_any_stored_value_is_a_400(staff, rows, path, parameter):
    _refused(staff.get(path, {parameter: "x" * 1001}), parameter)


@pytest.mark.parametrize(("path", "parameter"), [("/api/messages/", "to"), ("/api/audit/", "action")])
def test_a_filter_with_a_nul_character_is_a_400(staff, rows, path, parameter):
    _refused(staff.get(path, {parameter: "a\x00b"}), parameter)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(LISTS),
    limit=st.one_of(st.integers(), st.text(max_size=30)),
    offset=st.one_of(st.integers(), st.text(max_size=30)),
)
def test_any_page_parameters_answer_200_or_a_400_that_names_them(staff, rows, path, limit, offset):
    response = staff.get(path, {"limit": limit, "offset": offset})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert {error["path"] for error in response.json()["errors"]} <= {"limit", "offset"}
    else:
        assert len(response.json()["results"]) <= MAX_LIMIT


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/escalations/9223372036854775808/acknowledge/", None),
        ("/api/escalations/99999999999999999999999999/resolve/", {"reason": "done"}),
        ("/api/escalations/-1/acknowledge/", None),
        ("/api/messages/a%00b/ack/", None),
        ("/api/tasks/%00/approve/", {}),
    ],
)
def test_an_id_past_64_bits_or_unsafe_is_a_404(rows, api_settings, path, body):
    response = jwt_client(make_user("operator")).post(path, body, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/tasks/%00/", "/api/tasks/" + "x" * 5000 + "/"])
def test_a_task_id_that_cannot_be_one_is_a_404(staff, rows, path):
    response = staff.get(path)
    assert response.status_code == 404
