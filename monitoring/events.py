"""The monitor's live events (SPEC section 9), built here and sent only from monitoring/services.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.snapshot import agent_summary
from ssot.models import Agent


def agent_health(agent: Agent, *, previous: str, now: datetime) -> dict[str, Any]:
    """An agent's health changed: its row as the dashboard shows it, the status it left and the silence."""
    elapsed = int((now - agent.last_seen).total_seconds()) if agent.last_seen else None
    return {
        "type": "agent_health",
        "agent": agent_summary(agent),
        "previous": previous,
        "elapsed_sec": elapsed,
    }
