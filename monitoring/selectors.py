"""Reads of agents' health and escalations for the API and the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from ssot.models import Agent, Escalation


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.all()


def agent_health() -> dict[str, dict[str, Any]]:
    """The draft's health map {name: {name, last_heartbeat, status}}: every configured or seen agent."""
    health = {
        name: {"name": name, "last_heartbeat": None, "status": Agent.Status.UNKNOWN.value}
        for name in settings.AGENTS
    }
    for agent in Agent.objects.order_by("name"):
        health[agent.name] = {
            "name": agent.name,
            "last_heartbeat": agent.last_seen.isoformat() if agent.last_seen else None,
            "status": agent.status,
        }
    return dict(sorted(health.items()))


def escalation_list() -> QuerySet[Escalation]:
    return Escalation.objects.all()
