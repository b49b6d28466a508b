"""The API of agents' health, heartbeats and escalations (SPEC section 7); writes through ssot.services."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import permissions
from core.api import (
    BAD_REQUEST,
    READ_ERRORS,
    SSOT_UNAVAILABLE,
    UNAUTHENTICATED,
    ApiView,
    ApiViewSet,
    actor,
    error,
    validated,
)
from core.errors import Forbidden
from core.filters import ID_LENGTH
from monitoring import selectors
from ssot import services
from ssot.api.serializers import REQUIRED_REASON_HELP, RequiredReason
from ssot.models import Agent, Escalation

# -- shapes ------------------------------------------------------------------------------------------


class AgentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["name", "status", "status_since", "last_seen", "last_seen_via"]
        read_only_fields = fields


class AgentHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    last_heartbeat = serializers.DateTimeField(allow_null=True, help_text="The agent's latest SSOT write.")
    status = serializers.ChoiceField(choices=Agent.Status.choices)


# The answer of GET /api/health: a map keyed by agent name, as the draft had it (AgentHealthSerializer).
AGENT_HEALTH_MAP = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "last_heartbeat": {
                "type": "string",
                "format": "date-time",
                "nullable": True,
                "description": "The agent's latest SSOT write.",
            },
            "status": {"type": "string", "enum": [value for value, _ in Agent.Status.choices]},
        },
        "required": ["name", "last_heartbeat", "status"],
    },
}


class HeartbeatResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    agent = serializers.CharField()
    at = serializers.CharField()


class EscalationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Escalation
        fields = [
            "id",
            "msg_id",
            "task_id",
            "escalation_type",
            "severity",
            "triggered_by",
            "description",
            "subject",
            "status",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "resolution",
            "created_at",
        ]
        read_only_fields = fields


class ResolveRequestSerializer(serializers.Serializer):
    reason = RequiredReason(help_text=REQUIRED_REASON_HELP)


class EscalationFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Escalation.Status.choices)
    severity = filters.CharFilter(max_length=16)
    escalation_type = filters.CharFilter(max_length=64)
    task_id = filters.CharFilter(max_length=ID_LENGTH)

    class Meta:
        model = Escalation
        fields = ["status", "severity", "escalation_type", "task_id"]


# -- views -------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Agents and their health", responses={200: AgentSerializer(many=True), **READ_ERRORS}
    ),
)
class AgentViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = selectors.agent_list()
    serializer_class = AgentSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"

    def get_permissions(self) -> list[Any]:
        return [permissions.IsAgent() if self.action == "heartbeat" else permissions.CanRead()]

    @extend_schema(
        summary="An agent's explicit heartbeat (that agent only)",
        request=None,
        responses={
            200: HeartbeatResultSerializer,
            401: UNAUTHENTICATED,
            403: error("Not an agent, or another agent than the one named."),
            503: SSOT_UNAVAILABLE,
        },
    )
    @action(detail=True, methods=["post"])
    def heartbeat(self, request: Request, name: str) -> Response:
        if name != request.user.get_username():
            raise Forbidden(
                f"You are {request.user.get_username()!r}; only {name[:80]!r} can send its heartbeat."
            )
        written = services.agent_heartbeat(agent=name)
        return Response({"ok": True, "agent": written.id, "at": written.document["at"]})


class HealthView(ApiView):
    @extend_schema(
        summary="The draft's agent-health map (compatibility)",
        responses={
            200: OpenApiResponse(AGENT_HEALTH_MAP, description="An object keyed by agent name."),
            401: UNAUTHENTICATED,
            403: READ_ERRORS[403],
        },
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.agent_health())


ESCALATION_ID = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The escalation's numeric id or its msg_id."
)
ESCALATION_ERRORS = {
    401: UNAUTHENTICATED,
    403: error("Without the permission ssot.approve_task."),
    404: error("No such escalation."),
    409: error("The escalation is not in a state that allows this (`wrong_state`)."),
    503: SSOT_UNAVAILABLE,
}


@extend_schema_view(
    list=extend_schema(
        summary="Escalations", responses={200: EscalationSerializer(many=True), **READ_ERRORS}
    ),
)
class EscalationViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = selectors.escalation_list()
    serializer_class = EscalationSerializer
    filterset_class = EscalationFilter
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[^/]+"

    def get_permissions(self) -> list[Any]:
        if self.action in ("acknowledge", "resolve"):
            return [permissions.CanApprove()]
        return [permissions.CanRead()]

    @extend_schema(
        summary="Acknowledge an open escalation",
        parameters=[ESCALATION_ID],
        request=None,
        responses={200: EscalationSerializer, **ESCALATION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, id: str) -> Response:
        escalation = services.escalation_acknowledge(escalation_id=id, actor=actor(request))
        return Response(EscalationSerializer(escalation).data)

    @extend_schema(
        summary="Resolve an escalation with a reason",
        parameters=[ESCALATION_ID],
        request=ResolveRequestSerializer,
        responses={
            200: EscalationSerializer,
            400: BAD_REQUEST,
            422: error("A missing or too long reason."),
            **ESCALATION_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, id: str) -> Response:
        body = validated(ResolveRequestSerializer, request.data)
        escalation = services.escalation_resolve(
            escalation_id=id, actor=actor(request), reason=body.get("reason") or ""
        )
        return Response(EscalationSerializer(escalation).data)
