"""The sync's bulk upsert stores each value exactly as the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from ssot.bulk import Upsert, advance, select_in, select_where, update_where
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
    writer = Upsert(Agent, unique="name", keep=("name",))
    for n, moment in enumerate(MOMENTS):
        writer.add({"name": f"bulk-{n}", "last_seen": moment})
    writer.write()

    by_orm = stored([f"orm-{n}" for n in range(len(MOMENTS))])
    assert stored([f"bulk-{n}" for n in range(len(MOMENTS))]) == by_orm
    assert by_orm[-1] is None
    read_back = [a.last_seen for a in Agent.objects.filter(name__startswith="bulk-").order_by("id")]
    assert read_back == [moment and moment.astimezone(UTC) for moment in MOMENTS]


@pytest.mark.django_db
def test_an_upsert_updates_all_but_the_kept_fields_and_leaves_the_others_alone() -> None:
    first = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    Agent.objects.create(name="executor", last_seen=first, last_seen_via="heartbeat", status="ok")
    writer = Upsert(Agent, unique="name", keep=("name", "last_seen_via"))
    writer.add({"name": "executor", "last_seen": first + timedelta(hours=1), "last_seen_via": "task"})
    writer.add({"name": "reviewer", "last_seen": first, "last_seen_via": "ack"})
    assert len(writer) == 2
    writer.write()

    assert len(writer) == 0
    rows = {a.name: (a.last_seen, a.last_seen_via, a.status) for a in Agent.objects.all()}
    assert rows == {
        "executor": (first + timedelta(hours=1), "heartbeat", "ok"),
        "reviewer": (first, "ack", "unknown"),
    }


@pytest.mark.django_db
def test_select_in_finds_the_rows_of_the_keys_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ssot.bulk.BATCH", 3)
    for n in range(7):
        Agent.objects.create(name=f"agent-{n}", status="ok" if n % 2 else "timeout")

    found = select_in(Agent, "name", [f"agent-{n}" for n in range(0, 10, 2)], ["status"])

    assert sorted(found) == [
        ("agent-0", "timeout"),
        ("agent-2", "timeout"),
        ("agent-4", "timeout"),
        ("agent-6", "timeout"),
    ]
    assert select_in(Agent, "name", []) == []


@pytest.mark.django_db
def test_advance_moves_a_time_forward_only_and_stores_it_exactly_as_the_orm_would() -> None:
    moments = [moment for moment in MOMENTS if moment is not None]
    for n, moment in enumerate(moments):
        Agent.objects.create(name=f"orm-{n}")
        Agent.objects.filter(name=f"orm-{n}").update(last_seen=moment, last_seen_via="task")
        Agent.objects.create(name=f"bulk-{n}")
    advance(
        Agent,
        key="name",
        when="last_seen",
        rows=[(f"bulk-{n}", moment, {"last_seen_via": "task"}) for n, moment in enumerate(moments)],
    )
    assert stored([f"bulk-{n}" for n in range(len(moments))]) == stored(
        [f"orm-{n}" for n in range(len(moments))]
    )

    first = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    Agent.objects.create(name="executor", last_seen=first, last_seen_via="heartbeat")
    Agent.objects.create(name="reviewer", last_seen=first, last_seen_via="heartbeat")
    advance(
        Agent,
        key="name",
        when="last_seen",
        rows=[
            ("executor", first + timedelta(seconds=1), {"last_seen_via": "message"}),
            ("reviewer", first - timedelta(seconds=1), {"last_seen_via": "message"}),
            ("nobody", first, {"last_seen_via": "message"}),
        ],
    )

    rows = {
        a.name: (a.last_seen, a.last_seen_via)
        for a in Agent.objects.filter(name__in=["executor", "reviewer"])
    }
    assert rows == {
        "executor": (first + timedelta(seconds=1), "message"),
        "reviewer": (first, "heartbeat"),  # it holds a later time: it stays
    }
    assert not Agent.objects.filter(name="nobody").exists()


@pytest.mark.django_db
def test_select_where_finds_the_rows_whose_fields_all_match() -> None:
    Agent.objects.create(name="executor", status="ok", last_seen_via="task")
    Agent.objects.create(name="reviewer", status="ok", last_seen_via="ack")

    assert select_where(Agent, {"status": "ok", "last_seen_via": "ack"}, ["name"]) == [("reviewer",)]
    assert select_where(Agent, {"status": "timeout"}, ["name"]) == []


@pytest.mark.django_db
def test_update_where_changes_only_the_rows_whose_fields_all_match() -> None:
    Agent.objects.create(name="executor", status="ok", last_seen_via="task")
    Agent.objects.create(name="reviewer", status="ok", last_seen_via="ack")

    changed = update_where(Agent, {"status": "ok", "last_seen_via": "ack"}, {"status": "timeout"})

    assert changed == 1
    assert dict(Agent.objects.values_list("name", "status")) == {"executor": "ok", "reviewer": "timeout"}
    assert update_where(Agent, {"name": "nobody"}, {"status": "ok"}) == 0
