"""Paging through a list sees every row exactly once, even when many rows share the value the list is
ordered by (agents send messages within the same second; one sync stamps many tasks at once).

Each list's order ends with its primary key, so pages cut from it never overlap or leave a gap: ordered
by a column with ties alone, PostgreSQL sorts the ties of each page anew (`LIMIT n` picks them by a
bounded heap), and a row could come twice and another never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ssot.models import AuditEntry, Escalation, Message, Task
from testing.api import jwt_client, make_user
from testing.factories import AuditEntryFactory, EscalationFactory, MessageFactory, TaskFactory

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)

# path -> (make n rows, give row `pk` the ordering value `when`, the key the list answers each row by)
LISTS = {
    "/api/messages/": (
        lambda n: [MessageFactory.create().pk for _ in range(n)],
        lambda pk, when: Message.objects.filter(pk=pk).update(timestamp=when),
        "msg_id",
    ),
    "/api/tasks/": (
        lambda n: [TaskFactory.create().pk for _ in range(n)],
        lambda pk, when: Task.objects.filter(pk=pk).update(updated_at=when),
        "task_id",
    ),
    "/api/escalations/": (
        lambda n: [EscalationFactory.create().pk for _ in range(n)],
        lambda pk, when: Escalation.objects.filter(pk=pk).update(created_at=when),
        "msg_id",
    ),
    "/api/audit/": (
        lambda n: [AuditEntryFactory.create().pk for _ in range(n)],
        lambda pk, when: AuditEntry.objects.filter(pk=pk).update(timestamp=when),
        "id",
    ),
}


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
    make, stamp, key = LISTS[path]
    for pk in make(60):
        stamp(pk, BASE)

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
    make, stamp, key = LISTS[path]
    with transaction.atomic():
        for pk, seconds in zip(make(len(offsets)), offsets, strict=True):
            stamp(pk, BASE - timedelta(seconds=seconds))

        seen = _all_pages(staff, path, key, limit=limit)

        assert len(seen) == len(offsets)
        assert len(set(seen)) == len(offsets), "a row came twice, so another never came"
        transaction.set_rollback(True)
