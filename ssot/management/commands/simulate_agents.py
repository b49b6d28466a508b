"""simulate_agents: the coordinator, the executor and the reviewer writing real AMP/1.0 traffic to the SSOT.

Each task goes: the coordinator writes the task file and a `task_dispatch` (acceptance criteria, a feature
branch); the executor acknowledges it (an ack file) and starts, then sends a `task_result`; the
coordinator sends a `review_request` (its `context_ref` acknowledges the result); the reviewer answers
with a `review_verdict` (acknowledging the request the same way); the coordinator acknowledges the
verdict and closes the task, every K-th one as `awaiting_approval` for a human. Agents also write
heartbeats. Every write is one commit, made like an agent would: plain git in a working clone pushed to
the local bare repository (its post-receive hook tells the server), or through the store interface.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import amp
from ssot.documents import dump_json, parse_ack, parse_heartbeat, parse_task
from ssot.paths import ack_path, heartbeat_path, message_path, task_path
from ssot.stores.base import Store, StoreConflict, StoreError
from ssot.stores.factory import get_store

AGENTS = ("coordinator", "executor", "reviewer")
PUSH_ATTEMPTS = 10
RISKS = ("low", "medium", "high")


class WriteFailed(Exception):
    """A write could not be made after its retries; the reason is safe to print."""


# -- how the agents write -------------------------------------------------------------------------


class GitClone:
    """A working clone of the local SSOT that commits as an agent and pushes with plain git."""

    def __init__(self, remote: Path, *, branch: str = "main") -> None:
        self.remote = Path(remote)
        self.branch = branch
        self.path = Path(tempfile.mkdtemp(prefix="agentos-sim-"))
        self.git("clone", "--quiet", str(self.remote), ".")

    def git(
        self, *args: str, author: str = "simulate_agents", check: bool = True
    ) -> subprocess.CompletedProcess:
        # A session of its own: Ctrl-C in the terminal stops the simulator between writes, never a git
        # process halfway through a push.
        return subprocess.run(
            [
                "git",
                "-c",
                f"user.name={author}",
                "-c",
                f"user.email={author}@agents.invalid",
                "-c",
                "commit.gpgsign=false",
                *args,
            ],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=check,
            start_new_session=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )

    def write(self, *, files: dict[str, bytes], message: str, author: str) -> None:
        """Commit `files` as `author` and push; when the branch moved, redo the commit on its new head."""
        for _ in range(PUSH_ATTEMPTS):
            for path, data in files.items():
                target = self.path / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.git("add", "--", *files)
            self.git("commit", "--quiet", "--no-verify", "-m", message, author=author)
            pushed = self.git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", check=False)
            if pushed.returncode == 0:
                return
            # Someone else pushed first: take their head and write our files again on top of it.
            fetched = self.git("fetch", "--quiet", "origin", self.branch, check=False)
            if fetched.returncode != 0:
                raise WriteFailed(f"git push failed: {pushed.stderr.strip() or fetched.stderr.strip()}")
            self.git("reset", "--quiet", "--hard", "FETCH_HEAD")
        raise WriteFailed(f"the branch kept moving; gave up after {PUSH_ATTEMPTS} pushes")

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class StoreWriter:
    """Commits through the store interface (works for the GitHub store too), retrying on a moved head."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, *, files: dict[str, bytes], message: str, author: str) -> None:
        for _ in range(PUSH_ATTEMPTS):
            try:
                self.store.commit(parent=self.store.head(), writes=files, message=message, author=author)
                return
            except StoreConflict:
                continue
            except StoreError as exc:
                raise WriteFailed(f"SSOT unavailable: {exc}") from exc
        raise WriteFailed(f"the branch kept moving; gave up after {PUSH_ATTEMPTS} commits")

    def close(self) -> None:
        """The store is the process's shared one; nothing to release."""


# -- what the agents write ------------------------------------------------------------------------


@dataclass
class Step:
    """One commit by one agent: the files it writes and what they are, for the summary."""

    agent: str
    summary: str
    files: dict[str, bytes] = field(default_factory=dict)
    wrote: Counter = field(default_factory=Counter)


def _stamp() -> str:
    return amp.make_timestamp()


def _json(document: dict[str, Any]) -> bytes:
    return dump_json(document)


