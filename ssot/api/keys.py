"""`/api/keys/` (SPEC section 7): list, create (the key shown once) and revoke API keys.

Everyone who may read the API manages their own keys; `ssot.manage_keys` sees and revokes every key and
creates keys for others. Every write goes through ssot.credentials.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import BAD_REQUEST, FORBIDDEN, READ_ERRORS, UNAUTHENTICATED, ApiViewSet, actor, error, validated
from core.errors import Forbidden, Invalid
from ssot import credentials
from ssot.models import ApiKey

MANAGE_KEYS = "ssot.manage_keys"


class ApiKeySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "key_id",
            "name",
            "owner",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
            "active",
        ]
        read_only_fields = fields

    def get_active(self, key: ApiKey) -> bool:
        return key.revoked_at is None and key.expires_at > self.context["now"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself: shown this once, only its hash is kept.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=credentials.MAX_NAME)
    days = serializers.IntegerField(
        required=False, help_text=f"1 to {credentials.MAX_DAYS} (default {credentials.DEFAULT_DAYS})."
    )
    owner = serializers.CharField(
        required=False,
        max_length=150,
        help_text="Whose key (default: yours; another's needs ssot.manage_keys).",
    )


@extend_schema_view(
    list=extend_schema(
        summary="List API keys (yours; every key with ssot.manage_keys)",
        responses={200: ApiKeySerializer(many=True), **READ_ERRORS},
    ),
    create=extend_schema(
        summary="Create an API key: the answer holds the key, shown this once",
        request=ApiKeyCreateSerializer,
        responses={
            201: ApiKeyCreatedSerializer,
            400: BAD_REQUEST,
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            422: error("Days out of range, a name too long, or an unknown or inactive owner (`invalid`)."),
        },
    ),
    destroy=extend_schema(
        summary="Revoke an API key at once",
        responses={
            200: ApiKeySerializer,
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: error("No such key (or not yours)."),
        },
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, ApiViewSet):
    serializer_class = ApiKeySerializer
    lookup_field = "key_id"
    lookup_value_regex = "[^/]+"
    # Keys are not filtered by the query string.
    filterset_class = None

    def get_queryset(self) -> QuerySet[ApiKey]:
        keys = ApiKey.objects.select_related("owner").order_by("-created_at", "-id")
        if self.request.user.has_perm(MANAGE_KEYS):
            return keys
        return keys.filter(owner_id=self.request.user.pk)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def create(self, request: Request) -> Response:
        body = validated(ApiKeyCreateSerializer, request.data)
        owner = request.user
        wanted = body.get("owner")
        if wanted and wanted != request.user.get_username():
            if not request.user.has_perm(MANAGE_KEYS):
                raise Forbidden("Creating a key for another user needs the permission ssot.manage_keys.")
            model = get_user_model()
            found = model.objects.filter(**{model.USERNAME_FIELD: wanted}).first()
            if found is None:
                raise Invalid(f"No user {wanted!r}.", [{"path": "owner", "message": "unknown user"}])
            owner = found
        new = credentials.apikey_create(
            owner=owner, name=body.get("name", ""), days=body.get("days"), actor=actor(request)
        )
        data = ApiKeySerializer(new.key, context=self.get_serializer_context()).data
        return Response({**data, "key": new.plaintext}, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, key_id: str) -> Response:
        key = credentials.apikey_revoke(key_id=key_id, actor=actor(request), queryset=self.get_queryset())
        return Response(ApiKeySerializer(key, context=self.get_serializer_context()).data)
