"""Builders produce ids, timestamps and envelopes that validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from amp import (
    AmpValidationError,
    build_envelope,
    build_escalation,
    make_msg_id,
    make_timestamp,
    validate,
)
from amp.spec import ENVELOPE_FIELDS

NOON = datetime(2025, 1, 31, 12, tzinfo=UTC)
NOON_MS = 1738324800000
PAYLOAD = {"branch": "feature/T-42", "acceptance_criteria": ["tests pass"]}


def test_msg_id_is_type_task_and_epoch_milliseconds() -> None:
    assert make_msg_id("task_dispatch", "T-42", now=NOON) == f"task_dispatch-T-42-{NOON_MS}"


def test_msg_id_counts_milliseconds_exactly_whatever_the_offset() -> None:
    now = datetime(2025, 1, 31, 17, 30, 0, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert make_msg_id("task_result", "T-1", now=now) == f"task_result-T-1-{NOON_MS + 999}"


def test_msg_id_defaults_to_the_current_time() -> None:
    before = datetime.now(UTC)
    epoch_ms = int(make_msg_id("review_request", "T-1").rsplit("-", 1)[1])
    assert abs(epoch_ms / 1000 - before.timestamp()) < 5


@pytest.mark.parametrize(
    ("msg_type", "task_id", "now", "message"),
    [
        ("task_cancel", "T-1", NOON, "unknown message type 'task_cancel'"),
        ("task_dispatch", "../T-1", NOON, "task_id '../T-1' is not a path-safe id"),
        ("task_dispatch", "T-1", datetime(2025, 1, 31, 12), "now must be timezone-aware"),
        ("task_dispatch", "T" * 128, NOON, "is not a valid msg id"),
        ("task_dispatch", "T--1", NOON, "is not a valid msg id"),
    ],
)
def test_msg_id_refuses_what_would_be_invalid(
    msg_type: str, task_id: str, now: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_msg_id(msg_type, task_id, now=now)


def test_timestamp_is_utc_with_milliseconds_and_z() -> None:
    assert make_timestamp(NOON) == "2025-01-31T12:00:00.000Z"


def test_timestamp_converts_other_offsets_to_utc() -> None:
    now = datetime(2025, 1, 31, 7, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    assert make_timestamp(now) == "2025-01-31T12:00:00.123Z"


def test_timestamp_defaults_to_now_and_validates() -> None:
    stamp = make_timestamp()
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=5)
    assert validate(build_envelope(**_dispatch_args(), now=parsed)).timestamp == parsed


def test_timestamp_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_timestamp(datetime(2025, 1, 31, 12))


def _dispatch_args() -> dict[str, Any]:
    return {
        "msg_type": "task_dispatch",
        "sender": "coordinator",
        "recipient": "executor",
        "task_id": "T-42",
        "payload": PAYLOAD,
    }


def test_build_envelope_returns_the_canonical_valid_message() -> None:
    message = build_envelope(**_dispatch_args(), now=NOON)
    assert message == {
        "msg_id": f"task_dispatch-T-42-{NOON_MS}",
        "protocol_version": "AMP/1.0",
        "type": "task_dispatch",
        "from": "coordinator",
        "to": "executor",
        "task_id": "T-42",
        "timestamp": "2025-01-31T12:00:00.000Z",
        "requires_ack": True,
        "ack_timeout_sec": 0,
        "context_ref": [],
        "payload": PAYLOAD,
    }
    assert list(message) == [f.name for f in ENVELOPE_FIELDS]
    assert validate(message).to_dict() == message


@pytest.mark.parametrize(
    ("msg_type", "requires_ack"),
    [
        ("task_dispatch", True),
        ("task_result", True),
        ("review_request", True),
        ("review_verdict", True),
        ("escalation", False),
    ],
)
def test_build_envelope_requires_an_ack_when_the_type_has_a_timeout(
    msg_type: str, requires_ack: bool
) -> None:
    payload = PAYLOAD if msg_type == "task_dispatch" else {}
    if msg_type == "escalation":
        payload = {"escalation_type": "x", "severity": "info", "triggered_by": "y", "description": "z"}
    message = build_envelope(
        msg_type=msg_type, sender="system", recipient="admin", task_id="T-1", payload=payload, now=NOON
    )
    assert message["requires_ack"] is requires_ack


def test_build_envelope_takes_explicit_id_ack_and_context() -> None:
    message = build_envelope(
        **_dispatch_args(),
        requires_ack=False,
        ack_timeout_sec=45,
        context_ref=iter(["review_verdict-T-42-1"]),
        msg_id="custom-id-1",
        now=NOON,
    )
    assert (
        message["msg_id"],
        message["requires_ack"],
        message["ack_timeout_sec"],
        message["context_ref"],
    ) == (
        "custom-id-1",
        False,
        45,
        ["review_verdict-T-42-1"],
    )


def test_build_envelope_does_not_share_the_payload() -> None:
    payload: dict[str, Any] = {"branch": "feature/T-42", "acceptance_criteria": ["tests pass"]}
    message = build_envelope(**{**_dispatch_args(), "payload": payload}, now=NOON)
    payload["acceptance_criteria"].append("later")
    assert message["payload"]["acceptance_criteria"] == ["tests pass"]


def test_build_envelope_refuses_to_build_an_invalid_message() -> None:
    with pytest.raises(AmpValidationError) as caught:
        build_envelope(
            **{
                **_dispatch_args(),
                "sender": "root",
                "payload": {"branch": "main", "acceptance_criteria": []},
            },
            now=NOON,
        )
    assert [e.path for e in caught.value.errors] == ["from", "payload.branch", "payload.acceptance_criteria"]


def test_build_escalation_goes_from_system_to_admin_without_ack() -> None:
    message = build_escalation(
        task_id="T-42",
        escalation_type="ack_timeout",
        severity="warning",
        triggered_by="ack_monitor",
        description="executor did not acknowledge",
        now=NOON,
    )
    assert message == {
        "msg_id": f"escalation-T-42-{NOON_MS}",
        "protocol_version": "AMP/1.0",
        "type": "escalation",
        "from": "system",
        "to": "admin",
        "task_id": "T-42",
        "timestamp": "2025-01-31T12:00:00.000Z",
        "requires_ack": False,
        "ack_timeout_sec": 0,
        "context_ref": [],
        "payload": {
            "escalation_type": "ack_timeout",
            "severity": "warning",
            "triggered_by": "ack_monitor",
            "description": "executor did not acknowledge",
            "affected_msgs": [],
            "system_state_snapshot": {},
            "suggested_actions": [],
            "auto_suspended": True,
        },
    }
    assert validate(message).to_dict() == message


def test_build_escalation_refers_to_the_affected_messages() -> None:
    snapshot = {"executor": {"health": "timeout"}}
    message = build_escalation(
        task_id="T-42",
        escalation_type="heartbeat_timeout",
        severity="critical",
        triggered_by="heartbeat_monitor",
        description="executor silent for 1800 s",
        affected_msgs=("task_dispatch-T-42-1", "review_request-T-42-2"),
        snapshot=snapshot,
        suggested_actions=["restart the executor"],
        auto_suspended=False,
        msg_id="escalation-T-42-heartbeat",
        now=NOON,
    )
    assert message["msg_id"] == "escalation-T-42-heartbeat"
    assert message["context_ref"] == ["task_dispatch-T-42-1", "review_request-T-42-2"]
    assert message["payload"]["affected_msgs"] == message["context_ref"]
    assert message["payload"]["system_state_snapshot"] == snapshot
    assert message["payload"]["system_state_snapshot"] is not snapshot
    assert message["payload"]["suggested_actions"] == ["restart the executor"]
    assert message["payload"]["auto_suspended"] is False


def test_build_escalation_refuses_an_unknown_severity() -> None:
    with pytest.raises(AmpValidationError) as caught:
        build_escalation(
            task_id="T-42", escalation_type="x", severity="fatal", triggered_by="y", description="z", now=NOON
        )
    assert [e.path for e in caught.value.errors] == ["payload.severity"]