class TaskPlay:
    """The life of one simulated task, one step (commit) at a time."""

    def __init__(self, task_id: str, number: int, *, awaiting: bool) -> None:
        self.task_id = task_id
        self.awaiting = awaiting
        self.branch = f"feature/{task_id.lower()}"
        self.document: dict[str, Any] = {
            "task_id": task_id,
            "title": f"Simulated task {number}",
            "description": f"Task {number} played by simulate_agents.",
            "status": "dispatched",
            "risk_level": RISKS[number % len(RISKS)],
            "branch": self.branch,
            "assignee": "executor",
            "reject_count": 0,
            "last_writer": "coordinator",
        }
        self.final_status = ""
        self.steps: Iterator[Step] = self._play()

    def _task_file(self, step: Step, *, status: str, writer: str) -> None:
        self.document.update(status=status, last_writer=writer)
        data = _json(self.document)
        parse_task(task_path(self.task_id), data)
        step.files[task_path(self.task_id)] = data
        step.wrote["task files"] += 1

    def _message(self, step: Step, kind: str, recipient: str, payload: dict[str, Any], refs=()) -> str:
        envelope = amp.build_envelope(
            msg_type=kind,
            sender=step.agent,
            recipient=recipient,
            task_id=self.task_id,
            payload=payload,
            context_ref=refs,
        )
        amp.validate(envelope)
        step.files[message_path(envelope["msg_id"])] = _json(envelope)
        step.wrote[kind] += 1
        return envelope["msg_id"]

    def _ack(self, step: Step, msg_id: str) -> None:
        data = _json({"msg_id": msg_id, "by": step.agent, "at": _stamp()})
        parse_ack(ack_path(msg_id), data)
        step.files[ack_path(msg_id)] = data
        step.wrote["ack files"] += 1

    def _play(self) -> Iterator[Step]:
        task = self.task_id
        step = Step("coordinator", f"creates {task} and dispatches it on {self.branch}")
        self._task_file(step, status="dispatched", writer="coordinator")
        dispatch = self._message(
            step,
            "task_dispatch",
            "executor",
            {
                "branch": self.branch,
                "title": self.document["title"],
                "acceptance_criteria": [
                    "the change is covered by tests",
                    "the build is green on the feature branch",
                ],
            },
        )
        yield step

        step = Step("executor", f"acknowledges the dispatch of {task} and starts")
        self._ack(step, dispatch)
        self._task_file(step, status="in_progress", writer="executor")
        yield step

        step = Step("executor", f"reports the result of {task}")
        result = self._message(
            step,
            "task_result",
            "coordinator",
            {"branch": self.branch, "summary": "implemented; tests pass", "tests_passed": True},
            refs=[dispatch],
        )
        yield step

        step = Step("coordinator", f"asks for a review of {task}")
        request = self._message(
            step, "review_request", "reviewer", {"branch": self.branch, "result": result}, refs=[result]
        )
        self._task_file(step, status="in_review", writer="coordinator")
        yield step

        step = Step("reviewer", f"approves the change of {task}")
        verdict = self._message(
            step,
            "review_verdict",
            "coordinator",
            {"verdict": "approved", "comments": "looks good"},
            refs=[request],
        )
        yield step

        self.final_status = "awaiting_approval" if self.awaiting else "done"
        step = Step("coordinator", f"closes {task} as {self.final_status}")
        self._ack(step, verdict)
        self._task_file(step, status=self.final_status, writer="coordinator")
        yield step


def heartbeat(agent: str) -> Step:
    step = Step(agent, "heartbeat")
    data = _json({"agent": agent, "at": _stamp()})
    parse_heartbeat(heartbeat_path(agent), data)
    step.files[heartbeat_path(agent)] = data
    step.wrote["heartbeats"] += 1
    return step


# -- the play -------------------------------------------------------------------------------------


