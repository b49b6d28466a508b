"""The first page of the messages list as the table grows: GET /api/messages/?limit=50 as an agent, with
the index its order is read from (`msg_time`: timestamp, then id) and, in the same run on the same rows,
without it, as before that index existed (every request sorted every message).

Run: .venv/bin/python -m bench.message_list [--messages 100000] [--requests 100]
(SQLite on a fresh var/ directory, or the database DATABASE_URL names; in process, Django's test client.)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.setup import django_for_bench, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    django_for_bench("message-list")

    from datetime import UTC, datetime, timedelta

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

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

    def first_pages(label: str) -> None:
        for _ in range(5):
            client.get("/api/messages/?limit=50")
        seconds = []
        for _ in range(args.requests):
            began = time.perf_counter()
            response = client.get("/api/messages/?limit=50")
            seconds.append(time.perf_counter() - began)
            assert response.status_code == 200, response.content
        print(
            f"  {label}: median {percentile(seconds, 0.5) * 1000:.2f} ms, "
            f"p95 {percentile(seconds, 0.95) * 1000:.2f} ms a request"
        )

    def statements(label: str, queryset: Any) -> None:
        """The floor: the statement alone, through the ORM (no HTTP, DRF or authentication)."""
        seconds = []
        for _ in range(args.requests):
            began = time.perf_counter()
            queryset()
            seconds.append(time.perf_counter() - began)
        print(f"  floor, {label}: median {percentile(seconds, 0.5) * 1000:.2f} ms")

    print(f"GET /api/messages/?limit=50, {Message.objects.count():,} messages, {connection.vendor}")
    first_pages("with the index msg_time")
    statements("the page's COUNT(*) alone", lambda: Message.objects.count())
    statements("its 50 rows alone", lambda: list(Message.objects.defer("envelope")[:50]))
    index = next(index for index in Message._meta.indexes if index.name == "msg_time")
    with connection.schema_editor() as editor:
        editor.remove_index(Message, index)
    try:
        first_pages("without it (as before)")
    finally:  # a server database outlives the run
        with connection.schema_editor() as editor:
            editor.add_index(Message, index)


if __name__ == "__main__":
    main()
