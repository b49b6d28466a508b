"""simulate_agents writes a real, valid AMP/1.0 conversation to the SSOT and stops cleanly."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from ssot.models import Agent, Message, QuarantinedFile, Task
from ssot.sync import sync


def simulate(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_agents", *args, stdout=out)
    return out.getvalue()


def git_authors(repo: Path) -> set[str]:
    log = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "--format=%an", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(log.stdout.split())


@pytest.mark.django_db
def test_plain_git_pushes_play_two_tasks_to_the_end(ssot_path):
    output = simulate(
        "--rate", "200", "--tasks", "2", "--approval-every", "2", "--via", "git", "--prefix", "SIMT"
    )

    report = sync()
    assert report.quarantined == []
    assert not QuarantinedFile.objects.exists()
    assert dict(Task.objects.values_list("task_id", "status")) == {
        "SIMT-0001": "done",
        "SIMT-0002": "awaiting_approval",
    }
    types = sorted(Message.objects.values_list("type", flat=True))
    assert types == sorted(["task_dispatch", "task_result", "review_request", "review_verdict"] * 2)
    # Every message that needs an ACK got one: by an ack file or by the addressee's next message.
    assert set(Message.objects.values_list("ack_state", flat=True)) == {"acked"}
    for dispatch in Message.objects.filter(type="task_dispatch"):
        assert dispatch.payload["branch"].startswith("feature/")
        assert dispatch.payload["acceptance_criteria"]
    assert set(Agent.objects.exclude(last_seen=None).values_list("name", flat=True)) == {
        "coordinator",
        "executor",
        "reviewer",
    }
    assert git_authors(ssot_path) == {"coordinator", "executor", "reviewer"}
    assert "all tasks done" in output
    assert "messages: 8 (task_dispatch 2, task_result 2, review_request 2, review_verdict 2)" in output
    assert "ack files: 4; heartbeats: 3" in output
    assert "awaiting approval: SIMT-0002" in output


@pytest.mark.django_db
def test_the_store_interface_writes_the_same_conversation(ssot_path):
    output = simulate(
        "--rate", "200", "--tasks", "1", "--approval-every", "1", "--via", "store", "--prefix", "ST"
    )

    sync()
    assert Task.objects.get(task_id="ST-0001").status == "awaiting_approval"
    assert Message.objects.count() == 4
    assert "via store" in output


def test_it_stops_when_the_duration_is_over(ssot_path):
    output = simulate("--rate", "50", "--duration", "0.3", "--via", "store", "-v", "0")
    assert "duration reached" in output


def test_ctrl_c_stops_it_between_two_writes(ssot_path):
    env = {**os.environ, "SSOT_BACKEND": "local", "SSOT_LOCAL_PATH": str(ssot_path)}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_agents", "--rate", "5", "--duration", "120"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = process.stdout.readline()
        assert "heartbeat" in first
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    assert "simulate_agents: interrupted" in rest
    assert "commits via git" in rest


def test_git_needs_the_local_store(settings):
    settings.SSOT_BACKEND = "github"
    with pytest.raises(CommandError, match="--via git needs the local store"):
        simulate("--via", "git")


def test_the_rate_must_be_positive(ssot_path):
    with pytest.raises(CommandError, match="--rate must be above 0"):
        simulate("--rate", "0")
