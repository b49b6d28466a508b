"""Who is on the other end of a WebSocket: the session cookie, or `?token=<JWT access>` (SPEC section 9)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError

AGENTS_GROUP = "agents"


def _query_token(scope: dict[str, Any]) -> str | None:
    query = scope.get("query_string", b"").decode("latin1")
    values = parse_qs(query).get("token")
    return values[0] if values else None


@database_sync_to_async
def _user_for_token(raw: str) -> Any:
    """The active user a valid access token names; anonymous for anything else (expired, forged, refresh)."""
    authentication = JWTAuthentication()
    try:
        return authentication.get_user(authentication.get_validated_token(raw.encode()))
    except (TokenError, AuthenticationFailed):
        return AnonymousUser()


class JwtQueryAuthMiddleware:
    """A `token` query parameter, when present, decides the user: a bad token never falls back to a cookie."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = _query_token(scope)
        if raw is not None:
            scope = {**scope, "user": await _user_for_token(raw)}
        return await self.inner(scope, receive, send)


def WebsocketAuthStack(inner: Any) -> Any:
    """The session (cookie) authentication of channels, then the JWT query parameter over it."""
    return AuthMiddlewareStack(JwtQueryAuthMiddleware(inner))


@database_sync_to_async
def may_watch(user: Any) -> bool:
    """Staff users and agents may watch the events; nobody else."""
    if not user.is_active:
        return False
    return user.is_staff or user.groups.filter(name=AGENTS_GROUP).exists()
