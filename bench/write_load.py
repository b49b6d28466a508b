"""Write load: 16 concurrent agents writing through the API against one daphne process (issue 16).

Local store (closed loop: each agent sends its next request when the last is answered), for --seconds
each: messages only, then messages, acks and decisions mixed. Beside them, in the same run, the floors:
pygit2 alone committing the same messages 16 to a commit into a bare repository of its own, and what
the HTTP server, Django and an authenticated DRF read alone answer with the same agents
(bench/http_floor.py).

GitHub store (against the GitHub emulator on loopback, --latency seconds added to every call): an open
loop at --github-rate messages a second spread over the 16 agents for --github-seconds (over a minute, so
that a whole minute's window of content-creating requests is seen) (a closed loop of 16 cannot outrun a
commit every few seconds, which GitHub's write limits allow); it reports messages/s, commits and
content-creating requests a minute. Every answer is counted by status: 201, or 503 with Retry-After,
and nothing else.

Run: .venv/bin/python -m bench.write_load [--seconds 20] [--agents 16] [--only local|github]
Each store runs in a process of its own (Django is configured once per process), on a fresh var/
directory and SQLite database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import http_floor
from bench.setup import django_for_bench, in_threads, percentile

AGENTS = ("coordinator", "executor", "reviewer")
# Who writes to whom, and in which message type, per sending agent.
ROUTES = {
    "coordinator": ("task_dispatch", "executor"),
    "executor": ("task_result", "coordinator"),
    "reviewer": ("review_verdict", "coordinator"),
}
TASKS = 3000  # tasks awaiting approval, for the decisions of the mixed run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each run")
    parser.add_argument("--agents", type=int, default=16, help="concurrent agents")
    parser.add_argument("--only", choices=["local", "github"], help="one store only")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the emulator adds per call")
    parser.add_argument("--github-rate", type=float, default=25.0, help="messages offered a second")
    parser.add_argument(
        "--github-seconds", type=float, default=75.0, help="duration of the GitHub run (over a minute)"
    )
    parser.add_argument("--store", choices=["local", "github"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.store:
        run_store(args)
        return
    for store in [args.only] if args.only else ["local", "github"]:
        command = [sys.executable, "-m", "bench.write_load", *sys.argv[1:], "--store", store]
        subprocess.run(command, check=True, cwd=Path(__file__).resolve().parent.parent)


@dataclass
class Tally:
    """What the agents saw: latencies of the writes answered 2xx, and every status."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float, headers: http.client.HTTPMessage) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if 200 <= status < 300:
                self.latencies.append(seconds)
                self.written[kind] += 1
            elif status == 503 and not headers.get("Retry-After"):
                self.retry_after_missing += 1


