"""The shapes of the API's requests and answers (SPEC section 7), as the OpenAPI schema shows them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.fields import empty

import amp
from core.bounded import renderable
from ssot.models import AuditEntry, Message, Task
from ssot.policy import approval_status
from ssot.selectors import task_timeline
from ssot.services import MAX_REASON, MAX_STATUS

SHA_PATTERN = r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$"
REQUIRED_REASON_HELP = (
    f"Why (required: a missing or blank reason is a 422 `reason_required`; at most {MAX_REASON} characters)."
)


def _renamed(fields: dict[str, serializers.Field], names: dict[str, str]) -> dict[str, serializers.Field]:
    """Rename fields whose API names are Python keywords (`from`), keeping their order."""
    return {names.get(name, name): field for name, field in fields.items()}


# -- what agents wrote --------------------------------------------------------------------------------


class RenderedJSON(serializers.Field):
    """A JSON value an agent or a peer wrote, as strict JSON can carry it (core/bounded.py): read-only."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return renderable(value)


@extend_schema_field(OpenApiTypes.OBJECT)
class RenderedObject(RenderedJSON):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class RenderedStrings(RenderedJSON):
    pass


# -- tasks -------------------------------------------------------------------------------------------


class PullRequestSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField()
    url = serializers.CharField()
    title = serializers.CharField()


