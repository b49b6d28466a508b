"""Webhook load: signed push deliveries at fixed rates against one daphne process, with a qcluster beside it.

Open loop: delivery i is due at start + i/rate whatever the answers before it, sent on a new
connection each (as GitHub does) by one asyncio client; its latency counts from when it was due, so
a slow server cannot hide its backlog. Processing is timed from the rows (received_at ->
processed_at); every push names the SSOT's current head, so each one costs a claim, a share of a
no-op sync and a queued audit line. The CPU each side used is read from /proc.

Run: .venv/bin/python -m bench.webhook_load [--rates 50,200] [--seconds 10]
Embedded (SQLite, ORM broker) unless --use-env, which keeps DATABASE_URL and REDIS_URL;
--no-worker measures the request path alone (deliveries stay pending).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.setup import django_for_bench, percentile
from testing.procstat import session_cpu

SECRET = "bench-webhook-secret"
DRAIN_TIMEOUT_SEC = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200", help="deliveries per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate")
    parser.add_argument("--use-env", action="store_true", help="keep DATABASE_URL / REDIS_URL")
    parser.add_argument("--no-worker", action="store_true", help="no qcluster: the request path alone")
    args = parser.parse_args()
    if not args.use_env:
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
    os.environ.update(
        GITHUB_WEBHOOK_SECRET=SECRET, XCODE_WEBHOOK_SECRET="bench-xcode-token", SSOT_BACKEND="local"
    )
    var = django_for_bench("webhooks")
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "manage.py", "ssot_init", "--demo"], cwd=root, check=True, capture_output=True
    )

    from django.conf import settings

    from ssot.stores.factory import get_store, webhook_repo_name
    from testing.server import ControlPlane

    broker = "Redis" if settings.REDIS_URL else "ORM"
    worker = "no worker" if args.no_worker else f"one qcluster ({settings.Q_CLUSTER['workers']} workers)"
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"webhook load: one daphne + {worker}, {broker} broker, {database}, {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.2f}), var {var}"
    )
    head = get_store().head()
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": head,
            "after": head,
            "repository": {"full_name": webhook_repo_name(), "name": "ssot"},
            "pusher": {"name": "bench"},
            "commits": [],
        }
    ).encode()
    with ControlPlane({}, worker=not args.no_worker, log_dir=var) as plane:
        for rate in [int(value) for value in args.rates.split(",")]:
            assert plane.daphne.process is not None
            leaders = {"daphne": plane.daphne.process.pid}
            if plane.worker and plane.worker.process:
                leaders["qcluster"] = plane.worker.process.pid
            run(plane.port, rate, args.seconds, body, processed=not args.no_worker, leaders=leaders)


def _request(body: bytes, signature: str, guid: str) -> bytes:
    head = (
        "POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {guid}\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _send_all(
    port: int, rate: int, body: bytes, signature: str, guids: list[str]
) -> tuple[list[float], dict[int | str, int]]:
    """Send delivery i at start + i/rate on a new connection, whatever the answers before it."""
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}

    async def send(guid: str, due: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(body, signature, guid))
            answer = await asyncio.wait_for(reader.read(), timeout=60)  # until the server closes
            writer.close()
            status: int | str = int(answer.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError, TimeoutError) as exc:
            status = type(exc).__name__
        latencies.append(time.monotonic() - due)
        statuses[status] = statuses.get(status, 0) + 1

    loop = asyncio.get_running_loop()
    start = time.monotonic() + 0.2
    tasks = []
    for index, guid in enumerate(guids):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(send(guid, due)))
    await asyncio.gather(*tasks)
    return latencies, statuses


def run(
    port: int, rate: int, seconds: float, body: bytes, *, processed: bool = True, leaders: dict[str, int]
) -> None:
    from webhooks.models import WebhookDelivery
    from webhooks.verify import github_signature

    count = int(rate * seconds)
    signature = github_signature(body, SECRET)
    guids = [str(uuid.uuid4()) for _ in range(count)]
    client_cpu = time.process_time()
    servers_cpu = {name: session_cpu(pid) for name, pid in leaders.items()}
    latencies, statuses = asyncio.run(_send_all(port, rate, body, signature, guids))
    last_answer = time.monotonic()
    client_cpu = time.process_time() - client_cpu

    done_states = ["done", "ignored", "failed"]
    deadline = last_answer + DRAIN_TIMEOUT_SEC
    expected = statuses.get(202, 0) if processed else 0
    while WebhookDelivery.objects.filter(guid__in=guids, state__in=done_states).count() < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    drained = time.monotonic() - last_answer
    servers_cpu = {name: session_cpu(pid) - servers_cpu[name] for name, pid in leaders.items()}
    rows = list(
        WebhookDelivery.objects.filter(guid__in=guids).values_list("state", "received_at", "processed_at")
    )
    delays = [(processed - received).total_seconds() for _, received, processed in rows if processed]
    states: dict[str, int] = {}
    for state, _, _ in rows:
        states[state] = states.get(state, 0) + 1

    print(
        f"{rate}/s for {seconds:g} s: {count} sent; answers {dict(sorted(statuses.items(), key=str))}; "
        f"rows {dict(sorted(states.items()))}"
    )
    used = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in servers_cpu.items())
    print(
        f"  CPU used until all were processed: {used}, the client {client_cpu:.1f} s "
        f"({sum(servers_cpu.values()) / count * 1000:.1f} ms of server CPU per delivery)"
    )
    print(
        f"  response latency from the due time: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    if delays:
        print(
            f"  arrival to processed: p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.0f} ms; "
            f"all processed {drained:.2f} s after the last answer"
        )


if __name__ == "__main__":
    main()
