"""The API views of tasks, messages, audit and sync: thin, every write through ssot.services."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import get_user_model
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView
from rest_framework_simplejwt.views import TokenRefreshView as SimpleJWTTokenRefreshView

import amp
from amp.jsonschema import build_policy_schema
from core import permissions
from core.api import (
    BAD_REQUEST,
    FORBIDDEN,
    READ_ERRORS,
    SSOT_UNAVAILABLE,
    UNAUTHENTICATED,
    ApiView,
    ApiViewSet,
    actor,
    error,
    validated,
)
from core.errors import Invalid
from core.parsers import nul_paths
from ssot import selectors, services
from ssot.api.filters import AuditFilter, MessageFilter, TaskFilter
from ssot.api.serializers import (
    AckResultSerializer,
    AmpMessageSerializer,
    ApproveRequestSerializer,
    ApproveResultSerializer,
    AuditEntrySerializer,
    DecisionResultSerializer,
    MessageSerializer,
    MessageWriteResultSerializer,
    OverrideRequestSerializer,
    PolicySerializer,
    RejectRequestSerializer,
    SyncReportSerializer,
    SyncRequestSerializer,
    SyncStatusSerializer,
    TaskDetailSerializer,
    TaskSerializer,
)
from ssot.lockout import lockout_message
from ssot.sync import sync

AMP_SCHEMA = Path(amp.__file__).resolve().parent / "schema" / "amp-1.0.schema.json"
# Ids are file names in the SSOT: anything up to the next slash reaches the view, which answers 404
# for an id that is not path-safe instead of letting the URL resolver answer with an HTML page.
ID_REGEX = r"[^/]+"


WRITE_ERRORS = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: error("No such task."),
    409: error("Wrong state (`wrong_state`), a stale `expected_sha` (`stale`), or a concurrent change."),
    422: error("A missing (`reason_required`) or invalid (`invalid`) reason or status."),
    503: SSOT_UNAVAILABLE,
}


# -- tasks -------------------------------------------------------------------------------------------


def _decision_body(decision: services.Decision) -> dict[str, Any]:
    return {
        "ok": True,
        "task_id": decision.task_id,
        "status": decision.status,
        "prev_status": decision.prev_status,
        "blob_sha": decision.blob_sha,
    }


APPROVE_ERRORS = {
    **WRITE_ERRORS,
    403: error(
        "Not allowed by the approval policy: not in a group of the task's risk level, the person who "
        "requested the task, already approved this version, an agent, or without ssot.approve_task."
    ),
}


@extend_schema_view(
    list=extend_schema(summary="List tasks", responses={200: TaskSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(
        summary="A task with its blob SHA, CI status, PR and message timeline",
        responses={
            200: TaskDetailSerializer,
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: error("No such task."),
        },
    ),
)
class TaskViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = selectors.task_list()
    filterset_class = TaskFilter
    lookup_field = "task_id"
    lookup_value_regex = ID_REGEX

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return TaskDetailSerializer if self.action == "retrieve" else TaskSerializer

    def get_permissions(self) -> list[Any]:
        needed = {
            "approve": permissions.CanApprove,
            "reject": permissions.CanApprove,
            "override": permissions.CanOverride,
        }.get(self.action, permissions.CanRead)
        return [needed()]

    def retrieve(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(task_id)
        return Response(TaskDetailSerializer(task, context={"request": request}).data)

    @extend_schema(
        summary="Approve a task version awaiting approval (M-of-N under the approval policy)",
        request=ApproveRequestSerializer,
        responses={200: ApproveResultSerializer, **APPROVE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, task_id: str) -> Response:
        body = validated(ApproveRequestSerializer, request.data)
        decision = services.task_approve(
            task_id=task_id,
            actor=actor(request),
            reason=body.get("reason") or "",
            expected_sha=body.get("expected_sha") or None,
        )
        return Response(
            {**_decision_body(decision), "approvals": {"have": decision.have, "need": decision.need}}
        )

    @extend_schema(
        summary="Reject a task awaiting approval (reason required); one allowed approver rejects",
        request=RejectRequestSerializer,
        responses={200: DecisionResultSerializer, **APPROVE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, task_id: str) -> Response:
        body = validated(RejectRequestSerializer, request.data)
        decision = services.task_reject(
            task_id=task_id,
            actor=actor(request),
            reason=body.get("reason") or "",
            expected_sha=body.get("expected_sha") or None,
        )
        return Response(_decision_body(decision))

    @extend_schema(
        summary="Force a task's status from any state (reason required)",
        request=OverrideRequestSerializer,
        responses={200: DecisionResultSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def override(self, request: Request, task_id: str) -> Response:
        body = validated(OverrideRequestSerializer, request.data)
        decision = services.task_override(
            task_id=task_id,
            actor=actor(request),
            reason=body.get("reason") or "",
            status=body.get("status") or None,
            expected_sha=body.get("expected_sha") or None,
        )
        return Response(_decision_body(decision))


# -- messages ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List AMP messages", responses={200: MessageSerializer(many=True), **READ_ERRORS}
    ),
)
class MessageViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = selectors.message_list()
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    lookup_field = "msg_id"
    lookup_value_regex = ID_REGEX

    def get_permissions(self) -> list[Any]:
        if self.action == "create":
            return [permissions.IsAgent()]
        if self.action == "ack":
            return [permissions.CanAck()]
        return [permissions.CanRead()]

    @extend_schema(
        summary="Send an AMP/1.0 message as the calling agent",
        request=AmpMessageSerializer,
        responses={
            201: OpenApiResponse(MessageWriteResultSerializer, description="Written to the SSOT."),
            200: OpenApiResponse(
                MessageWriteResultSerializer, description="An identical resend: nothing written."
            ),
            400: error("Not JSON, or JSON with duplicate keys."),
            401: UNAUTHENTICATED,
            403: error("Not an agent, or `from` is not the calling agent."),
            409: error("A message with this id and other content exists."),
            422: error("Not a valid AMP/1.0 message; `errors` lists every violation."),
            503: WRITE_ERRORS[503],
        },
    )
    def create(self, request: Request) -> Response:
        raw = request.data.dict() if isinstance(request.data, QueryDict) else request.data
        if found := nul_paths(raw):
            raise Invalid(
                "Not a valid AMP/1.0 message.",
                [{"path": path, "message": "contains a NUL character (\\u0000)"} for path in found[:50]],
            )
        written = services.message_create(raw=raw, sender=actor(request))
        body = {"ok": True, "msg_id": written.id, "created": written.created, "message": written.document}
        return Response(body, status=status.HTTP_201_CREATED if written.created else status.HTTP_200_OK)

    @extend_schema(
        summary="Acknowledge a message (its addressee only)",
        request=None,
        responses={
            200: AckResultSerializer,
            401: UNAUTHENTICATED,
            403: error("Not the message's addressee."),
            404: error("No such message."),
            409: error("The message is quarantined, or a concurrent change."),
            503: WRITE_ERRORS[503],
        },
    )
    @action(detail=True, methods=["post"])
    def ack(self, request: Request, msg_id: str) -> Response:
        written = services.message_ack(msg_id=msg_id, by=permissions.ack_identity(request.user))
        document = written.document
        return Response(
            {
                "ok": True,
                "msg_id": written.id,
                "by": document["by"],
                "at": document["at"],
                "created": written.created,
            }
        )


# -- audit, sync, AMP schema ------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List audit lines", responses={200: AuditEntrySerializer(many=True), **READ_ERRORS}
    ),
)
class AuditViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = selectors.audit_list()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditFilter


class SyncView(ApiView):
    def get_permissions(self) -> list[Any]:
        return [permissions.CanOverride() if self.request.method == "POST" else permissions.CanRead()]

    @extend_schema(
        summary="SSOT status: backend, branch, head, last sync, quarantined files",
        responses={200: SyncStatusSerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return Response(SyncStatusSerializer(selectors.sync_status()).data)

    @extend_schema(
        summary="Resync the mirror from the SSOT (incremental, or full)",
        request=SyncRequestSerializer,
        responses={
            200: SyncReportSerializer,
            400: BAD_REQUEST,
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            503: WRITE_ERRORS[503],
        },
    )
    def post(self, request: Request) -> Response:
        body = validated(SyncRequestSerializer, request.data)
        return Response(sync(full=body["full"]).as_dict())


class PolicyView(ApiView):
    permission_classes = [permissions.CanRead]

    @extend_schema(
        summary="The approval policy in force and its source (the file's blob SHA, or built-in)",
        responses={200: PolicySerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.policy_summary())


# What `python -m amp.jsonschema` writes to amp/schema/approval-policy.schema.json (its --check holds the
# file to it), built once rather than read back from disk.
_policy_schema = functools.cache(build_policy_schema)


class PolicySchemaView(APIView):
    """The published JSON Schema of policy/approvals.json: public documentation, no authentication."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The JSON Schema of the approval policy file",
        operation_id="policy_schema_retrieve",
        auth=[],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A JSON Schema (draft 2020-12).")},
    )
    def get(self, request: Request) -> Response:
        return Response(_policy_schema())


