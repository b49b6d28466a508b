"""The first page of the messages list as the table grows, through the API (GET /api/messages/?limit=50
as an agent) and in the admin (its list of messages, as a superuser): with the index the list's order is
read from (`msg_time`: timestamp, then id) and the admin list as shipped; then, in the same run on the
same rows, the admin list configured as before (a date hierarchy, filters listing the distinct values of
every row, the table counted twice), and both without the index, as before it existed (every request
sorted every message).

Run: .venv/bin/python -m bench.message_list [--messages 100000] [--requests 100]
(SQLite on a fresh var/ directory, or the database DATABASE_URL names; in process, Django's test client.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.setup import django_for_bench, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    django_for_bench("message-list")

    from datetime import UTC, datetime, timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from ssot.admin import MessageAdmin
    from ssot.models import Message
    from testing.api import make_user
    from testing.factories import MessageFactory

    start = datetime(2026, 1, 1, tzinfo=UTC)
    template = MessageFactory.build()
    columns = [f.attname for f in Message._meta.concrete_fields if not f.primary_key]
    fields = {name: getattr(template, name) for name in columns}
    Message.objects.bulk_create(
        (
            Message(
                **{
                    **fields,
                    "msg_id": f"task_result-T-0001-{n}",
                    "ssot_path": f"messages/task_result-T-0001-{n}.json",
                    # One a second, and every tenth second two: ties, as agents make them.
                    "timestamp": start + timedelta(seconds=n - n // 10),
                }
            )
            for n in range(args.messages)
        ),
        batch_size=5000,
    )
    Group.objects.get_or_create(name="agents")  # a server database was flushed of the migrations' groups
    agent = make_user("coordinator")
    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(agent)}")

    admin_client = Client(SERVER_NAME="127.0.0.1")
    admin_client.force_login(get_user_model().objects.create_superuser("bench-admin", "a@example.com", None))

    def timed(label: str, client: Client, path: str) -> None:
        for _ in range(3):
            client.get(path)
        seconds = []
        for _ in range(args.requests):
            began = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - began)
            assert response.status_code == 200, response.content[:300]
        print(
            f"  {label}: median {percentile(seconds, 0.5) * 1000:.2f} ms, "
            f"p95 {percentile(seconds, 0.95) * 1000:.2f} ms a request"
        )

    def statements(label: str, run: Callable[[], object]) -> None:
        """The floor: the statement alone, through the ORM (no HTTP, DRF or authentication)."""
        seconds = []
        for _ in range(args.requests):
            began = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - began)
        print(f"  floor, {label}: median {percentile(seconds, 0.5) * 1000:.2f} ms")

    api, changelist = "/api/messages/?limit=50", "/admin/ssot/message/"
    print(f"{Message.objects.count():,} messages, {connection.vendor}")
    print(f"GET {api} as an agent")
    timed("with the index msg_time", client, api)
    statements("the page's COUNT(*) alone", lambda: Message.objects.count())
    statements("its 50 rows alone", lambda: list(Message.objects.defer("envelope")[:50]))
    print(f"GET {changelist} (the admin's list) as a superuser")
    timed("as shipped", admin_client, changelist)
    model_admin = MessageAdmin
    shipped = (model_admin.list_filter, model_admin.date_hierarchy, model_admin.show_full_result_count)
    # As it was: a date hierarchy, filters listing the distinct values of every row, the table counted twice.
    model_admin.list_filter = ["type", "ack_state", "sender", "recipient"]
    model_admin.date_hierarchy = "timestamp"
    model_admin.show_full_result_count = True
    try:
        timed("configured as before", admin_client, changelist)
    finally:
        model_admin.list_filter, model_admin.date_hierarchy, model_admin.show_full_result_count = shipped
    index = next(index for index in Message._meta.indexes if index.name == "msg_time")
    with connection.schema_editor() as editor:
        editor.remove_index(Message, index)
    try:
        timed(f"GET {api} without the index (as before)", client, api)
        timed("the admin's list, as shipped, without the index", admin_client, changelist)
    finally:  # a server database outlives the run
        with connection.schema_editor() as editor:
            editor.add_index(Message, index)


if __name__ == "__main__":
    main()
