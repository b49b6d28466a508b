"""AMP/1.0 described as data: the single source for the validator and the published JSON Schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from amp.strictjson import INT64_MAX

PROTOCOL_VERSION = "AMP/1.0"

TASK_DISPATCH = "task_dispatch"
TASK_RESULT = "task_result"
REVIEW_REQUEST = "review_request"
REVIEW_VERDICT = "review_verdict"
ESCALATION = "escalation"
MESSAGE_TYPES: tuple[str, ...] = (TASK_DISPATCH, TASK_RESULT, REVIEW_REQUEST, REVIEW_VERDICT, ESCALATION)

AGENT_NAMES: tuple[str, ...] = ("admin", "coordinator", "executor", "reviewer", "system")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

# Seconds the addressee has to acknowledge; 0 means the type needs no ACK.
ACK_TIMEOUTS: MappingProxyType[str, int] = MappingProxyType(
    {TASK_DISPATCH: 300, TASK_RESULT: 120, REVIEW_REQUEST: 600, REVIEW_VERDICT: 60, ESCALATION: 0}
)

# An id is a file name in the SSOT (section 4): nothing may escape its folder.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ID_FORBIDDEN_SUBSTRING = ".."
# A msg id has at least three non-empty "-"-separated parts, e.g. {type}-{task_id}-{epoch_ms}.
MSG_ID_PARTS_PATTERN = r"^[A-Za-z0-9._]+(?:-[A-Za-z0-9._]+){2,}$"
# RFC 3339 date-time (ISO 8601 profile) with a mandatory UTC offset; ASCII digits only.
TIMESTAMP_PATTERN = (
    r"^(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)

FORBIDDEN_BRANCHES: tuple[str, ...] = ("main", "master")
# "refs/heads/main" names the same branch as "main" when pushed to, so it is forbidden too.
BRANCH_REF_PREFIX = "refs/heads/"
# Git refuses spaces and control characters in ref names; rejecting them closes "main\n"-style bypasses.
BRANCH_CHARS_PATTERN = r"^[^\x00-\x20\x7f]+$"


def _any_ascii_case(word: str) -> str:
    """Spell `word` as a regex matching it in any ASCII case, portable to JSON Schema (no inline flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


FORBIDDEN_BRANCH_PATTERN = (
    f"^(?:{_any_ascii_case(BRANCH_REF_PREFIX)})?"
    f"(?:{'|'.join(_any_ascii_case(name) for name in FORBIDDEN_BRANCHES)})$"
)

# String formats a Rule can name; amp.validation and amp.jsonschema each implement every one.
SAFE_ID = "safe_id"
MSG_ID = "msg_id"
TIMESTAMP = "timestamp"
BRANCH = "branch"
FORMATS: tuple[str, ...] = (SAFE_ID, MSG_ID, TIMESTAMP, BRANCH)


@dataclass(frozen=True)
class Rule:
    """Constraints on one JSON value; `min_length` counts characters of a string or items of an array."""

    kind: str
    const: str | None = None
    enum: tuple[str, ...] = ()
    format: str | None = None
    min_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    items: Rule | None = None


@dataclass(frozen=True)
class Field:
    """One member of a JSON object; an optional field takes `default` (a JSON value) when absent."""

    name: str
    rule: Rule
    description: str
    required: bool = True
    default: Any = None


ENVELOPE_FIELDS: tuple[Field, ...] = (
    Field(
        "msg_id", Rule("string", format=MSG_ID), "Unique message id, {type}-{task_id}-{epoch_ms} when built."
    ),
    Field("protocol_version", Rule("string", const=PROTOCOL_VERSION), "Always AMP/1.0."),
    Field("type", Rule("string", enum=MESSAGE_TYPES), "Message type."),
    Field("from", Rule("string", enum=AGENT_NAMES), "Sender."),
    Field("to", Rule("string", enum=AGENT_NAMES), "Addressee."),
    Field("task_id", Rule("string", format=SAFE_ID), "Task the message is about."),
    Field("timestamp", Rule("string", format=TIMESTAMP), "ISO 8601 date-time with a UTC offset."),
    Field("requires_ack", Rule("boolean"), "Whether the addressee must acknowledge the message."),
    Field(
        "ack_timeout_sec",
        Rule("integer", minimum=0, maximum=INT64_MAX),
        "Seconds to acknowledge; 0 uses the per-type ACK table.",
        required=False,
        default=0,
    ),
    Field(
        "context_ref",
        Rule("array", items=Rule("string", format=SAFE_ID)),
        "Ids of earlier messages this one refers to.",
        required=False,
        default=[],
    ),
    Field("payload", Rule("object"), "Type-specific content; open to extra members."),
)

# Rules on `payload` per message type; members not listed here are free.
PAYLOAD_FIELDS: MappingProxyType[str, tuple[Field, ...]] = MappingProxyType(
    {
        TASK_DISPATCH: (
            Field("branch", Rule("string", format=BRANCH, min_length=1), "Work branch; never main/master."),
            Field(
                "acceptance_criteria",
                Rule("array", min_length=1),
                "What the result must satisfy; at least one criterion.",
            ),
        ),
        ESCALATION: (
            Field(
                "escalation_type", Rule("string", min_length=1), "Kind, e.g. heartbeat_timeout, ack_timeout."
            ),
            Field("severity", Rule("string", enum=SEVERITIES), "How urgent."),
            Field("triggered_by", Rule("string", min_length=1), "Who or what raised it."),
            Field("description", Rule("string", min_length=1), "What happened, for the admin."),
            Field(
                "affected_msgs",
                Rule("array", items=Rule("string", format=SAFE_ID)),
                "Ids of the messages concerned.",
                required=False,
                default=[],
            ),
            Field(
                "system_state_snapshot",
                Rule("object"),
                "State of the system when raised.",
                required=False,
                default={},
            ),
            Field(
                "suggested_actions",
                Rule("array", items=Rule("string")),
                "Actions the admin could take.",
                required=False,
                default=[],
            ),
            Field(
                "auto_suspended",
                Rule("boolean"),
                "Whether the affected work was suspended automatically.",
                required=False,
                default=True,
            ),
        ),
    }
)


# The approval policy file of the SSOT (`policy/approvals.json`, SPEC section 5): its JSON Schema is
# published beside AMP's, and the control plane reads the file with that schema.
RISK_LEVELS = ("low", "medium", "high")
POLICY_MIN_APPROVALS = 1
POLICY_MAX_APPROVALS = 5
POLICY_MAX_GROUPS = 20
# Django's Group.name holds 150 characters.
POLICY_MAX_GROUP_NAME = 150
