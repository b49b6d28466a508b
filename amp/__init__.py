"""AMP/1.0, the agents' message protocol: pure Python, importable without Django settings."""

from amp.ack import ACK_TIMEOUTS, ack_deadline, ack_timeout_for
from amp.builders import build_envelope, build_escalation, make_msg_id, make_timestamp
from amp.spec import AGENT_NAMES, MESSAGE_TYPES, PROTOCOL_VERSION, SEVERITIES
from amp.strictjson import INT64_MAX, INT64_MIN, JsonRefused, fits_int64, loads, text_of
from amp.validation import AmpValidationError, Envelope, Violation, is_safe_id, validate, validate_json

__all__ = [
    "ACK_TIMEOUTS",
    "AGENT_NAMES",
    "INT64_MAX",
    "INT64_MIN",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "SEVERITIES",
    "AmpValidationError",
    "Envelope",
    "JsonRefused",
    "Violation",
    "ack_deadline",
    "ack_timeout_for",
    "build_envelope",
    "build_escalation",
    "fits_int64",
    "is_safe_id",
    "loads",
    "make_msg_id",
    "make_timestamp",
    "text_of",
    "validate",
    "validate_json",
]
