"""The sync's bulk upsert stores each value exactly as the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from ssot.bulk import upsert
from ssot.models import Agent

MOMENTS = [
    datetime(2025, 1, 31, 12, 0, tzinfo=UTC),
    datetime(2025, 1, 31, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2025, 12, 31, 20, 15, tzinfo=timezone(timedelta(hours=-7))),
    datetime(2025, 3, 30, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),  # in the spring DST gap
    datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),  # the repeated hour
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    None,
]


def stored(names: list[str]) -> list[str | None]:
    """The values as the database holds them (text), not as Django converts them back."""
    placeholders = ", ".join(["%s"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, CAST(last_seen AS TEXT) FROM ssot_agent WHERE name IN ({placeholders})",  # noqa: S608
            names,
        )
        by_name = dict(cursor.fetchall())
    return [by_name[name] for name in names]


@pytest.mark.django_db
def test_upserted_datetimes_are_stored_exactly_as_the_orm_stores_them() -> None:
    for n, moment in enumerate(MOMENTS):
        Agent.objects.create(name=f"orm-{n}", last_seen=moment)
    upsert(
        Agent,
        [{"name": f"bulk-{n}", "last_seen": moment} for n, moment in enumerate(MOMENTS)],
        unique="name",
        update=["last_seen"],
    )

    by_orm = stored([f"orm-{n}" for n in range(len(MOMENTS))])
    assert stored([f"bulk-{n}" for n in range(len(MOMENTS))]) == by_orm
    assert by_orm[-1] is None
    read_back = [a.last_seen for a in Agent.objects.filter(name__startswith="bulk-").order_by("id")]
    assert read_back == [moment and moment.astimezone(UTC) for moment in MOMENTS]
