"""DRF authentication of agents and tools (SPEC section 7): API keys, and JWTs bound to the user's cutoff.

Both read the database on every request, so a revocation holds at once in every process, and in one
query each: the user's row comes with its cutoff and with whether it is an agent (the permission check
that follows reads that instead of asking again).
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from core.permissions import know_agent
from ssot import credentials


def bearer(header: bytes | str) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header, or None."""
    text = header.decode("latin1") if isinstance(header, bytes) else header
    parts = text.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer agos_<id>_<secret>`; any other bearer token is left to the JWT check."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = bearer(get_authorization_header(request))
        if raw is None or not credentials.looks_like_key(raw):
            return None
        found = credentials.apikey_user(raw)
        if found is None:
            raise AuthenticationFailed("The API key is unknown, expired or revoked.", code="key_not_valid")
        return found

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def check_epoch(user: Any, token: Token) -> None:
    """Refuse a token issued before the user's current cutoff (password change, deactivation, sign-out)."""
    _refuse_before(token, credentials.current_epoch(user))


def _refuse_before(token: Token, epoch: int) -> None:
    if token.get(credentials.EPOCH_CLAIM, 0) != epoch:
        raise AuthenticationFailed(
            "This token was revoked (password change, deactivation or sign-out); obtain a new one.",
            code="token_revoked",
        )


@functools.cache
def _users_to_authenticate() -> QuerySet[Any]:
    """Users, each with its JWT cutoff (a LEFT JOIN) and whether it is an agent: one query. Built once
    (its annotation cost 0.3 ms a request) and never evaluated itself: `.get()` works on a clone, as DRF
    clones a view's class-level `queryset`."""
    return (
        get_user_model()
        .objects.select_related("token_cutoff")
        .annotate(agentos_is_agent=credentials.is_agent_column("pk"))
    )


class RevocableJWTAuthentication(JWTAuthentication):
    """simplejwt's JWT check, plus the user's cutoff, in one query."""

    def get_user(self, validated_token: Token) -> Any:
        # simplejwt's JWTAuthentication.get_user (fenced: agentos_site/tests/test_tripwires.py) with its
        # lookup made `_users_to_authenticate()`; then the cutoff and the agent flag that lookup brought.
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as e:
            raise InvalidToken(str(_("Token contained no recognizable user identification"))) from e
        try:
            user = _users_to_authenticate().get(**{api_settings.USER_ID_FIELD: user_id})
        except self.user_model.DoesNotExist as e:
            raise AuthenticationFailed(_("User not found"), code="user_not_found") from e
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")
        # No cutoff row: the reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
        cutoff = getattr(user, "token_cutoff", None)
        _refuse_before(validated_token, credentials.epoch_of(cutoff.valid_after if cutoff else None))
        know_agent(user, user.agentos_is_agent)
        return user


class EpochRefreshToken(RefreshToken):
    """A refresh token (and the access tokens made from it) stamped with the user's cutoff."""

    @classmethod
    def for_user(cls, user: Any) -> Any:
        token = super().for_user(user)
        token[credentials.EPOCH_CLAIM] = credentials.current_epoch(user)
        return token


class EpochAccessToken(AccessToken):
    @classmethod
    def for_user(cls, user: Any) -> Any:
        token = super().for_user(user)
        token[credentials.EPOCH_CLAIM] = credentials.current_epoch(user)
        return token


class EpochTokenObtainPairSerializer(TokenObtainPairSerializer):
    token_class = EpochRefreshToken


class EpochTokenRefreshSerializer(TokenRefreshSerializer):
    """A refresh token issued before the user's cutoff gives no new access token."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        check_epoch(user, refresh)
        return super().validate(attrs)


class RevocableJWTScheme(SimpleJWTScheme):
    """The OpenAPI description of the JWT check: drf-spectacular's own, under its usual name."""

    target_class = "ssot.authentication.RevocableJWTAuthentication"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "ssot.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "agos_<id>_<secret>",
            "description": "An API key: created in the admin, by apikey_create or with POST /api/keys/.",
        }