@dataclass
class Simulation:
    """Interleaves up to `parallel` tasks and the heartbeats into one stream of commits at `rate`."""

    write: Callable[..., None]
    rate: float
    duration: float
    tasks: int
    approval_every: int
    heartbeat_sec: float
    prefix: str
    parallel: int = 3
    stop: threading.Event = field(default_factory=threading.Event)
    report: Callable[[str], None] = print
    wrote: Counter = field(default_factory=Counter)
    commits: int = 0
    started_tasks: int = 0
    awaiting: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def run(self) -> str:
        """Write until the tasks are done, the duration is over or `stop` is set; returns why it ended."""
        began = time.monotonic()
        deadline = began + self.duration if self.duration > 0 else None
        interval = 1.0 / self.rate
        last_beat = dict.fromkeys(AGENTS, float("-inf"))
        active: list[TaskPlay] = []
        turn = itertools.count()
        next_at = began
        while True:
            if self.stop.is_set():
                return "interrupted"
            if deadline is not None and time.monotonic() >= deadline:
                return "duration reached"
            while len(active) < self.parallel and (not self.tasks or self.started_tasks < self.tasks):
                self.started_tasks += 1
                number = self.started_tasks
                active.append(
                    TaskPlay(
                        f"{self.prefix}-{number:04d}",
                        number,
                        awaiting=self.approval_every > 0 and number % self.approval_every == 0,
                    )
                )
            if not active:
                return "all tasks done"
            due = [agent for agent in AGENTS if time.monotonic() - last_beat[agent] >= self.heartbeat_sec]
            if due:
                step, play = heartbeat(due[0]), None
                last_beat[due[0]] = time.monotonic()
            else:
                play = active[next(turn) % len(active)]
                found = next(play.steps, None)
                if found is None:
                    active.remove(play)
                    continue
                step = found
            wait = next_at - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return "interrupted"
            next_at = max(time.monotonic(), next_at) + interval
            self.write(files=step.files, message=f"{step.agent}: {step.summary}", author=step.agent)
            self.commits += 1
            self.wrote.update(step.wrote)
            self.report(f"{time.monotonic() - began:8.2f}s  {step.agent:<11} {step.summary}")
            if play is not None and play.final_status:
                self.finished.append(play.task_id)
                if play.awaiting:
                    self.awaiting.append(play.task_id)
                active.remove(play)

    def summary(self, *, via: str, seconds: float, reason: str) -> str:
        messages = sum(self.wrote[kind] for kind in amp.MESSAGE_TYPES)
        by_type = ", ".join(f"{kind} {self.wrote[kind]}" for kind in amp.MESSAGE_TYPES if self.wrote[kind])
        lines = [
            f"simulate_agents: {reason} after {seconds:.1f}s; {self.commits} commits via {via}",
            f"  tasks: {self.started_tasks} started, {len(self.finished)} finished, "
            f"{self.wrote['task files']} task file writes",
            f"  messages: {messages}" + (f" ({by_type})" if by_type else ""),
            f"  ack files: {self.wrote['ack files']}; heartbeats: {self.wrote['heartbeats']}",
            f"  awaiting approval: {', '.join(self.awaiting) or 'none'}",
        ]
        return "\n".join(lines)


class Command(BaseCommand):
    help = "Play coordinator, executor and reviewer against the configured SSOT with real AMP/1.0 traffic."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=2.0, help="commits per second (default 2)")
        parser.add_argument("--duration", type=float, default=0, help="stop after S seconds (0: no limit)")
        parser.add_argument("--tasks", type=int, default=0, help="stop after N tasks (0: no limit)")
        parser.add_argument(
            "--approval-every", type=int, default=3, help="every K-th task ends awaiting_approval (0: none)"
        )
        parser.add_argument("--via", choices=("git", "store"), help="git (local store default) or store")
        parser.add_argument("--heartbeat-sec", type=float, default=20.0, help="seconds between heartbeats")
        parser.add_argument("--parallel", type=int, default=3, help="tasks in flight at once (default 3)")
        parser.add_argument("--prefix", help="task id prefix (default SIM-<time>)")

    def handle(self, *args, **options):
        if options["rate"] <= 0:
            raise CommandError("--rate must be above 0")
        if options["tasks"] < 0 or options["approval_every"] < 0 or options["parallel"] < 1:
            raise CommandError("--tasks and --approval-every must be >= 0, --parallel >= 1")
        local = settings.SSOT_BACKEND == "local"
        via = options["via"] or ("git" if local else "store")
        if via == "git" and not local:
            raise CommandError("--via git needs the local store (SSOT_BACKEND=local); use --via store")
        prefix = options["prefix"] or f"SIM-{datetime.now(UTC):%y%m%d-%H%M%S}"
        if not amp.is_safe_id(f"{prefix}-0001"):
            raise CommandError(f"--prefix {prefix!r} does not make path-safe task ids")
        try:
            writer = GitClone(settings.SSOT_LOCAL_PATH) if via == "git" else StoreWriter(get_store())
        except subprocess.CalledProcessError as exc:
            raise CommandError(f"cannot clone {settings.SSOT_LOCAL_PATH}: {exc.stderr.strip()}") from exc
        verbose = options["verbosity"] >= 1
        simulation = Simulation(
            write=writer.write,
            rate=options["rate"],
            duration=options["duration"],
            tasks=options["tasks"],
            approval_every=options["approval_every"],
            heartbeat_sec=options["heartbeat_sec"],
            prefix=prefix,
            parallel=options["parallel"],
            report=(lambda line: self.stdout.write(line)) if verbose else (lambda line: None),
        )
        stop = simulation.stop
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        began = time.monotonic()
        try:
            reason = simulation.run()
        except WriteFailed as exc:
            reason = f"stopped: {exc}"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            writer.close()
        self.stdout.write(simulation.summary(via=via, seconds=time.monotonic() - began, reason=reason))
        if reason.startswith("stopped:"):
            raise CommandError(reason)