# -- tokens ------------------------------------------------------------------------------------------


@extend_schema_view(
    post=extend_schema(
        summary="An access and a refresh token for a username and password",
        responses={
            200: TokenObtainPairSerializer,
            400: error("`username` or `password` missing, or not strings."),
            401: error("No active account with these credentials (`no_active_account`)."),
            429: error(
                "Too many failed logins for this username or from this address (`locked_out`); "
                "`Retry-After` says when to try again."
            ),
        },
    )
)
class TokenObtainView(TokenObtainPairView):
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)
        if response.status_code == status.HTTP_200_OK:
            # simplejwt sends no `user_logged_in`: django-axes is told of the success itself, which ends
            # the count of failures before it (AXES_RESET_ON_SUCCESS), as a login on /admin/ does.
            username = request.data["username"]  # type: ignore[call-overload]  # a dict: the body was valid
            user = get_user_model().objects.get_by_natural_key(username)
            AxesProxyHandler.user_logged_in(type(self), request, user)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        # django-axes marks DRF's request (the one simplejwt authenticates with), which its middleware
        # does not see: the refused login is answered as a lockout here.
        if getattr(self.request, "axes_locked_out", False):
            message, seconds = lockout_message(self.request._request)
            headers = {"Retry-After": str(seconds)} if seconds else None
            return Response({"detail": message, "code": "locked_out"}, status=429, headers=headers)
        return super().handle_exception(exc)


@extend_schema_view(
    post=extend_schema(
        summary="A new access token for a refresh token",
        responses={
            200: TokenRefreshSerializer,
            400: error("`refresh` missing, or not a string."),
            401: error("The refresh token is invalid or expired (`token_not_valid`)."),
        },
    )
)
class TokenRefreshView(SimpleJWTTokenRefreshView):
    pass


@functools.cache
def _amp_schema() -> dict[str, Any]:
    return json.loads(AMP_SCHEMA.read_text(encoding="utf-8"))


class AmpSchemaView(APIView):
    """The published JSON Schema of AMP/1.0: public protocol documentation, no authentication."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The JSON Schema of AMP/1.0",
        operation_id="amp_schema_retrieve",
        auth=[],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A JSON Schema (draft 2020-12).")},
    )
    def get(self, request: Request) -> Response:
        return Response(_amp_schema())
