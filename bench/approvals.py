"""M-of-N approvals: the cost of a partial approval and of the decision, on the local store and on GitHub.

Run: .venv/bin/python -m bench.approvals [--tasks 50]

For each store, `--tasks` high-risk tasks under a policy of two approvers: alice approves each (a partial
approval: approvals/{task_id}.json and its audit line), then bob (the decision: the task, the approvals
file removed, the audit line). Prints the median and p95 time of each kind, and on GitHub the API calls
and commits of one of each, counted at the emulator with the control plane's store started cold.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.setup import django_for_bench, percentile

POLICY = {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}


def _seed(store, tasks: int) -> None:
    from ssot.documents import dump_json
    from ssot.paths import POLICY_PATH
    from ssot.sync import sync
    from testing.content import task_doc

    writes = {POLICY_PATH: dump_json(POLICY)}
    for n in range(tasks):
        doc = task_doc(f"T-{n:05d}", status="awaiting_approval", risk_level="high", requested_by="carol")
        writes[f"tasks/T-{n:05d}.json"] = dump_json(doc)
    store.commit(parent=store.head(), writes=writes, message="bench", author="coordinator")
    sync(full=True)


def _run(label: str, tasks: int) -> None:
    from ssot import services

    timings: dict[str, list[float]] = {"partial": [], "decision": []}
    for n in range(tasks):
        for kind, actor in (("partial", "alice"), ("decision", "bob")):
            started = time.perf_counter()
            decision = services.task_approve(task_id=f"T-{n:05d}", actor=actor)
            timings[kind].append(time.perf_counter() - started)
            assert decision.status == ("approved" if kind == "decision" else "awaiting_approval")
    for kind, values in timings.items():
        print(
            f"{label} {kind} approval: median {statistics.median(values) * 1000:.1f} ms, "
            f"p95 {percentile(values, 0.95) * 1000:.1f} ms over {len(values)}"
        )


def _users() -> None:
    from django.contrib.auth.models import Group, Permission, User

    group, _ = Group.objects.get_or_create(name="approvers")
    group.permissions.add(Permission.objects.get(codename="approve_task"))
    for name in ("alice", "bob"):
        user, _ = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        user.groups.add(group)


def local(tasks: int) -> None:
    from django.conf import settings

    from ssot.stores.factory import get_store, reset_store
    from ssot.stores.local import LocalStore

    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = settings.VAR_DIR / "approvals.git"
    LocalStore.create(settings.SSOT_LOCAL_PATH)
    reset_store()
    _seed(get_store(), tasks)
    _run("local", tasks)


def github(tasks: int) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from ssot import services
    from ssot.stores.factory import get_store, reset_store
    from testing.github_fixture import github_emulator

    call_command("flush", interactive=False, verbosity=0)
    _users()
    with github_emulator(settings.VAR_DIR) as emulator:
        settings.SSOT_BACKEND = "github"
        settings.GITHUB_TOKEN = emulator.token
        settings.GITHUB_SSOT_REPO = f"{emulator.owner}/{emulator.name}"
        settings.GITHUB_API_URL = emulator.base_url
        reset_store()
        _seed(get_store(), tasks + 1)
        for kind, actor in (("partial", "alice"), ("decision", "bob")):
            reset_store()
            emulator.reset_counts()
            services.task_approve(task_id=f"T-{tasks:05d}", actor=actor)
            commits = sum(
                n
                for route, n in emulator.requests.items()
                if route.startswith("POST /repos/{owner}/{repo}/git/commits")
            )
            print(f"github {kind} approval: {emulator.total_requests()} API calls, {commits} commit(s)")
        _run("github", tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    django_for_bench("approvals")
    _users()
    local(args.tasks)
    github(args.tasks)


if __name__ == "__main__":
    main()
