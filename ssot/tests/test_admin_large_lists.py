"""The admin's lists of the tables that only grow (messages and audit lines: the SSOT is never pruned) read
one page and one count, never every row: no date hierarchy (a DISTINCT over every row's day, through a
Python function per row on SQLite: 390 ms of a 458 ms page at 100,000 messages) and no filter whose
choices are read from the table when AMP fixes them (a DISTINCT over every row each)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import amp
from ssot.models import AuditEntry, Message
from testing.api import make_user
from testing.factories import AuditEntryFactory, MessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

LISTS = {"/admin/ssot/message/": Message, "/admin/ssot/auditentry/": AuditEntry}


@pytest.fixture
def staff(client):
    client.force_login(make_user("staff"))
    return client


@pytest.fixture
def rows():
    now = timezone.now()
    for n in range(60):
        MessageFactory(timestamp=now - timedelta(days=n), type=amp.MESSAGE_TYPES[n % 2])
        AuditEntryFactory(timestamp=now - timedelta(days=n))


def _statements_on(table: str, queries: list[dict[str, str]]) -> list[str]:
    return [query["sql"] for query in queries if f'"{table}"' in query["sql"]]


def _list_statements(client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return _statements_on(LISTS[path]._meta.db_table, queries.captured_queries)


def test_the_messages_list_reads_one_page_and_one_count(staff, rows):
    statements = _list_statements(staff, "/admin/ssot/message/")
    assert len([sql for sql in statements if "COUNT(" in sql]) == 1, statements
    assert len(statements) == 2, statements


def test_the_audit_list_reads_one_page_one_count_and_its_actions_from_their_index(staff, rows):
    """Actions are free text (agents write audit lines too), so their filter reads them: the distinct
    values of the (action, timestamp) index, not the table's rows."""
    statements = _list_statements(staff, "/admin/ssot/auditentry/")
    assert len([sql for sql in statements if "COUNT(" in sql]) == 1, statements
    distinct = [sql for sql in statements if "DISTINCT" in sql]
    assert len(distinct) == 1, statements
    assert distinct[0].startswith('SELECT DISTINCT "ssot_auditentry"."action" AS "action" FROM'), distinct
    assert len(statements) == 3, statements


def test_the_message_filters_offer_amp_choices_without_reading_them(staff, rows):
    html = staff.get("/admin/ssot/message/").content.decode()
    for value in (*amp.MESSAGE_TYPES, *amp.AGENT_NAMES):
        assert f"={value}" in html, value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type__exact=task_dispatch", 30),
        ("sender__exact=executor", 60),
        ("sender__exact=reviewer", 0),
        ("recipient__exact=coordinator", 60),
    ],
)
def test_the_message_filters_filter(staff, rows, query, expected):
    response = staff.get(f"/admin/ssot/message/?{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


@pytest.mark.parametrize("path", LISTS)
def test_a_list_is_filtered_by_date(staff, rows, path):
    """By the date filter's own link ("Past 7 days": today and the seven days before, as Django counts)."""
    page = staff.get(path).content.decode()
    link = re.search(r'<a href="(\?[^"]*timestamp__gte=[^"]*)">Past 7 days</a>', page)
    assert link is not None, "no date filter"
    response = staff.get(f"{path}{html.unescape(link.group(1))}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 8
