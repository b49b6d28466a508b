"""validate()'s fast path accepts only what the full check accepts, with the same Envelope."""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amp import spec
from amp.tests.messages import DISPATCH, ESCALATION, dispatch
from amp.validation import AmpValidationError, Envelope, _plainly_valid, _validate_fully, validate

CORPUS = Path(__file__).resolve().parent / "corpus"


class Text(str):
    """A str subclass: the full check takes it as a string, the fast path leaves it to the full check."""


# Values of every JSON type, and strings near each rule's edges.
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    300,
    2**70,
    1.0,
    30.0,
    -1.0,
    1.5,
    "",
    " ",
    "x",
    "AMP/1.0",
    "amp/1.0",
    "task_dispatch",
    "escalation",
    "admin",
    "Admin",
    "warning",
    "main",
    "MASTER",
    "refs/heads/main",
    "feature/x",
    "feature x",
    "T-42",
    "../x",
    "a..b",
    "a-b-c",
    "a-b",
    "x" * 129,
    "2025-01-31T12:00:00Z",
    "2025-01-31T12:00:00.5+05:30",
    "2025-01-31T12:00:00",
    "2025-02-30T12:00:00Z",
    "2025-01-31 12:00:00Z",
    Text("admin"),
    Text("2025-01-31T12:00:00Z"),
    [],
    ["a-b-c"],
    ["T-1", "../x"],
    [1],
    ["x", None],
    {},
    {"k": 1},
    OrderedDict(k=1),
]

PAYLOAD_NAMES = sorted({f.name for fields in spec.PAYLOAD_FIELDS.values() for f in fields})
ENVELOPE_NAMES = [f.name for f in spec.ENVELOPE_FIELDS]
BASES = [
    DISPATCH,
    ESCALATION,
    dispatch(type="task_result", payload={"summary": "done"}, context_ref=["a-b-c"]),
]


def variants() -> Iterator[Any]:
    """Each base message with one field, then one payload member, replaced by each value or dropped."""
    for base in BASES:
        yield base
        yield {**base, "extra": 1}
        yield OrderedDict(base)
        for name in ENVELOPE_NAMES:
            yield {key: value for key, value in base.items() if key != name}
            for value in VALUES:
                yield {**base, name: copy.deepcopy(value)}
        for name in PAYLOAD_NAMES:
            payload = base["payload"]
            yield {**base, "payload": {key: value for key, value in payload.items() if key != name}}
            for value in VALUES:
                yield {**base, "payload": {**payload, name: copy.deepcopy(value)}}
    yield from VALUES
    for path in sorted(CORPUS.glob("*/*.json")):
        yield json.loads(path.read_text())


def fully(raw: Any) -> Envelope | None:
    try:
        return _validate_fully(raw)
    except AmpValidationError:
        return None


def test_the_fast_path_never_accepts_what_the_full_check_refuses() -> None:
    fast_accepted = 0
    for raw in variants():
        fast, full = _plainly_valid(raw), fully(raw)
        if fast is not None:
            fast_accepted += 1
            assert full is not None, raw
            assert (fast, fast.payload, fast.raw) == (full, full.payload, full.raw), raw
    assert fast_accepted > 100


@pytest.mark.parametrize("raw", BASES)
def test_plain_valid_messages_take_the_fast_path(raw: dict[str, Any]) -> None:
    assert _plainly_valid(raw) == validate(raw)


def test_doubts_go_to_the_full_check_which_decides() -> None:
    integral_float = dispatch(ack_timeout_sec=30.0)
    assert _plainly_valid(integral_float) is None
    assert validate(integral_float).ack_timeout_sec == 30

    subclassed = dispatch(from_=Text("admin"))
    assert _plainly_valid(subclassed) is None
    assert validate(subclassed).sender == "admin"


def test_defaults_are_fresh_copies_for_every_message() -> None:
    first, second = validate(ESCALATION), validate(ESCALATION)
    first.payload["affected_msgs"].append("a-b-c")
    assert second.payload["affected_msgs"] == []
    assert validate(DISPATCH).context_ref == ()
