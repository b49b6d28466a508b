"""Push latency: from `git push` to the local SSOT until a connected WebSocket client has the task_update.

Two paths, each over --pushes pushes of one changed task file from a plain working clone:
- hook: the post-receive hook posts a signed push delivery to /webhooks/github, a django-q2 worker
  processes it (incremental sync), the event reaches daphne's client;
- poll: no hook; a poller runs the SSOT poll every --poll-sec seconds (deployments: SSOT_POLL_SEC,
  scheduled in whole minutes), so its latency is about half that interval plus the sync.
One daphne and one qcluster; SQLite; embedded (in-memory layer, ORM broker) unless --redis URL.

Run: .venv/bin/python -m bench.push_latency [--pushes 200] [--poll-sec 1] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.live import deployment, figures, next_event, save, server_environment

TASK_ID = "BENCH-1"
EVENT_TIMEOUT_SEC = 30
# The ORM broker's poll (Q_CLUSTER["poll"]): pushes are spread over it, as real ones are.
BROKER_POLL_SEC = 0.5


def _poller(poll_sec: float) -> None:
    """The poll path's stand-in for the scheduler: ssot.tasks.ssot_poll every poll_sec seconds."""
    import django

    django.setup()
    from ssot.tasks import ssot_poll

    while True:
        started = time.monotonic()
        ssot_poll()
        time.sleep(max(0.0, poll_sec - (time.monotonic() - started)))


async def _finished(push: asyncio.subprocess.Process) -> float:
    """When `git push` returned (the post-receive hook's delivery included)."""
    if await push.wait() != 0:
        raise RuntimeError("git push failed")
    return time.perf_counter()


def _updated(event: dict, sha: str) -> bool:
    return event["type"] == "task_update" and (event.get("task") or {}).get("blob_sha") == sha


async def measure(
    deploy, daphne, pushes: int, *, label: str, jitter: float
) -> tuple[list[float], list[float]]:
    """Push `pushes` changes, each after a random pause under `jitter` s (pushes fall anywhere in a poll)."""
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    from ssot.documents import dump_json
    from ssot.stores.base import git_blob_sha
    from testing.content import task_doc
    from testing.git import clone, git, git_env

    base = Path(tempfile.mkdtemp(prefix="agentos-bench-"))
    work = clone(deploy.ssot_path, base / "work")
    path = work / "tasks" / f"{TASK_ID}.json"
    path.parent.mkdir(exist_ok=True)
    samples, pushes_done = [], []
    try:
        url = f"{daphne.ws_url}?token={deploy.token}"
        async with connect(url, origin=Origin("http://127.0.0.1"), max_size=None) as ws:
            await next_event(ws, lambda e: e["type"] == "init", EVENT_TIMEOUT_SEC)
            for number in range(pushes):
                data = dump_json(task_doc(TASK_ID, "in_progress", counter=number, path=label))
                sha = git_blob_sha(data)
                path.write_bytes(data)
                git(work, "add", "--", str(path))
                git(work, "commit", "--quiet", "-m", f"bench {number}", env=git_env(author="coordinator"))
                await asyncio.sleep(random.uniform(0, jitter))
                started = time.perf_counter()
                push = await asyncio.create_subprocess_exec(
                    "git", "push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work
                )
                pushed = asyncio.create_task(_finished(push))
                await next_event(ws, lambda e, sha=sha: _updated(e, sha), EVENT_TIMEOUT_SEC)
                samples.append(time.perf_counter() - started)
                pushes_done.append(await pushed - started)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return samples, pushes_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--poll-sec", type=float, default=1.0)
    parser.add_argument("--redis", default=None, help="use Redis (channel layer and broker) at this URL")
    parser.add_argument("--paths", default="hook,poll")
    args = parser.parse_args()

    from testing.server import free_port

    port = free_port()
    deploy = deployment("push", redis_url=args.redis, hook_port=port)
    from testing.server import Daphne, Process, Worker

    env = server_environment(deploy, Q_WORKERS="1", LOG_LEVEL="WARNING")
    daphne, worker = Daphne(env, port=port), Worker(env)
    layer = "Redis" if args.redis else "embedded (in-memory layer + local fan-out, ORM broker)"
    print(f"push latency: {args.pushes} pushes per path; one daphne + one qcluster; SQLite; {layer}")
    results = {"pushes": args.pushes, "layer": layer, "poll_sec": args.poll_sec}
    try:
        daphne.spawn()
        worker.start()
        daphne.wait_ready()
        if "hook" in args.paths:
            samples, pushed = asyncio.run(
                measure(deploy, daphne, args.pushes, label="hook", jitter=BROKER_POLL_SEC)
            )
            results["hook"] = figures(samples)
            results["hook_git_push_returned"] = figures(pushed)
            print(f"  hook + webhook + worker: {results['hook']}")
            print(f"    of which `git push` (hook delivery included): {results['hook_git_push_returned']}")
        if "poll" in args.paths:
            hook = deploy.ssot_path / "hooks" / "post-receive"
            hook.rename(hook.with_suffix(".off"))
            poller = Process(
                "poller",
                [sys.executable, "-c", f"from bench.push_latency import _poller; _poller({args.poll_sec})"],
                {**env, "DJANGO_SETTINGS_MODULE": "agentos_site.settings"},
            )
            poller.start()
            try:
                samples, _ = asyncio.run(
                    measure(deploy, daphne, args.pushes, label="poll", jitter=args.poll_sec)
                )
            finally:
                poller.close()
            results["poll"] = figures(samples)
            print(f"  poll every {args.poll_sec:g} s: {results['poll']}")
    finally:
        worker.close()
        daphne.close()
    saved = save("push_latency" + ("_redis" if args.redis else ""), results)
    print(f"  saved {saved.relative_to(Path.cwd())}")


if __name__ == "__main__":
    main()