class Agent:
    """One agent's keep-alive connection and its JWT."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, http.client.HTTPMessage]:
        data = json.dumps(body or {}).encode()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
        }
        for attempt in (1, 2):
            try:
                self.connection.request("POST", path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read(), response.headers
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def envelope(sender: str, n: int, *, salt: str) -> dict[str, Any]:
    import amp

    msg_type, recipient = ROUTES[sender]
    return amp.build_envelope(
        msg_type=msg_type,
        sender=sender,
        recipient=recipient,
        task_id=f"W-{n % 500}",
        payload=_payload(msg_type),
        msg_id=f"{msg_type}-{salt}-{n}",
    )


def _payload(msg_type: str) -> dict[str, Any]:
    if msg_type == "task_dispatch":
        return {"branch": "feature/load", "acceptance_criteria": ["it works"]}
    if msg_type == "task_result":
        return {"summary": "done"}
    return {"verdict": "approve", "summary": "looks good"}


def run_store(args: argparse.Namespace) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SSOT_LOCAL_PATH"):
        os.environ.pop(name, None)
    os.environ.update(SSOT_BACKEND=args.store, API_USER_RATE="100000000/min", LOG_LEVEL="ERROR")
    emulator = None
    if args.store == "github":
        from testing.github_emulator import GitHubEmulator

        emulator = GitHubEmulator(Path(tempfile.mkdtemp(prefix="agentos-bench-github-")) / "ssot.git")
        emulator.start()
        os.environ.update(
            GITHUB_TOKEN=emulator.token,
            GITHUB_SSOT_REPO=f"{emulator.owner}/{emulator.name}",
            GITHUB_API_URL=emulator.base_url,
        )
    var = django_for_bench(f"writes-{args.store}")
    tokens = prepare(args.store, emulator)

    from django.conf import settings

    from testing.server import ControlPlane

    print(
        f"write load, {args.store} store: one daphne process (SYNC_VIEW_CONCURRENCY "
        f"{settings.SYNC_VIEW_CONCURRENCY}), SQLite, {args.agents} agents, {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.2f}), var {var}"
    )
    with ControlPlane({}, worker=False, log_dir=var) as plane:
        if emulator is None:
            closed_loop(plane.port, tokens, args, mixed=False)
            closed_loop(plane.port, tokens, args, mixed=True)
            floor(args.seconds / 4)
            http_floor.report(
                plane.port,
                tokens["coordinator"],
                args.agents,
                args.seconds / 4,
                lambda n: json.dumps(envelope("coordinator", n, salt="http-floor")).encode(),
            )
        else:
            emulator.latency = args.latency
            open_loop(plane.port, tokens, args, emulator)
    if emulator is None:
        write_path(args)
    if emulator is not None:
        emulator.stop()


def prepare(store: str, emulator: Any) -> dict[str, str]:
    """The SSOT with TASKS tasks awaiting approval, mirrored; the agents' and an approver's tokens."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from ssot.documents import dump_json
    from ssot.stores.factory import get_store
    from ssot.sync import sync
    from testing.content import task_doc

    tasks = {
        f"tasks/W-{n}.json": dump_json(task_doc(f"W-{n}", status="awaiting_approval")) for n in range(TASKS)
    }
    if emulator is None:
        call_command("ssot_init", verbosity=0)
        store_ = get_store()
        store_.commit(parent=store_.head(), writes=tasks, message="tasks", author="bench")
    else:
        emulator.push(tasks, message="tasks")
    sync()
    users = get_user_model()
    agents = Group.objects.get(name="agents")
    tokens = {}
    for name in AGENTS:
        user = users.objects.create_user(name)
        user.groups.add(agents)
        tokens[name] = str(AccessToken.for_user(user))
    approver = users.objects.create_superuser("approver", "approver@example.com", None)
    tokens["approver"] = str(AccessToken.for_user(approver))
    return tokens


def closed_loop(port: int, tokens: dict[str, str], args: argparse.Namespace, *, mixed: bool) -> None:
    """Each agent writes, waits for the answer, writes again, for args.seconds."""
    tally = Tally()
    sent: dict[str, deque[str]] = {name: deque() for name in AGENTS}  # msg_ids waiting for their ack
    decisions = deque(f"W-{n}" for n in range(TASKS))
    stop = time.monotonic() + args.seconds
    salt = "mixed" if mixed else "plain"

    def agent(index: int) -> None:
        name = AGENTS[index % len(AGENTS)]
        approver = mixed and index % 8 == 7  # two of sixteen decide
        client = Agent(port, tokens["approver" if approver else name])
        n = index
        while time.monotonic() < stop:
            started = time.monotonic()
            if approver:
                try:
                    task_id = decisions.popleft()
                except IndexError:
                    return
                status, _, headers = client.post(f"/api/tasks/{task_id}/approve/", {"reason": "ok"})
                tally.add("decision", status, time.monotonic() - started, headers)
                continue
            pending = sent[name]
            if mixed and n % 2 and pending:
                msg_id = pending.popleft()
                status, _, headers = client.post(f"/api/messages/{msg_id}/ack/", None)
                tally.add("ack", status, time.monotonic() - started, headers)
            else:
                message = envelope(name, n, salt=salt)
                status, _, headers = client.post("/api/messages/", message)
                tally.add("message", status, time.monotonic() - started, headers)
                if status == 201:
                    sent[message["to"]].append(message["msg_id"])
            n += args.agents

    elapsed = in_threads(args.agents, agent)
    report("messages, acks and decisions" if mixed else "messages only", tally, elapsed)


def report(label: str, tally: Tally, seconds: float) -> None:
    writes = sum(tally.written.values())
    kinds = ", ".join(f"{kind} {count / seconds:.0f}/s" for kind, count in sorted(tally.written.items()))
    print(
        f"  {label}: {writes / seconds:.0f} writes/s ({kinds}); "
        f"p50 {percentile(tally.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(tally.latencies, 0.99) * 1000:.1f} ms; "
        f"answers {dict(sorted(tally.statuses.items()))}"
        + (f"; {tally.retry_after_missing} 503 without Retry-After" if tally.retry_after_missing else "")
    )


