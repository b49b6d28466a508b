"""Who may call what (SPEC section 7): roles are Django permissions; agents are users of group `agents`."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

AGENTS_GROUP = "agents"
APPROVE = "ssot.approve_task"
OVERRIDE = "ssot.override_task"


def is_agent(user: Any) -> bool:
    """An active user of the group `agents` (named after the agent it authenticates)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    cached = getattr(user, "_agentos_is_agent", None)
    if cached is None:
        cached = user.groups.filter(name=AGENTS_GROUP).exists()
        know_agent(user, cached)
    return cached


def know_agent(user: Any, agent: bool) -> None:
    """Record whether `user` is an agent, read by whoever loaded it (authentication asks in its own query);
    `is_agent` then asks the database no more for this user object."""
    user._agentos_is_agent = bool(agent)


def may_read(user: Any) -> bool:
    """Any active staff user or agent may read."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or is_agent(user)))


class CanRead(BasePermission):
    message = "Reading needs a staff account or an agent account."

    def has_permission(self, request: Any, view: Any) -> bool:
        return may_read(request.user)


class IsAgent(BasePermission):
    message = "Only agents (users of the group 'agents') may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_agent(request.user)


class CanApprove(BasePermission):
    message = "Approving, rejecting and handling escalations needs the permission ssot.approve_task."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_active and user.has_perm(APPROVE))


class CanOverride(BasePermission):
    message = "Overriding a task and triggering a resync need the permission ssot.override_task."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_active and user.has_perm(OVERRIDE))


def ack_identity(user: Any) -> str:
    """Who acknowledges: an agent as itself, an approver as `admin` (the addressee of messages to humans)."""
    return user.get_username() if is_agent(user) else "admin"


class CanAck(BasePermission):
    message = "Only the addressee acknowledges: an agent, or an approver for messages to admin."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if is_agent(user):
            return True
        return bool(user and user.is_active and user.is_staff and user.has_perm(APPROVE))
