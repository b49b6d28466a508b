"""The admin's lists of the tables that only grow (messages and audit lines: the SSOT is never pruned) read
one page and one count, never every row: no date hierarchy (a DISTINCT over every row's day, through a
Python function per row on SQLite: 390 ms of a 458 ms page at 100,000 messages) and no filter whose
choices are read from the table when AMP fixes them (a DISTINCT over every row each). Escalations and
webhook deliveries, which a stuck agent or a busy repository multiplies, have a date filter too."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import amp
from ssot.models import AuditEntry, Escalation, Message
from testing.api import make_user
from testing.factories import AuditEntryFactory, EscalationFactory, MessageFactory, WebhookDeliveryFactory
from webhooks.models import WebhookDelivery

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


def _list_statements(client, path: str, model: type[Model]) -> list[str]:
    """The statements a list's page runs on its model's table."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return _statements_on(model._meta.db_table, queries.captured_queries)


def test_the_messages_list_reads_one_page_and_one_count(staff, rows):
    statements = _list_statements(staff, "/admin/ssot/message/", Message)
    assert len([sql for sql in statements if "COUNT(" in sql]) == 1, statements
    assert len(statements) == 2, statements


def test_the_audit_list_reads_one_page_one_count_and_its_actions_from_their_index(staff, rows):
    """Actions are free text (agents write audit lines too), so their filter reads them: the distinct
    values of the (action, timestamp) index, not the table's rows."""
    statements = _list_statements(staff, "/admin/ssot/auditentry/", AuditEntry)
    assert len([sql for sql in statements if "COUNT(" in sql]) == 1, statements
    distinct = [sql for sql in statements if "DISTINCT" in sql]
    assert len(distinct) == 1, statements
    assert distinct[0].startswith('SELECT DISTINCT "ssot_auditentry"."action" AS "action" FROM'), distinct
    assert len(statements) == 3, statements


def test_the_message_filters_offer_amp_choices_without_reading_them(staff, rows):
    page = staff.get("/admin/ssot/message/").content.decode()
    offered = [f"type__exact={value}" for value in amp.MESSAGE_TYPES] + [
        f"{field}__exact={value}" for field in ("sender", "recipient") for value in amp.AGENT_NAMES
    ]
    assert [link for link in offered if link not in page] == []


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
    _filtered_by_date(staff, path)


def _filtered_by_date(client, path: str) -> None:
    """By the date filter's own link ("Past 7 days": today and the seven days before, as Django counts),
    of rows one a day back from now."""
    page = client.get(path).content.decode()
    link = re.search(r'<a href="(\?[^"]*__gte=[^"]*)">Past 7 days</a>', page)
    assert link is not None, "no date filter"
    response = client.get(f"{path}{html.unescape(link.group(1))}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 8


DATED = {"/admin/ssot/escalation/": Escalation, "/admin/webhooks/webhookdelivery/": WebhookDelivery}


@pytest.fixture
def dated_rows():
    now = timezone.now()
    for n in range(60):
        EscalationFactory(created_at=now - timedelta(days=n), severity=amp.SEVERITIES[n % 3])
        delivery = WebhookDeliveryFactory.create()
        # `received_at` is set on creation whatever is given.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=now - timedelta(days=n))


@pytest.mark.parametrize("path", DATED)
def test_escalations_and_deliveries_list_no_dates_from_every_row_and_filter_by_date(staff, dated_rows, path):
    statements = _list_statements(staff, path, DATED[path])
    assert not [sql for sql in statements if "trunc" in sql.lower()], statements
    assert len([sql for sql in statements if "COUNT(" in sql]) == 1, statements
    _filtered_by_date(staff, path)


def test_the_escalations_severity_filter_offers_amp_severities_and_filters(staff, dated_rows):
    page = staff.get("/admin/ssot/escalation/").content.decode()
    assert all(f"severity__exact={severity}" in page for severity in amp.SEVERITIES)
    assert staff.get("/admin/ssot/escalation/?severity__exact=warning").context["cl"].result_count == 20


# path -> the column its date filter reads, and the fixture that makes its rows (one a day back from now)
DATE_FILTERS = {
    "/admin/ssot/message/": ("timestamp", "rows"),
    "/admin/ssot/auditentry/": ("timestamp", "rows"),
    "/admin/ssot/escalation/": ("created_at", "dated_rows"),
    "/admin/webhooks/webhookdelivery/": ("received_at", "dated_rows"),
}


@pytest.mark.parametrize("path", DATE_FILTERS)
def test_a_date_typed_without_a_time_zone_is_read_in_the_current_one(request, staff, path):
    """Django's own links carry the time zone; a hand-typed `?<field>__gte=2026-11-25` reached the query
    as a naive datetime (a RuntimeWarning on every such request, an error under the tests)."""
    field, rows = DATE_FILTERS[path]
    request.getfixturevalue(rows)
    since = timezone.localdate() - timedelta(days=7)
    response = staff.get(path, {f"{field}__gte": since.isoformat()})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 8


@pytest.mark.parametrize("value", ["not a date", "2026-13-45", "9" * 400, "2026-11-25T25:00"])
def test_a_date_that_is_no_date_is_refused_as_django_refuses_a_bad_filter(staff, rows, value):
    response = staff.get("/admin/ssot/message/", {"timestamp__gte": value})
    assert (response.status_code, response["Location"]) == (302, "/admin/ssot/message/?e=1")