class TaskSerializer(serializers.ModelSerializer):
    pr = serializers.SerializerMethodField()
    ci_status = RenderedObject(
        help_text="CI checks of the task's branch: {check: {state, conclusion, url, at, source}}."
    )

    class Meta:
        model = Task
        fields = [
            "task_id",
            "title",
            "status",
            "risk_level",
            "branch",
            "assignee",
            "reject_count",
            "last_writer",
            "blob_sha",
            "ci_state",
            "ci_status",
            "pr",
            "decision_unverified",
            "decision_unverified_in",
            "decision_unverified_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PullRequestSerializer(allow_null=True))
    def get_pr(self, task: Task) -> dict[str, Any] | None:
        if not task.pr_number:
            return None
        return {"number": task.pr_number, "state": task.pr_state, "url": task.pr_url, "title": task.pr_title}


class MessageSerializer(serializers.ModelSerializer):
    # Declared with an explicit source so that `get_fields` can give them their AMP names.
    sender = serializers.CharField(source="sender", read_only=True)
    recipient = serializers.CharField(source="recipient", read_only=True)

    class Meta:
        model = Message
        fields = [
            "msg_id",
            "protocol_version",
            "type",
            "sender",
            "recipient",
            "task_id",
            "timestamp",
            "requires_ack",
            "ack_timeout_sec",
            "context_ref",
            "payload",
            "ack_state",
            "ack_deadline",
            "acked_at",
        ]
        read_only_fields = fields

    def build_field(self, field_name: str, info: Any, model_class: Any, nested_depth: int) -> Any:
        if field_name == "context_ref":
            return RenderedStrings, {}
        if field_name == "payload":
            return RenderedObject, {}
        return super().build_field(field_name, info, model_class, nested_depth)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _renamed(super().get_fields(), {"sender": "from", "recipient": "to"})


class ApprovalEntrySerializer(serializers.Serializer):
    by = serializers.CharField()
    at = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class ApprovalStatusSerializer(serializers.Serializer):
    """The policy that applies to a task, who approved the version shown, and what the caller may do."""

    level = serializers.CharField(help_text="The task's risk level.")
    need = serializers.IntegerField()
    have = serializers.IntegerField()
    groups = serializers.ListField(child=serializers.CharField())
    self_approval = serializers.BooleanField()
    policy_source = serializers.CharField(help_text="The policy file's blob SHA, or `built-in`.")
    requested_by = serializers.CharField(allow_blank=True)
    approvals = ApprovalEntrySerializer(many=True, help_text="Approvals of the version shown.")
    voided = ApprovalEntrySerializer(
        many=True, help_text="Approvals of an older version of the task: they no longer count."
    )
    discounted = ApprovalEntrySerializer(
        many=True,
        help_text="Approvals of this version by people who may not approve (any longer): they do not count.",
    )
    may_approve = serializers.BooleanField()
    may_reject = serializers.BooleanField()
    why_not = serializers.CharField(allow_blank=True, help_text="Why the caller may not approve.")
    why_not_code = serializers.CharField(
        allow_blank=True,
        help_text="not_permitted, not_in_group, requested_it, already_approved or not_awaiting.",
    )
    why_not_reject = serializers.CharField(allow_blank=True)


class TaskDetailSerializer(TaskSerializer):
    document = RenderedObject(help_text="The task file as it stands in the SSOT.")
    messages = serializers.SerializerMethodField(help_text="The task's AMP messages, oldest first.")
    approval = serializers.SerializerMethodField(
        help_text="The approval policy of its risk level, who approved this version, and what you may do."
    )

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "ssot_path", "document", "messages", "approval"]
        read_only_fields = fields

    @extend_schema_field(ApprovalStatusSerializer)
    def get_approval(self, task: Task) -> dict[str, Any]:
        request = self.context.get("request")
        return approval_status(task, getattr(request, "user", None)).as_dict()

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, task: Task) -> list[dict[str, Any]]:
        # many=True makes a ListSerializer, whose data is a list (the stubs type it as the child's dict).
        return MessageSerializer(task_timeline(task.task_id), many=True).data  # type: ignore[return-value]


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S"})
class RequiredReason(serializers.CharField):
    """A reason the schema calls required; a missing, null or blank one still reaches the service, whose
    answer is the one SPEC section 7 gives: 422 `reason_required` (a 400 would say the body is malformed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, trim_whitespace=True, **kwargs)

    def run_validation(self, data: Any = empty) -> Any:
        if data is empty or data is None or (isinstance(data, str) and not data.strip()):
            return ""
        return super().run_validation(data)


class DecisionRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=True,
        help_text=f"Why (at most {MAX_REASON} characters; a longer one is a 422).",
    )
    expected_sha = serializers.RegexField(
        SHA_PATTERN,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The task blob SHA the decision was made on; a task changed since is a 409 (`stale`).",
    )


class ApproveRequestSerializer(DecisionRequestSerializer):
    """Approve: the reason is an optional note to the agent."""


class RejectRequestSerializer(DecisionRequestSerializer):
    """Reject: the reason is required (422 `reason_required` without one)."""

    reason = RequiredReason(help_text=REQUIRED_REASON_HELP)


class OverrideRequestSerializer(DecisionRequestSerializer):
    """Override: the reason is required (422 `reason_required` without one); `status` defaults to override."""

    reason = RequiredReason(help_text=REQUIRED_REASON_HELP)

    status = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=f'The status to force (default "override"; at most {MAX_STATUS} characters).',
    )


class DecisionResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    task_id = serializers.CharField()
    status = serializers.CharField()
    prev_status = serializers.CharField()
    blob_sha = serializers.CharField(help_text="The task's blob SHA after the decision.")


class ApprovalCountSerializer(serializers.Serializer):
    have = serializers.IntegerField(help_text="Distinct approvals of this task version, this one included.")
    need = serializers.IntegerField(help_text="How many the policy of the task's risk level needs.")


class ApproveResultSerializer(DecisionResultSerializer):
    """Below the policy's count the task stays `awaiting_approval` (and its blob SHA unchanged)."""

    approvals = ApprovalCountSerializer()


class PolicyLevelSerializer(serializers.Serializer):
    approvals = serializers.IntegerField()
    groups = serializers.ListField(child=serializers.CharField())


class PolicyLevelsSerializer(serializers.Serializer):
    low = PolicyLevelSerializer()
    medium = PolicyLevelSerializer()
    high = PolicyLevelSerializer()


class PolicyDocumentSerializer(serializers.Serializer):
    levels = PolicyLevelsSerializer()
    self_approval = serializers.BooleanField()


