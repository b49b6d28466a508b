"""AMP/1.0, the agents' message protocol: pure Python, importable without Django settings."""

from amp.ack import ACK_TIMEOUTS, ack_deadline, ack_timeout_for
from amp.builders import build_envelope, build_escalation, make_msg_id, make_timestamp
from amp.spec import AGENT_NAMES, MESSAGE_TYPES, PROTOCOL_VERSION
from amp.validation import AmpValidationError, Envelope, Violation, is_safe_id, validate, validate_json

__all__ = [
    "ACK_TIMEOUTS",
    "AGENT_NAMES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "AmpValidationError",
    "Envelope",
    "Violation",
    "ack_deadline",
    "ack_timeout_for",
    "build_envelope",
    "build_escalation",
    "is_safe_id",
    "make_msg_id",
    "make_timestamp",
    "validate",
    "validate_json",
]