def floor(seconds: float) -> None:
    """pygit2 alone: the same messages, 16 to a commit, into a bare repository of its own."""
    import pygit2

    from ssot.documents import dump_json

    repo = pygit2.init_repository(tempfile.mkdtemp(prefix="agentos-bench-floor-"), bare=True)
    signature = pygit2.Signature("bench", "bench@agentos.local")
    parent: list[pygit2.Oid] = []
    tree: pygit2.Tree | None = None
    count = 0
    stop = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < stop:
        root = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
        folder_entry = tree["messages"] if tree is not None and "messages" in tree else None
        folder = repo.TreeBuilder(folder_entry.id) if folder_entry is not None else repo.TreeBuilder()
        for _ in range(16):
            message = envelope(AGENTS[count % 3], count, salt="floor")
            folder.insert(
                f"{message['msg_id']}.json", repo.create_blob(dump_json(message)), pygit2.enums.FileMode.BLOB
            )
            count += 1
        root.insert("messages", folder.write(), pygit2.enums.FileMode.TREE)
        tree = repo[root.write()].peel(pygit2.Tree)
        oid = repo.create_commit(None, signature, signature, "16 messages", tree.id, parent)
        repo.references.create("refs/heads/main", oid, force=True)
        parent = [oid]
    elapsed = time.monotonic() - started
    print(f"  floor (pygit2 alone, 16 messages a commit, same messages): {count / elapsed:.0f} messages/s")


def open_loop(port: int, tokens: dict[str, str], args: argparse.Namespace, emulator: Any) -> None:
    """Messages due at a fixed rate, spread over the agents; each agent sends its due messages in order,
    on as many connections as it needs so that one slow answer does not hold the next message back."""
    from concurrent.futures import ThreadPoolExecutor

    tally = Tally()
    count = int(args.github_rate * args.github_seconds)
    emulator.reset_counts()
    commits_before = _commits(emulator)
    local = threading.local()

    def send(n: int, due: float) -> None:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        name = AGENTS[n % args.agents % len(AGENTS)]
        if not hasattr(local, "clients"):
            local.clients = {}
        client = local.clients.setdefault(name, Agent(port, tokens[name]))
        status, _, headers = client.post("/api/messages/", envelope(name, n, salt="github"))
        tally.add("message", status, time.monotonic() - due, headers)

    start = time.monotonic() + 0.5
    with ThreadPoolExecutor(max_workers=256) as pool:
        for n in range(count):
            pool.submit(send, n, start + n / args.github_rate)
    elapsed = time.monotonic() - start
    creating = len(emulator.content_requests)
    commits = _commits(emulator) - commits_before
    print(
        f"  GitHub emulator with {args.latency * 1000:.0f} ms per call, "
        f"{args.github_rate:g} messages/s offered:"
    )
    report("messages", tally, elapsed)
    print(
        f"  {commits} commits ({tally.written['message'] / max(commits, 1):.1f} messages each); "
        f"{creating} content-creating requests in {elapsed:.0f} s, at most "
        f"{_busiest_minute(emulator.content_requests)} in any 60 s window"
    )


def _commits(emulator: Any) -> int:
    head = emulator.head()
    return 0 if head is None else sum(1 for _ in emulator.git.walk(head))


def _busiest_minute(times: list[float]) -> int:
    ordered = sorted(times)
    best, left = 0, 0
    for right, moment in enumerate(ordered):
        while moment - ordered[left] >= 60:
            left += 1
        best = max(best, right - left + 1)
    return best


def write_path(args: argparse.Namespace) -> None:
    """The write path alone: as many threads as agents calling ssot.services.message_create in this
    process (no HTTP, no authentication), for args.seconds; what its group commit costs a message."""
    import resource

    from django.db import close_old_connections

    from ssot import services

    written = [0] * args.agents
    stop = time.monotonic() + args.seconds

    def agent(index: int) -> None:
        name, n = AGENTS[index % len(AGENTS)], index
        while time.monotonic() < stop:
            services.message_create(raw=envelope(name, n, salt="write-path"), sender=name)
            written[index] += 1
            n += args.agents
        close_old_connections()

    before = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = in_threads(args.agents, agent)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    count = sum(written)
    print(
        f"  write path alone ({args.agents} threads calling message_create in one process, no HTTP): "
        f"{count / elapsed:.0f} messages/s, {cpu / max(count, 1) * 1000:.2f} ms of CPU a message"
    )


if __name__ == "__main__":
    main()
