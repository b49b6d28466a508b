"""Valid AMP/1.0 messages for tests, with helpers to derive broken variants."""

from __future__ import annotations

import copy
from typing import Any

from amp import AmpValidationError, validate

DISPATCH: dict[str, Any] = {
    "msg_id": "task_dispatch-T-42-1738324800000",
    "protocol_version": "AMP/1.0",
    "type": "task_dispatch",
    "from": "coordinator",
    "to": "executor",
    "task_id": "T-42",
    "timestamp": "2025-01-31T12:00:00Z",
    "requires_ack": True,
    "payload": {
        "branch": "feature/T-42-login",
        "acceptance_criteria": ["the login form rejects an empty email"],
    },
}

ESCALATION: dict[str, Any] = {
    "msg_id": "escalation-T-42-1738325100000",
    "protocol_version": "AMP/1.0",
    "type": "escalation",
    "from": "system",
    "to": "admin",
    "task_id": "T-42",
    "timestamp": "2025-01-31T12:05:00Z",
    "requires_ack": False,
    "payload": {
        "escalation_type": "ack_timeout",
        "severity": "warning",
        "triggered_by": "ack_monitor",
        "description": "executor did not acknowledge task_dispatch-T-42-1738324800000 within 300 s",
    },
}

DROP = object()


def dispatch(**changes: Any) -> dict[str, Any]:
    """DISPATCH with envelope fields replaced (`from_`/`to_` for from/to) or dropped with `DROP`."""
    return _changed(DISPATCH, changes)


def escalation(**changes: Any) -> dict[str, Any]:
    """ESCALATION with envelope fields replaced or dropped, like `dispatch`."""
    return _changed(ESCALATION, changes)


def with_payload(message: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`message` with payload members replaced or dropped with `DROP`."""
    result = copy.deepcopy(message)
    result["payload"] = _changed(result["payload"], changes)
    return result


def violations(raw: object) -> dict[str, str]:
    """Map each violated path to its message; empty when `raw` is valid."""
    try:
        validate(raw)
    except AmpValidationError as exc:
        return {error.path: error.message for error in exc.errors}
    return {}


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        name = {"from_": "from", "to_": "to"}.get(key, key)
        if value is DROP:
            del result[name]
        else:
            result[name] = value
    return result
