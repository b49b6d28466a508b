"""Fan-out: one event to 1,000 connected WebSocket clients; p50/p99 from the change until each client has it.

Two configurations, each in a process of its own (Django is configured once per process):
- single: one daphne process, the embedded channel layer;
- redis: two daphne processes on one Redis, half of the clients on each.
Each round is a task override through the API of the first process (SSOT commit, mirror, events after
commit). A decision sends three events (task_update, audit, task_override); per client we time, from
the request, the arrival of the first (the fan-out of one event, commit included) and of the last. The
clients all run in this one asyncio process on loopback, so their own reading is part of the figure.

Run: .venv/bin/python -m bench.fanout [--clients 1000] [--rounds 10] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.live import deployment, figures, next_event, save, server_environment

TASK_ID = "FANOUT-1"
CONNECT_BATCH = 50
EVENT_TIMEOUT_SEC = 60


async def connect_all(urls: list[str], clients: int) -> list:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    async def one(url: str):
        client = await connect(url, origin=Origin("http://127.0.0.1"), max_size=None, open_timeout=60)
        await next_event(client, lambda e: e["type"] == "init", EVENT_TIMEOUT_SEC)
        return client

    connected = []
    for start in range(0, clients, CONNECT_BATCH):
        batch = range(start, min(clients, start + CONNECT_BATCH))
        connected += await asyncio.gather(*(one(urls[index % len(urls)]) for index in batch))
    return connected


async def rounds(api: str, token: str, clients: list, count: int) -> tuple[list[float], ...]:
    from testing.server import post_json

    samples, decisions, requests = [], [], []
    for number in range(count):
        status = f"round-{number}"

        async def arrival(client, status=status) -> tuple[float, float]:
            """When the client had the first event of the decision (task_update), and its last one."""
            await next_event(
                client,
                lambda e: e["type"] == "task_update" and (e["task"] or {}).get("status") == status,
                EVENT_TIMEOUT_SEC,
            )
            first = time.perf_counter()
            await next_event(
                client, lambda e: e["type"] == "task_override" and e["status"] == status, EVENT_TIMEOUT_SEC
            )
            return first, time.perf_counter()

        waiting = [asyncio.create_task(arrival(client)) for client in clients]
        started = time.perf_counter()
        answer, body = await asyncio.to_thread(
            post_json,
            f"{api}/api/tasks/{TASK_ID}/override/",
            json.dumps({"reason": "fan-out benchmark", "status": status}).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        requests.append(time.perf_counter() - started)
        if answer != 200:
            raise RuntimeError(f"override answered {answer}: {body[:200]!r}")
        for first, last in await asyncio.gather(*waiting):
            samples.append(first - started)
            decisions.append(last - started)
    return samples, decisions, requests


def run(config: str, clients: int, count: int, redis_url: str) -> dict:
    deploy = deployment("fanout", redis_url=redis_url if config == "redis" else None)
    from ssot.documents import dump_json
    from ssot.stores.factory import get_store
    from ssot.sync import sync
    from testing.content import task_doc
    from testing.server import Daphne, start_all

    store = get_store()
    writes = {f"tasks/{TASK_ID}.json": dump_json(task_doc(TASK_ID, "in_progress"))}
    store.commit(parent=store.head(), writes=writes, message="fan-out task", author="coordinator")
    sync()
    env = server_environment(deploy, LOG_LEVEL="WARNING")
    servers = [Daphne(env, name=f"daphne-{n}") for n in range(2 if config == "redis" else 1)]

    async def measure() -> tuple[list[float], ...]:
        connected = await connect_all([f"{s.ws_url}?token={deploy.token}" for s in servers], clients)
        try:
            return await rounds(servers[0].url, deploy.token, connected, count)
        finally:
            await asyncio.gather(*(client.close() for client in connected), return_exceptions=True)

    try:
        start_all(servers)
        samples, decisions, requests = asyncio.run(measure())
    except BaseException:
        for server in servers:
            # The access log's connect/disconnect lines would bury the error: show the rest.
            lines = [
                line
                for line in server.log.read_text(errors="replace").splitlines()
                if "WSCONNECT" not in line and "WSDISCONNECT" not in line and '"HTTP ' not in line
            ]
            print(f"--- {server.name}\n" + "\n".join(lines[-80:]), file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.close()
    return {
        "config": config,
        "processes": len(servers),
        "clients": clients,
        "rounds": count,
        "event": figures(samples),
        "decision_3_events": figures(decisions),
        "request": figures(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--config", choices=("single", "redis"), help="one configuration (default: both)")
    args = parser.parse_args()
    if args.config:
        result = run(args.config, args.clients, args.rounds, args.redis)
        print(json.dumps(result))
        return
    results = {}
    for config in ("single", "redis"):
        command = [sys.executable, "-m", "bench.fanout", "--config", config]
        command += ["--clients", str(args.clients), "--rounds", str(args.rounds), "--redis", args.redis]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{config} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        results[config] = json.loads(done.stdout.strip().splitlines()[-1])
        result = results[config]
        print(
            f"fan-out {config}: {result['clients']} clients on {result['processes']} daphne process(es), "
            f"{result['rounds']} rounds: first event {result['event']}, "
            f"all 3 events of the decision {result['decision_3_events']}, API request {result['request']}"
        )
    print(f"  saved {save('fanout', results).relative_to(Path.cwd())}")


if __name__ == "__main__":
    main()
