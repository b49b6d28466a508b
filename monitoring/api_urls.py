"""The API routes of agents, heartbeats, health and escalations; with or without the trailing slash."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from monitoring import api

router = SimpleRouter()
# DRF's constructor only knows "/" or nothing; a regex makes the slash optional.
router.trailing_slash = "/?"
router.register("agents", api.AgentViewSet, basename="agent")
router.register("escalations", api.EscalationViewSet, basename="escalation")

urlpatterns = [
    re_path(r"^health/?$", api.HealthView.as_view(), name="agent-health"),
    *router.urls,
]
