"""Approvals end to end: how fast the approvers are told, and how fast the waiting agents hear the decision.

1. notify: `git push` of a task set to awaiting_approval, from a plain clone of the local SSOT, until the
   local HTTP receiver (the Apprise target, `json://`) has the `[approval]` notification: the post-receive
   hook, the webhook, the worker's sync, the approval watch it queues, Apprise. p50/p99 over --pushes.
2. long-polls: --waiters concurrent GET /api/tasks/{id}/decision/?wait=60 on daphne, on one shared task
   and on distinct tasks (one each), then the approvals; each answer's latency counts from the commit of
   its task's decision (`ssot.events.committed` in this process, the deciding one). Also the latency of
   GET /api/tasks/ while they wait, against the same with nobody waiting.
One daphne and one qcluster; SQLite; embedded (in-memory layer + local fan-out, ORM broker) unless --redis.

Run: .venv/bin/python -m bench.approval_notify [--pushes 100] [--waiters 200] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.live import deployment, figures, save, server_environment

BROKER_POLL_SEC = 0.5
SUBSCRIBE_SEC = 3.0  # let every long-poll subscribe before deciding (nothing in the answer says it has)
API_SAMPLES = 30


def measure_notify(deploy: Any, phone: Any, pushes: int, wall: dict[str, float]) -> list[float]:
    """Push a new task awaiting approval `pushes` times; seconds from `git push` to the notification
    (and in `wall`, each push's start by the wall clock, to compare with the claim's `created_at`)."""
    from ssot.documents import dump_json
    from testing.content import task_doc
    from testing.git import clone, git, git_env, push

    base = Path(tempfile.mkdtemp(prefix="agentos-bench-"))
    work = clone(deploy.ssot_path, base / "work")
    (work / "tasks").mkdir(exist_ok=True)
    samples = []
    try:
        for number in range(pushes):
            task_id = f"ASK-{number}"
            document = task_doc(
                task_id, "awaiting_approval", title=f"Bench approval {number}", risk_level="high"
            )
            (work / "tasks" / f"{task_id}.json").write_bytes(dump_json(document))
            git(work, "add", "--all")
            git(work, "commit", "--quiet", "-m", f"ask {number}", env=git_env(author="executor"))
            time.sleep(random.uniform(0, BROKER_POLL_SEC))  # pushes fall anywhere in the broker's poll
            started = time.perf_counter()
            wall[task_id] = time.time()
            result = push(work)
            if result.returncode:
                raise RuntimeError(f"git push failed: {result.stderr}")
            phone.wait_for(number + 1, "/phone", timeout=30)
            samples.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    titles = [body["title"] for body in phone.bodies("/phone")]
    assert len(titles) == pushes and all(t.startswith("[approval] ASK-") for t in titles), titles[:3]
    return samples


async def _long_poll(port: int, token: str, task_id: str, answered: dict[str, list[float]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET /api/tasks/{task_id}/decision/?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    status = await reader.readline()
    answered.setdefault(task_id, []).append(time.perf_counter())
    body = await reader.read()
    writer.close()
    if b" 200 " not in status or b'"decided": true' not in body:
        raise RuntimeError(f"long-poll of {task_id}: {status!r} {body[-200:]!r}")


def _api_latency(port: int, token: str, samples: int) -> list[float]:
    import http.client

    found = []
    for _ in range(samples):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        conn.request("GET", "/api/tasks/?limit=20", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        found.append(time.perf_counter() - started)
        conn.close()
        assert response.status == 200, response.status
    return found


async def measure_long_polls(deploy: Any, port: int, task_ids: list[str], waiters: int) -> dict[str, Any]:
    """`waiters` long-polls spread over `task_ids`, then each task approved; latencies from each commit."""
    from asgiref.sync import sync_to_async
    from django.db import connection

    from ssot import events, services

    committed: dict[str, float] = {}

    def on_commit(sender: Any = None, *, event: dict[str, Any], **kwargs: Any) -> None:
        # The first event of the decision's commit (the mirror's task_update comes before task_approved).
        if (event.get("task") or {}).get("status") == "approved":
            committed.setdefault(str(event["task_id"]), time.perf_counter())

    events.committed.connect(on_commit, dispatch_uid="bench.approval_notify")
    answered: dict[str, list[float]] = {}
    polls = [
        asyncio.create_task(_long_poll(port, deploy.token, task_ids[n % len(task_ids)], answered))
        for n in range(waiters)
    ]
    await asyncio.sleep(SUBSCRIBE_SEC)
    busy = await sync_to_async(_api_latency, thread_sensitive=False)(port, deploy.token, API_SAMPLES)

    def decide() -> None:
        for task_id in task_ids:
            services.task_approve(task_id=task_id, actor="bench", reason="bench")
        connection.close()

    await sync_to_async(decide, thread_sensitive=False)()
    await asyncio.wait_for(asyncio.gather(*polls), timeout=60)
    events.committed.disconnect(dispatch_uid="bench.approval_notify")
    # Timestamps of one machine's monotonic clock, taken in two loops of this process.
    samples = [at - committed[task_id] for task_id, times in answered.items() for at in times]
    return {"answers": figures(samples), "api_while_waiting": figures(busy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--redis", default=None, help="use Redis (channel layer and broker) at this URL")
    args = parser.parse_args()

    from testing.server import Daphne, Worker, free_port

    port = free_port()
    deploy = deployment("approval_notify", redis_url=args.redis, hook_port=port)
    from testing.monitor import receiver

    layer = "Redis" if args.redis else "embedded (in-memory layer + local fan-out, ORM broker)"
    print(f"approvals: {args.pushes} pushes, {args.waiters} long-polls; one daphne + one qcluster; {layer}")
    results: dict[str, Any] = {"pushes": args.pushes, "waiters": args.waiters, "layer": layer}
    with receiver() as phone:
        env = server_environment(
            deploy,
            Q_WORKERS="1",
            LOG_LEVEL="WARNING",
            NOTIFY_URLS=phone.url("phone"),
            PUBLIC_URL=f"http://127.0.0.1:{port}",
            API_USER_RATE="100000/min",
        )
        daphne, worker = Daphne(env, port=port), Worker(env)
        try:
            daphne.spawn()
            worker.start()
            daphne.wait_ready()
            if args.pushes:
                wall: dict[str, float] = {}
                samples = measure_notify(deploy, phone, args.pushes, wall)
                results["notify"] = figures(samples)
                print(f"  push -> [approval] notification received: {results['notify']}")
                from monitoring.models import Notification

                rows = Notification.objects.filter(title__startswith="[approval]", sent_at__isnull=False)
                claimed_to_sent = [(n.sent_at - n.created_at).total_seconds() for n in rows if n.sent_at]
                results["notify_claimed_to_sent"] = figures(claimed_to_sent)
                sent = results["notify_claimed_to_sent"]
                claimed = [
                    n.created_at.timestamp() - wall[n.title.split()[1]]
                    for n in rows
                    if n.title.split()[1] in wall
                ]
                results["notify_push_to_claimed"] = figures(claimed)
                print(
                    f"    push -> claimed (git push, hook, webhook, worker sync, queue): {figures(claimed)}"
                )
                print(f"    claimed -> sent (Apprise to the receiver): {sent}")

            from ssot.sync import sync
            from testing.content import commit, task_doc

            shared = "WAIT-SHARED"
            distinct = [f"WAIT-{n}" for n in range(args.waiters)]
            commit(
                _store(),
                {f"tasks/{t}.json": task_doc(t, "awaiting_approval") for t in [shared, *distinct]},
                author="coordinator",
            )
            sync()
            # Warm this (deciding) process: its first broadcast finds the channel layer's peers. In a
            # deployment the deciding process is daphne or the worker, long since warm.
            from ssot import services

            commit(_store(), {"tasks/WARM.json": task_doc("WARM", "awaiting_approval")}, author="coordinator")
            sync()
            services.task_approve(task_id="WARM", actor="bench", reason="warm-up")
            idle = _api_latency(port, deploy.token, API_SAMPLES)
            results["api_idle"] = figures(idle)
            for name, task_ids in (("shared", [shared]), ("distinct", distinct)):
                found = asyncio.run(measure_long_polls(deploy, port, task_ids, args.waiters))
                results[f"long_polls_{name}"] = found
                answers = found["answers"]
                print(f"  approval commit -> {args.waiters} long-polls answered, {name} task(s): {answers}")
                print(f"    GET /api/tasks/ while they wait: {found['api_while_waiting']}")
            print(f"  GET /api/tasks/ with nobody waiting: {results['api_idle']}")
        finally:
            worker.close()
            daphne.close()
    saved = save("approval_notify" + ("_redis" if args.redis else ""), results)
    print(f"  saved {saved.relative_to(Path.cwd())}")


def _store() -> Any:
    from ssot.stores.factory import get_store

    return get_store()


if __name__ == "__main__":
    main()
