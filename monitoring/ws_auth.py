"""Who is on the other end of a WebSocket (SPEC section 9): the session cookie, or a token (a JWT access
token or an API key) in `?token=` or in an `Authorization: Bearer` header.

The `Origin` check protects cookie sessions only (a page of another site could ride the cookie): a client
that brings a token needs no `Origin`. A bad token never falls back to the cookie.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError

from ssot import credentials
from ssot.authentication import RevocableJWTAuthentication, bearer

AGENTS_GROUP = "agents"
# Where the credential a socket was opened with is kept, for the consumer's periodic re-check.
CREDENTIAL = "agentos_token"


def presented_token(scope: dict[str, Any]) -> str | None:
    """The token a client presents: `?token=` first, else an `Authorization: Bearer` header."""
    query = scope.get("query_string", b"").decode("latin1")
    values = parse_qs(query).get("token")
    if values:
        return values[0]
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            return bearer(value) or ""
    return None


def user_for_token_sync(raw: str) -> Any:
    """The active user a valid API key or JWT access token names; anonymous for anything else."""
    if credentials.looks_like_key(raw):
        found = credentials.apikey_user(raw)
        return found[0] if found else AnonymousUser()
    authentication = RevocableJWTAuthentication()
    try:
        return authentication.get_user(authentication.get_validated_token(raw.encode()))
    except (TokenError, AuthenticationFailed):
        return AnonymousUser()


user_for_token = database_sync_to_async(user_for_token_sync)


class TokenAuthMiddleware:
    """A presented token, when there is one, decides the user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = presented_token(scope)
        if raw is not None:
            scope = {**scope, "user": await user_for_token(raw), CREDENTIAL: raw}
        return await self.inner(scope, receive, send)


def _has_cookie(scope: dict[str, Any]) -> bool:
    return any(name.lower() == b"cookie" for name, _ in scope.get("headers", []))


class OriginCheckUnlessToken:
    """channels' `Origin` check (an allowed host) for cookie clients; a token client skips it, and so
    does a client with no credentials at all (it is accepted, then closed 4401)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if presented_token(scope) is not None or not _has_cookie(scope):
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)  # type: ignore[arg-type]


def WebsocketAuthStack(inner: Any) -> Any:
    """The origin check (cookie clients), the session of channels, then the token over it."""
    return OriginCheckUnlessToken(AuthMiddlewareStack(TokenAuthMiddleware(inner)))


@database_sync_to_async
def may_watch(user: Any) -> bool:
    """Staff users and agents may watch the events; nobody else."""
    if not user.is_active:
        return False
    return user.is_staff or user.groups.filter(name=AGENTS_GROUP).exists()


@database_sync_to_async
def still_allowed(scope: Any) -> bool:
    """Whether the socket's credential still holds: the token is valid (not revoked, not expired), or
    the session still exists (not signed out, not ended everywhere) and its user is still active."""
    raw = scope.get(CREDENTIAL)
    if raw is not None:
        user = user_for_token_sync(raw)
        return bool(user.is_authenticated)
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return False
    session = scope.get("session")
    key = session.session_key if session is not None else None
    if not key or not import_module(settings.SESSION_ENGINE).SessionStore().exists(key):
        return False
    return get_user_model().objects.filter(pk=user.pk, is_active=True).exists()
