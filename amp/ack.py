"""ACK rules of AMP/1.0: how long an addressee has to acknowledge a message."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from amp.spec import ACK_TIMEOUTS
from amp.validation import Envelope

__all__ = ["ACK_TIMEOUTS", "ack_deadline", "ack_timeout_for"]


def ack_timeout_for(
    envelope_or_type: Envelope | str, ack_timeout_sec: int = 0, *, overrides: Mapping[str, int] | None = None
) -> int:
    """Seconds to acknowledge: the message's own `ack_timeout_sec` if > 0, else `overrides`, else the table.

    0 means no ACK is expected. With an Envelope, its own `ack_timeout_sec` is used and the argument ignored.
    """
    if isinstance(envelope_or_type, Envelope):
        msg_type, own = envelope_or_type.type, envelope_or_type.ack_timeout_sec
    else:
        msg_type, own = envelope_or_type, ack_timeout_sec
    if msg_type not in ACK_TIMEOUTS:
        raise ValueError(f"unknown message type {msg_type!r}")
    if own > 0:
        return own
    if overrides is not None and msg_type in overrides:
        return overrides[msg_type]
    return ACK_TIMEOUTS[msg_type]


# The last instant a deadline can name: a timeout past the calendar's end is due "never", in effect.
LAST_DEADLINE = datetime.max.replace(tzinfo=UTC)
_CENTURY_SEC = 100 * 365 * 86400


def ack_deadline(envelope: Envelope, overrides: Mapping[str, int] | None = None) -> datetime | None:
    """When the ACK is due (UTC), counted from the message's timestamp; None if no ACK is expected.

    A timeout that runs past the end of year 9999 (any 64-bit one may) gives LAST_DEADLINE.
    """
    if not envelope.requires_ack:
        return None
    timeout = ack_timeout_for(envelope, overrides=overrides)
    if timeout <= 0:
        return None
    sent = envelope.timestamp.astimezone(UTC)
    if timeout < _CENTURY_SEC and sent.year < LAST_DEADLINE.year - 100:
        return sent + timedelta(seconds=timeout)  # every usual message: far from the calendar's end
    if timeout >= (LAST_DEADLINE - sent).total_seconds():
        return LAST_DEADLINE
    return sent + timedelta(seconds=timeout)
