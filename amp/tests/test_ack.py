"""ACK timeouts: the message's own value, then the settings' overrides, then the per-type table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amp import ACK_TIMEOUTS, ack_deadline, ack_timeout_for, validate
from amp.tests.messages import DISPATCH, ESCALATION, dispatch, escalation

SETTINGS_OVERRIDES = {"task_dispatch": 240, "review_request": 900}


def test_the_table_is_the_specs() -> None:
    assert dict(ACK_TIMEOUTS) == {
        "task_dispatch": 300,
        "task_result": 120,
        "review_request": 600,
        "review_verdict": 60,
        "escalation": 0,
    }


def test_the_table_cannot_be_changed_by_accident() -> None:
    with pytest.raises(TypeError):
        ACK_TIMEOUTS["task_dispatch"] = 1  # type: ignore[index]  # the write this test expects refused


@pytest.mark.parametrize(("msg_type", "seconds"), list(ACK_TIMEOUTS.items()))
def test_a_type_without_its_own_timeout_uses_the_table(msg_type: str, seconds: int) -> None:
    assert ack_timeout_for(msg_type) == seconds


def test_a_messages_own_timeout_wins_over_overrides_and_table() -> None:
    assert ack_timeout_for("task_dispatch", 45, overrides=SETTINGS_OVERRIDES) == 45
    assert ack_timeout_for("escalation", 45) == 45


@pytest.mark.parametrize(
    ("msg_type", "seconds"),
    [("task_dispatch", 240), ("review_request", 900), ("task_result", 120), ("escalation", 0)],
)
def test_overrides_replace_the_table_for_the_types_they_name(msg_type: str, seconds: int) -> None:
    assert ack_timeout_for(msg_type, 0, overrides=SETTINGS_OVERRIDES) == seconds


def test_an_envelope_brings_its_type_and_own_timeout() -> None:
    assert ack_timeout_for(validate(DISPATCH)) == 300
    assert ack_timeout_for(validate(dispatch(ack_timeout_sec=30)), overrides=SETTINGS_OVERRIDES) == 30
    assert ack_timeout_for(validate(DISPATCH), overrides=SETTINGS_OVERRIDES) == 240


def test_an_unknown_type_has_no_timeout() -> None:
    with pytest.raises(ValueError, match="unknown message type 'task_cancel'"):
        ack_timeout_for("task_cancel")


def test_deadline_is_the_timestamp_plus_the_timeout_in_utc() -> None:
    assert ack_deadline(validate(DISPATCH)) == datetime(2025, 1, 31, 12, 5, tzinfo=UTC)
    deadline = ack_deadline(validate(dispatch(timestamp="2025-01-31T17:30:00+05:30")), SETTINGS_OVERRIDES)
    assert deadline == datetime(2025, 1, 31, 12, 4, tzinfo=UTC)
    assert deadline.tzinfo is UTC


def test_deadline_uses_the_messages_own_timeout() -> None:
    assert ack_deadline(validate(dispatch(ack_timeout_sec=10))) == datetime(
        2025, 1, 31, 12, 0, 10, tzinfo=UTC
    )


def test_no_deadline_when_no_ack_is_required() -> None:
    assert ack_deadline(validate(dispatch(requires_ack=False, ack_timeout_sec=10))) is None


def test_no_deadline_when_the_timeout_is_zero() -> None:
    assert ack_deadline(validate(escalation(requires_ack=True))) is None
    assert ack_deadline(validate(ESCALATION)) is None
    assert ack_deadline(validate(DISPATCH), {"task_dispatch": 0}) is None


def test_an_escalation_with_its_own_timeout_has_a_deadline() -> None:
    envelope = validate(escalation(requires_ack=True, ack_timeout_sec=60))
    assert ack_deadline(envelope) == datetime(2025, 1, 31, 12, 6, tzinfo=UTC)
