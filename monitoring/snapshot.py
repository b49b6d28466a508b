"""The `init` message a WebSocket client gets on connect: the state every later event is applied to."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ssot import events
from ssot.models import Agent, AuditEntry, Escalation, Message, Task
from ssot.policy import approval_counts
from ssot.sync import sync_state

# Bounds that keep the snapshot small whatever the SSOT holds; tasks awaiting approval are always in.
TASKS = 500
MESSAGES = 30
AUDIT_LINES = 50


def agent_summary(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "status": agent.status,
        "status_since": agent.status_since.isoformat() if agent.status_since else None,
        "last_seen": agent.last_seen.isoformat() if agent.last_seen else None,
        "last_seen_via": agent.last_seen_via,
    }


def _tasks() -> list[Task]:
    # The documents are not part of a summary: not read at all, however large an agent made them.
    rows = Task.objects.defer("document")
    recent = list(rows.order_by("-updated_at")[:TASKS])
    shown = {task.pk for task in recent}
    waiting = rows.filter(status=Task.AWAITING_APPROVAL).exclude(pk__in=shown)
    return recent + list(waiting)


def _agents() -> list[dict[str, Any]]:
    rows = {agent.name: agent_summary(agent) for agent in Agent.objects.order_by("name")}
    for name in settings.AGENTS:
        rows.setdefault(name, agent_summary(Agent(name=name)))
    return [rows[name] for name in sorted(rows)]


def _sync() -> dict[str, Any]:
    state = sync_state()
    return {
        "backend": state.backend,
        "branch": state.branch,
        "head": state.head,
        "last_sync_at": state.last_sync_at.isoformat() if state.last_sync_at else None,
        "failing": state.consecutive_errors > 0,
        "consecutive_errors": state.consecutive_errors,
        "last_error": state.last_error if state.consecutive_errors else "",
    }


def build() -> dict[str, Any]:
    """Tasks, agents, unresolved escalations, recent messages and audit lines, and the sync position."""
    tasks = _tasks()
    counts = approval_counts(tasks)
    return {
        "type": "init",
        "server_time": timezone.now().isoformat(),
        "ping_sec": settings.WS_PING_SEC,
        "tasks": [events.task_summary(task, counts) for task in tasks],
        "tasks_total": Task.objects.count(),
        "agents": _agents(),
        "escalations": [
            events.escalation_summary(escalation)
            for escalation in Escalation.objects.filter(~Q(status=Escalation.Status.RESOLVED)).order_by(
                "-created_at"
            )
        ],
        "messages": [
            events.message_summary(message)
            for message in Message.objects.defer("payload", "envelope").order_by("-timestamp")[:MESSAGES]
        ],
        "audit": [
            events.audit_summary(entry)
            for entry in AuditEntry.objects.order_by("-timestamp", "-id")[:AUDIT_LINES]
        ],
        "sync": _sync(),
    }
