"""Builders for AMP/1.0 ids, timestamps and envelopes; whatever they return passes `validate()`."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from amp import spec
from amp.validation import is_safe_id, validate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def make_timestamp(now: datetime | None = None) -> str:
    """Return `now` (default: the current time) in UTC with milliseconds, e.g. 2025-01-31T12:00:00.000Z."""
    return _utc(now).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_msg_id(msg_type: str, task_id: str, *, now: datetime | None = None) -> str:
    """Return `{msg_type}-{task_id}-{epoch_ms}`; ValueError for an unknown type or an unsafe result."""
    if msg_type not in spec.MESSAGE_TYPES:
        raise ValueError(f"unknown message type {msg_type!r}")
    if not is_safe_id(task_id):
        raise ValueError(f"task_id {task_id!r} is not a path-safe id")
    epoch_ms = (_utc(now) - _EPOCH) // timedelta(milliseconds=1)
    msg_id = f"{msg_type}-{task_id}-{epoch_ms}"
    if not is_safe_id(msg_id) or re.fullmatch(spec.MSG_ID_PARTS_PATTERN, msg_id) is None:
        raise ValueError(f"{msg_id!r} is not a valid msg id (task_id too long, or holding '--'?)")
    return msg_id


def build_envelope(
    *,
    msg_type: str,
    sender: str,
    recipient: str,
    task_id: str,
    payload: Mapping[str, Any],
    requires_ack: bool | None = None,
    ack_timeout_sec: int = 0,
    context_ref: Iterable[str] = (),
    msg_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return a validated AMP/1.0 message as a new canonical dict; raise AmpValidationError on bad input.

    `requires_ack` defaults to whether the type has an ACK timeout in the table.
    """
    moment = _utc(now)
    message = {
        "msg_id": msg_id if msg_id is not None else make_msg_id(msg_type, task_id, now=moment),
        "protocol_version": spec.PROTOCOL_VERSION,
        "type": msg_type,
        "from": sender,
        "to": recipient,
        "task_id": task_id,
        "timestamp": make_timestamp(moment),
        "requires_ack": requires_ack if requires_ack is not None else spec.ACK_TIMEOUTS.get(msg_type, 0) > 0,
        "ack_timeout_sec": ack_timeout_sec,
        "context_ref": list(context_ref),
        "payload": copy.deepcopy(dict(payload)),
    }
    return validate(message).to_dict()


def build_escalation(
    *,
    task_id: str,
    escalation_type: str,
    severity: str,
    triggered_by: str,
    description: str,
    affected_msgs: Iterable[str] = (),
    snapshot: Mapping[str, Any] | None = None,
    suggested_actions: Iterable[str] = (),
    auto_suspended: bool = True,
    msg_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return an escalation from `system` to `admin` (no ACK) whose `context_ref` is `affected_msgs`."""
    affected = list(affected_msgs)
    return build_envelope(
        msg_type=spec.ESCALATION,
        sender="system",
        recipient="admin",
        task_id=task_id,
        requires_ack=False,
        context_ref=affected,
        msg_id=msg_id,
        now=now,
        payload={
            "escalation_type": escalation_type,
            "severity": severity,
            "triggered_by": triggered_by,
            "description": description,
            "affected_msgs": affected,
            "system_state_snapshot": dict(snapshot or {}),
            "suggested_actions": list(suggested_actions),
            "auto_suspended": auto_suspended,
        },
    )
