"""Paging through a list sees every row exactly once, even when many rows share the value the list is
ordered by (agents send messages within the same second; one sync stamps many tasks at once).

Each list's order ends with its primary key, so pages cut from it never overlap or leave a gap: ordered
by a column with ties alone, PostgreSQL sorts the ties of each page anew (`LIMIT n` picks them by a
bounded heap), and a row could come twice and another never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from testing.api import jwt_client, make_user
from testing.factories import AuditEntryFactory, EscalationFactory, MessageFactory, TaskFactory

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)

# path -> (a factory of its rows, the column the list is ordered by, the key it answers each row by)
LISTS: dict[str, tuple[Any, str, str]] = {
    "/api/messages/": (MessageFactory, "timestamp", "msg_id"),
    "/api/tasks/": (TaskFactory, "updated_at", "task_id"),
    "/api/escalations/": (EscalationFactory, "created_at", "msg_id"),
    "/api/audit/": (AuditEntryFactory, "timestamp", "id"),
}


def _rows(path: str, stamps: list[datetime]) -> str:
    """A row of `path`'s list for each stamp, its ordering column set to it (by an update: `auto_now`
    columns ignore a value given at creation); the key the list answers each row by."""
    factory, column, key = LISTS[path]
    for stamp in stamps:
        row = factory.create()
        type(row).objects.filter(pk=row.pk).update(**{column: stamp})
    return key


@pytest.fixture
def staff(api_settings):
    return jwt_client(make_user("staff"))


def _all_pages(client, path: str, key: str, limit: int) -> list[object]:
    seen: list[object] = []
    offset = 0
    while True:
        response = client.get(path, {"limit": limit, "offset": offset})
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [row[key] for row in body["results"]]
        offset += limit
        if offset >= body["count"]:
            return seen


@pytest.mark.parametrize("path", LISTS)
def test_pages_of_rows_that_all_share_their_ordering_value_hold_each_row_once(staff, path):
    key = _rows(path, [BASE] * 60)

    seen = _all_pages(staff, path, key, limit=7)

    assert len(seen) == 60
    assert len(set(seen)) == 60, "a row came twice, so another never came"
    everything = [row[key] for row in staff.get(path, {"limit": 500}).json()["results"]]
    assert seen == everything


@pytest.mark.parametrize("path", LISTS)
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40),
    limit=st.integers(min_value=1, max_value=12),
)
def test_pages_hold_each_row_once_whatever_the_ties(staff, path, offsets, limit):
    """Rows stamped with a few values (many ties, in any arrangement), read in pages of any size."""
    with transaction.atomic():
        key = _rows(path, [BASE - timedelta(seconds=seconds) for seconds in offsets])
        seen = _all_pages(staff, path, key, limit=limit)

        assert len(seen) == len(offsets)
        assert len(set(seen)) == len(offsets), "a row came twice, so another never came"
        assert seen == [row[key] for row in staff.get(path, {"limit": 500}).json()["results"]]
        transaction.set_rollback(True)
