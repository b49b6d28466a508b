"""One heartbeat check + ACK scan with 1,000 agents and 100,000 messages: queries and time.

    .venv/bin/python -m bench.monitor_check [--agents 1000] [--messages 100000] [--runs 20]

Runs on the configured database engine (SQLite by default, PostgreSQL with DATABASE_URL) in a
throwaway database of its own (never the development data, never the test database other runs use),
with a local SSOT in a temporary directory. Rows are bulk-created; the first checks settle them
(status changes, timeouts and overdue ACKs written to the SSOT) and are reported apart; then the
steady state is measured: the targets are at most 5 queries and under 200 ms per check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from monitoring import services  # noqa: E402
from ssot.models import Agent, Message  # noqa: E402
from ssot.stores.factory import reset_store  # noqa: E402
from ssot.stores.local import LocalStore  # noqa: E402
from ssot.sync import sync  # noqa: E402

QUERY_TARGET = 5
MS_TARGET = 200.0
TIMEOUT_SEC = 1800
TIMED_OUT_AGENTS = 20
OVERDUE_MESSAGES = 100


def agents(count: int) -> list[Agent]:
    """Agents seen recently (ok), a third of them 20-28 minutes ago (monitor), a few silent for longer.

    Silences stay minutes away from the 60 % and 100 % boundaries, so the steady runs change nothing.
    """
    now = timezone.now()
    rows = []
    for i in range(count):
        if i < TIMED_OUT_AGENTS:
            silence = TIMEOUT_SEC + 60 + i
        elif i % 3 == 0:
            silence = 1200 + (i * 7) % 480
        else:
            silence = (i * 7) % 900
        rows.append(
            Agent(name=f"agent{i:04d}", last_seen=now - timedelta(seconds=silence), last_seen_via="message")
        )
    return rows


def messages(count: int) -> list[Message]:
    """Mostly settled traffic: 80 % with no ACK, 15 % acknowledged, the rest pending (a few overdue)."""
    now = timezone.now()
    rows = []
    for i in range(count):
        msg_id = f"task_result-T-{i % 5000:04d}-{1760000000000 + i}"
        sent = now - timedelta(seconds=(count - i) % 86400)
        if i < OVERDUE_MESSAGES:
            state, deadline = Message.AckState.PENDING, now - timedelta(seconds=60 + i)
        elif i % 20 < 16:
            state, deadline = Message.AckState.NOT_REQUIRED, None
        elif i % 20 < 19:
            state, deadline = Message.AckState.ACKED, sent + timedelta(seconds=120)
        else:
            state, deadline = Message.AckState.PENDING, now + timedelta(seconds=120 + i % 600)
        envelope = {"msg_id": msg_id, "type": "task_result", "task_id": f"T-{i % 5000:04d}"}
        rows.append(
            Message(
                msg_id=msg_id,
                protocol_version="AMP/1.0",
                type="task_result",
                sender=f"agent{i % 1000:04d}",
                recipient=f"agent{(i + 1) % 1000:04d}",
                task_id=envelope["task_id"],
                timestamp=sent,
                requires_ack=deadline is not None,
                payload={"summary": "done"},
                envelope=envelope,
                ssot_path=f"messages/{msg_id}.json",
                blob_sha=f"{i:040x}",
                ack_state=state,
                ack_deadline=deadline,
                acked_at=sent if state == Message.AckState.ACKED else None,
            )
        )
    return rows


def measure() -> tuple[int, float, services.CheckReport]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = services.run_checks()
        elapsed = (time.perf_counter() - started) * 1000
    return len(queries.captured_queries), elapsed, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    settings_dict = connection.settings_dict
    original_name = settings_dict["NAME"]
    own = (
        str(settings.VAR_DIR / "bench_monitor.sqlite3") if connection.vendor == "sqlite" else "bench_monitor"
    )
    settings_dict["TEST"]["NAME"] = own
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    workdir = tempfile.TemporaryDirectory(prefix="bench-monitor-")
    try:
        settings.SSOT_BACKEND = "local"
        settings.SSOT_LOCAL_PATH = Path(workdir.name) / "ssot.git"
        settings.HEARTBEAT_TIMEOUT_SEC = TIMEOUT_SEC
        settings.AGENTS = [f"agent{i:04d}" for i in range(args.agents)]
        settings.NOTIFY_URLS, settings.TELEGRAM_BOT_TOKEN = [], ""
        reset_store()
        LocalStore.create(settings.SSOT_LOCAL_PATH)

        started = time.perf_counter()
        Agent.objects.bulk_create(agents(args.agents), batch_size=500)
        Message.objects.bulk_create(messages(args.messages), batch_size=2000)
        print(
            f"{connection.vendor}: {args.agents} agents, {args.messages} messages bulk-created "
            f"in {time.perf_counter() - started:.1f} s"
        )

        settle = []
        while True:
            sync()  # the poll, which keeps the mirror trusted
            queries, ms, report = measure()
            settle.append((queries, ms, len(report.changes), len(report.raised)))
            if not (report.changes or report.raised or report.overdue):
                break
        for n, (queries, ms, changes, raised) in enumerate(settle[:-1], 1):
            print(
                f"settling check {n}: {changes} status changes, {raised} escalations written: "
                f"{queries} queries, {ms:.0f} ms"
            )

        runs = []
        for _ in range(args.runs):
            sync()
            queries, ms, report = measure()
            assert not (report.changes or report.raised or report.overdue), report.lines()
            runs.append((queries, ms))
        counts = sorted({queries for queries, _ in runs})
        times = [ms for _, ms in runs]
        result = {
            "bench": "monitor_check",
            "database": connection.vendor,
            "agents": args.agents,
            "messages": args.messages,
            "runs": args.runs,
            "queries": counts[-1],
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "settling_checks": len(settle) - 1,
        }
        print(
            f"steady check (heartbeat + ACK scan), {args.runs} runs: {counts[-1]} queries, "
            f"median {result['median_ms']} ms, max {result['max_ms']} ms "
            f"(targets: <= {QUERY_TARGET} queries, < {MS_TARGET:.0f} ms)"
        )
        print(json.dumps(result))
        return 0 if counts[-1] <= QUERY_TARGET and result["median_ms"] < MS_TARGET else 1
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
