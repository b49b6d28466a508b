"""WebhookDelivery moves from ssot to webhooks on a database that holds deliveries: nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from testing.factories import UserFactory
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

LAST_BEFORE = ("ssot", "0005_mirrored_json_fields")
BEFORE_THE_MOVE = [LAST_BEFORE, ("webhooks", None)]


def migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


def latest() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture(autouse=True)
def _latest_schema_afterwards() -> Iterator[None]:
    """Whatever a test does, the database ends migrated to the end, for the tests that follow."""
    yield
    migrate(latest())


def tables() -> set[str]:
    return set(connection.introspection.table_names())


def test_deliveries_stored_before_the_move_are_all_there_after_it_with_their_permissions():
    executor = migrate(BEFORE_THE_MOVE)
    assert "ssot_webhookdelivery" in tables() and "webhooks_webhookdelivery" not in tables()
    old_apps = executor.loader.project_state([LAST_BEFORE]).apps
    OldDelivery = old_apps.get_model("ssot", "WebhookDelivery")
    stored = [
        OldDelivery.objects.create(
            source="github",
            guid=f"guid-{n}",
            event="push",
            headers={"User-Agent": "GitHub-Hookshot/1"},
            body=b'{"ref": "refs/heads/main", "n": %d}' % n,
            state=state,
            attempts=n,
        )
        for n, state in enumerate(["done", "failed", "pending"])
    ]
    # A group granted the right to read deliveries, as an operator would have set it up in the admin.
    readers = Group.objects.create(name="delivery readers")
    readers.permissions.add(
        Permission.objects.get(content_type__app_label="ssot", codename="view_webhookdelivery")
    )
    user = UserFactory.create(username="auditor", is_staff=True, groups=["delivery readers"])

    migrate(latest())

    assert "webhooks_webhookdelivery" in tables() and "ssot_webhookdelivery" not in tables()
    moved = list(
        WebhookDelivery.objects.order_by("pk").values_list("pk", "guid", "state", "attempts", "headers")
    )
    assert moved == [(row.pk, row.guid, row.state, row.attempts, row.headers) for row in stored]
    assert [
        bytes(body) for body in WebhookDelivery.objects.order_by("pk").values_list("body", flat=True)
    ] == [bytes(row.body) for row in stored]
    # The table's key sequence came along: a new delivery gets the next id, not a duplicate.
    fresh = WebhookDelivery.objects.create(source="xcode", guid="after-the-move", event="build", body=b"{}")
    assert fresh.pk > stored[-1].pk
    assert ContentType.objects.filter(app_label="webhooks", model="webhookdelivery").exists()
    assert not ContentType.objects.filter(app_label="ssot", model="webhookdelivery").exists()
    user = type(user).objects.get(pk=user.pk)  # a fresh permission cache
    assert user.has_perm("webhooks.view_webhookdelivery")


def test_the_move_runs_backwards_too_keeping_the_rows():
    WebhookDelivery.objects.create(source="github", guid="kept", event="ping", body=b"{}")

    executor = migrate(BEFORE_THE_MOVE)

    old_apps = executor.loader.project_state([LAST_BEFORE]).apps
    assert list(old_apps.get_model("ssot", "WebhookDelivery").objects.values_list("guid", flat=True)) == [
        "kept"
    ]
    assert ContentType.objects.filter(app_label="ssot", model="webhookdelivery").exists()
    migrate(latest())
    assert list(WebhookDelivery.objects.values_list("guid", flat=True)) == ["kept"]