# Fields named `source` and `errors` would shadow Serializer attributes: these two are built inline.
QuarantinedPolicySerializer = inline_serializer(
    "QuarantinedPolicy",
    fields={
        "blob_sha": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.DictField(child=serializers.CharField())),
    },
    allow_null=True,
    help_text="An invalid version of the file, not in force, with its errors.",
)
PolicySerializer = inline_serializer(
    "Policy",
    fields={
        "path": serializers.CharField(),
        "source": serializers.CharField(help_text="The blob SHA of the file in force, or `built-in`."),
        "policy": PolicyDocumentSerializer(),
        "quarantined": QuarantinedPolicySerializer,
    },
)


# -- messages ----------------------------------------------------------------------------------------


class AmpMessageSerializer(serializers.Serializer):
    """An AMP/1.0 envelope as an agent sends it, validated by `amp` (JSON Schema: /api/amp/schema.json)."""

    msg_id = serializers.CharField(
        help_text="`{type}-{task_id}-{epoch_ms}`, or any path-safe id of 3+ parts."
    )
    protocol_version = serializers.ChoiceField(choices=[amp.PROTOCOL_VERSION])
    type = serializers.ChoiceField(choices=list(amp.MESSAGE_TYPES))
    sender = serializers.ChoiceField(
        source="sender", choices=list(amp.AGENT_NAMES), help_text="Must be the calling agent."
    )
    recipient = serializers.ChoiceField(source="recipient", choices=list(amp.AGENT_NAMES))
    task_id = serializers.CharField()
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    requires_ack = serializers.BooleanField()
    ack_timeout_sec = serializers.IntegerField(required=False, min_value=0)
    context_ref = serializers.ListField(child=serializers.CharField(), required=False)
    payload = serializers.DictField(help_text="Type-specific content (see the AMP JSON Schema).")

    def get_fields(self) -> dict[str, serializers.Field]:
        return _renamed(super().get_fields(), {"sender": "from", "recipient": "to"})


class MessageWriteResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    msg_id = serializers.CharField()
    created = serializers.BooleanField(help_text="False on an identical resend (nothing was written).")
    message = serializers.DictField(help_text="The message as it stands in the SSOT.")


class AckResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    msg_id = serializers.CharField()
    by = serializers.CharField()
    at = serializers.CharField()
    created = serializers.BooleanField(help_text="False when the message was already acknowledged.")


# -- audit and sync ----------------------------------------------------------------------------------


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "timestamp",
            "actor",
            "action",
            "task_id",
            "msg_id",
            "detail",
            "in_ssot",
            "ssot_path",
            "rewritten_at",
            "rewritten_in",
            "rewritten_by",
            "rewritten_how",
            "rewritten_path",
            "rewritten_line",
        ]
        read_only_fields = fields


class SyncStatusSerializer(serializers.Serializer):
    backend = serializers.CharField()
    repository = serializers.CharField()
    branch = serializers.CharField()
    head = serializers.CharField(
        help_text="The SSOT commit the mirror reflects (empty before the first sync)."
    )
    last_sync_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    last_error_at = serializers.DateTimeField(allow_null=True)
    consecutive_errors = serializers.IntegerField()
    last_report = serializers.DictField()
    quarantined = serializers.IntegerField(help_text="How many SSOT files are quarantined.")


class SyncRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(
        required=False, default=False, help_text="Compare every file's blob SHA instead of only what changed."
    )


class SyncReportSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["empty", "noop", "incremental", "full"])
    head = serializers.CharField(allow_null=True)
    previous_head = serializers.CharField(allow_null=True)
    files_changed = serializers.IntegerField()
    files_read = serializers.IntegerField()
    files_deleted = serializers.IntegerField()
    rows = serializers.DictField(child=serializers.IntegerField())
    rows_written = serializers.IntegerField()
    quarantined = serializers.ListField(child=serializers.CharField())
    seconds = serializers.FloatField()
