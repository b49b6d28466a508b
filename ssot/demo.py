"""Demo content for `ssot_init --demo`: a few tasks, one awaiting approval, and the agents' messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

import amp
from ssot.documents import dump_json
from ssot.paths import ack_path, heartbeat_path, message_path, task_path

TASKS = [
    ("DEMO-1", "Add offline mode to the sync client", "awaiting_approval", "high", "feature/offline-mode"),
    ("DEMO-2", "Fix the crash when the token expires", "in_review", "medium", "fix/token-expiry"),
    ("DEMO-3", "Write the onboarding screens", "in_progress", "low", "feature/onboarding"),
    ("DEMO-4", "Upgrade the build toolchain", "dispatched", "medium", "chore/toolchain"),
    ("DEMO-5", "Remove the legacy settings page", "approved", "low", "cleanup/legacy-settings"),
]


def _message(
    kind: str,
    sender: str,
    recipient: str,
    task_id: str,
    when: datetime,
    payload: dict,
    context_ref: tuple[str, ...] = (),
) -> dict:
    return amp.build_envelope(
        msg_type=kind,
        sender=sender,
        recipient=recipient,
        task_id=task_id,
        payload=payload,
        context_ref=context_ref,
        now=when,
    )


def demo_files(now: datetime | None = None) -> dict[str, bytes]:
    """The files of the demo, as path -> content."""
    now = now or timezone.now()
    files: dict[str, bytes] = {}
    for index, (task_id, title, status, risk, branch) in enumerate(TASKS):
        start = now - timedelta(hours=5 - index, minutes=7 * index)
        files[task_path(task_id)] = dump_json(
            {
                "task_id": task_id,
                "title": title,
                "description": f"{title}. Demo task.",
                "status": status,
                "risk_level": risk,
                "branch": branch,
                "assignee": "executor",
                "reject_count": 0,
                "last_writer": "coordinator",
                "priority": index + 1,
            }
        )
        dispatch = _message(
            "task_dispatch",
            "coordinator",
            "executor",
            task_id,
            start,
            {
                "branch": branch,
                "acceptance_criteria": [f"{title} works", "tests pass"],
                "instructions": title,
            },
        )
        ack = {
            "msg_id": dispatch["msg_id"],
            "by": "executor",
            "at": (start + timedelta(seconds=40)).isoformat(),
        }
        files[message_path(dispatch["msg_id"])] = dump_json(dispatch)
        files[ack_path(dispatch["msg_id"])] = dump_json(ack)
        if status in ("awaiting_approval", "in_review", "approved"):
            result = _message(
                "task_result",
                "executor",
                "coordinator",
                task_id,
                start + timedelta(minutes=50),
                {"summary": f"{title}: done", "commits": 3},
                (dispatch["msg_id"],),
            )
            review = _message(
                "review_request",
                "coordinator",
                "reviewer",
                task_id,
                start + timedelta(minutes=55),
                {"branch": branch, "diff_stat": "+120 -30"},
                (result["msg_id"],),
            )
            files[message_path(result["msg_id"])] = dump_json(result)
            files[message_path(review["msg_id"])] = dump_json(review)
            if status != "in_review":
                verdict = _message(
                    "review_verdict",
                    "reviewer",
                    "coordinator",
                    task_id,
                    start + timedelta(minutes=70),
                    {"verdict": "pass", "notes": "looks right"},
                    (review["msg_id"],),
                )
                files[message_path(verdict["msg_id"])] = dump_json(verdict)
    for agent in ("coordinator", "executor", "reviewer"):
        files[heartbeat_path(agent)] = dump_json({"agent": agent, "at": now.isoformat()})
    return files
