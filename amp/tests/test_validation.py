"""Every rule of SPEC section 6, each with a valid and an invalid example and the exact path reported."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from amp import AGENT_NAMES, MESSAGE_TYPES, AmpValidationError, Envelope, Violation, is_safe_id, validate
from amp.spec import ENVELOPE_FIELDS
from amp.tests.messages import DISPATCH, DROP, ESCALATION, dispatch, violations, with_payload
from amp.validation import validate_json

PATH_SAFE = "must be a path-safe id"


def test_valid_dispatch_becomes_a_typed_envelope() -> None:
    envelope = validate(DISPATCH)
    assert envelope == Envelope(
        msg_id="task_dispatch-T-42-1738324800000",
        protocol_version="AMP/1.0",
        type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id="T-42",
        timestamp=datetime(2025, 1, 31, 12, tzinfo=UTC),
        requires_ack=True,
        ack_timeout_sec=0,
        context_ref=(),
        payload=DISPATCH["payload"],
        raw=DISPATCH,
    )
    assert envelope.raw == DISPATCH


def test_envelope_is_frozen() -> None:
    with pytest.raises(AttributeError):
        validate(DISPATCH).task_id = "T-43"  # type: ignore[misc]  # the write this test expects refused


def test_envelope_keeps_the_raw_dict_and_copies_the_payload() -> None:
    raw = copy.deepcopy(DISPATCH)
    envelope = validate(raw)
    raw["payload"]["branch"] = "main"
    assert envelope.raw is raw
    assert envelope.payload["branch"] == "feature/T-42-login"


def test_deeply_nested_payloads_are_handled_without_recursion() -> None:
    nested: dict[str, object] = {}
    for _ in range(5000):
        nested = {"a": nested}
    envelope = validate(dispatch(type="task_result", payload=nested))
    assert envelope.to_dict()["payload"] == nested


def test_to_dict_lists_every_field_in_spec_order_with_defaults() -> None:
    canonical = validate(DISPATCH).to_dict()
    assert list(canonical) == [f.name for f in ENVELOPE_FIELDS]
    assert canonical == {**DISPATCH, "ack_timeout_sec": 0, "context_ref": []}


def test_to_dict_keeps_the_timestamp_text_and_round_trips() -> None:
    message = dispatch(timestamp="2025-01-31T17:30:00.123456789+05:30")
    canonical = validate(message).to_dict()
    assert canonical["timestamp"] == "2025-01-31T17:30:00.123456789+05:30"
    assert validate(canonical).to_dict() == canonical


def test_escalation_payload_gets_the_drafts_defaults() -> None:
    envelope = validate(ESCALATION)
    assert envelope.payload == {
        **ESCALATION["payload"],
        "affected_msgs": [],
        "system_state_snapshot": {},
        "suggested_actions": [],
        "auto_suspended": True,
    }
    assert envelope.to_dict()["payload"] == envelope.payload
    assert "affected_msgs" not in envelope.raw["payload"]


@pytest.mark.parametrize(("raw", "kind"), [([], "array"), ("{}", "string"), (None, "null"), (7, "integer")])
def test_a_message_must_be_an_object(raw: object, kind: str) -> None:
    assert violations(raw) == {"$": f"must be a JSON object, not {kind}"}


def test_every_missing_required_field_is_reported_at_once() -> None:
    assert violations({}) == {
        name: "is required"
        for name in (
            "msg_id",
            "protocol_version",
            "type",
            "from",
            "to",
            "task_id",
            "timestamp",
            "requires_ack",
            "payload",
        )
    }


def test_optional_fields_default_to_zero_and_empty() -> None:
    envelope = validate(DISPATCH)
    assert (envelope.ack_timeout_sec, envelope.context_ref) == (0, ())


def test_protocol_version_must_be_amp_1_0() -> None:
    assert violations(dispatch(protocol_version="AMP/1.0")) == {}
    assert violations(dispatch(protocol_version="AMP/2.0")) == {
        "protocol_version": "must be 'AMP/1.0', not 'AMP/2.0'"
    }
    assert list(violations(dispatch(protocol_version="amp/1.0"))) == ["protocol_version"]
    assert violations(dispatch(protocol_version=1.1)) == {"protocol_version": "must be a string, not number"}


@pytest.mark.parametrize("msg_type", [t for t in MESSAGE_TYPES if t not in ("task_dispatch", "escalation")])
def test_types_without_payload_rules_accept_any_payload(msg_type: str) -> None:
    assert violations(dispatch(type=msg_type, payload={})) == {}


def test_an_unknown_type_is_rejected() -> None:
    assert violations(dispatch(type="task_cancel")) == {
        "type": "must be one of task_dispatch, task_result, review_request, review_verdict, escalation; "
        "got 'task_cancel'"
    }


@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_every_agent_can_send_and_receive(agent: str) -> None:
    assert violations(dispatch(from_=agent, to_=agent)) == {}


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("agent", ["root", "Executor", "", None])
def test_sender_and_addressee_must_be_known_agents(field: str, agent: object) -> None:
    assert list(violations({**DISPATCH, field: agent})) == [field]


@pytest.mark.parametrize(
    "msg_id", ["a-b-c", "task_dispatch-T-42-1738324800000", "v1.2_x-T.42-7", "a-b-c-d-e"]
)
def test_msg_id_with_three_parts_is_accepted(msg_id: str) -> None:
    assert violations(dispatch(msg_id=msg_id)) == {}


@pytest.mark.parametrize("msg_id", ["a-b", "abc", "a--b-c", "a-b-", "a-b-c-"])
def test_msg_id_needs_three_non_empty_parts(msg_id: str) -> None:
    assert violations(dispatch(msg_id=msg_id)) == {
        "msg_id": "must have at least three non-empty '-'-separated parts, like {type}-{task_id}-{epoch_ms}"
    }


@pytest.mark.parametrize(
    "msg_id", ["../a-b-c", "a/b-c-d", "-a-b-c", "a-b-c\n", "", "é-b-c", "a-b-" + "c" * 125]
)
def test_msg_id_must_be_path_safe(msg_id: str) -> None:
    assert violations(dispatch(msg_id=msg_id))["msg_id"].startswith(PATH_SAFE)


def test_msg_id_must_not_contain_dot_dot() -> None:
    assert violations(dispatch(msg_id="a..b-c-d")) == {"msg_id": "must not contain '..'"}


@pytest.mark.parametrize("task_id", ["T-42", "a", "t_1.2", "T" * 128, "0"])
def test_path_safe_task_ids_are_accepted(task_id: str) -> None:
    assert violations(dispatch(task_id=task_id)) == {}


@pytest.mark.parametrize("task_id", ["../x", ".x", "-x", "_x", "", "x/y", "x y", "T" * 129, "tâche", "x\n"])
def test_task_id_must_be_path_safe(task_id: str) -> None:
    assert violations(dispatch(task_id=task_id))["task_id"].startswith(PATH_SAFE)


def test_task_id_must_not_contain_dot_dot() -> None:
    assert violations(dispatch(task_id="a..b")) == {"task_id": "must not contain '..'"}


def test_task_id_must_be_a_string() -> None:
    assert violations(dispatch(task_id=42)) == {"task_id": "must be a string, not integer"}


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("T-42", True),
        ("a.b_c-d", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("a..b", False),
        ("../etc", False),
        ("", False),
        (".git", False),
        ("a\n", False),
        (42, False),
        (None, False),
    ],
)
def test_is_safe_id(value: object, safe: bool) -> None:
    assert is_safe_id(value) is safe


def test_context_ref_accepts_a_list_of_ids() -> None:
    envelope = validate(dispatch(context_ref=["task_result-T-41-1", "x"]))
    assert envelope.context_ref == ("task_result-T-41-1", "x")


def test_context_ref_must_be_a_list() -> None:
    assert violations(dispatch(context_ref="a-b-c")) == {"context_ref": "must be an array, not string"}


def test_context_ref_reports_each_bad_item_by_index() -> None:
    found = violations(dispatch(context_ref=["ok-1-2", "../x", "y", 3]))
    assert list(found) == ["context_ref[1]", "context_ref[3]"]
    assert found["context_ref[1]"].startswith(PATH_SAFE)
    assert found["context_ref[3]"] == "must be a string, not integer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00+00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00-00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T17:30:00+05:30", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00.250Z", datetime(2025, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2024-02-29T23:59:59-08:00", datetime(2024, 3, 1, 7, 59, 59, tzinfo=UTC)),
    ],
)
def test_timestamps_with_an_offset_become_aware_datetimes(text: str, expected: datetime) -> None:
    timestamp = validate(dispatch(timestamp=text)).timestamp
    assert timestamp == expected
    assert timestamp.utcoffset() is not None


def test_timestamp_keeps_its_offset() -> None:
    timestamp = validate(dispatch(timestamp="2025-01-31T17:30:00+05:30")).timestamp
    assert timestamp.utcoffset() == timedelta(hours=5, minutes=30)
    assert timestamp.tzinfo == timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("text", ["2025-01-31T12:00:00", "2025-01-31T12:00:00.5", "2025-01-31"])
def test_naive_timestamps_are_rejected(text: str) -> None:
    assert violations(dispatch(timestamp=text)) == {
        "timestamp": "has no UTC offset: naive timestamps are refused, add 'Z' or '+hh:mm'"
    }


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2025-01-31T12:00Z",
        "2025-01-31 12:00:00Z",
        "20250131T120000Z",
        "2025-01-31T12:00:00+05",
        "2025-01-31T12:00:00z",
        "2025-01-31T12:00:00Z\n",
        "٢٠٢٥-01-31T12:00:00Z",
        "2025-13-01T12:00:00Z",
    ],
)
def test_timestamps_must_be_rfc3339_with_an_offset(text: str) -> None:
    assert violations(dispatch(timestamp=text))["timestamp"].startswith(
        "must be an ISO 8601 date-time with a UTC offset, like 2025-01-31T12:00:00Z"
    )


def test_timestamp_must_be_a_real_date() -> None:
    assert violations(dispatch(timestamp="2025-02-30T12:00:00Z")) == {
        "timestamp": "is not a real date-time (day is out of range for month)"
    }


def test_timestamp_must_be_a_string() -> None:
    assert violations(dispatch(timestamp=1738324800)) == {"timestamp": "must be a string, not integer"}


@pytest.mark.parametrize("value", [True, False])
def test_requires_ack_accepts_booleans(value: bool) -> None:
    assert validate(dispatch(requires_ack=value)).requires_ack is value


@pytest.mark.parametrize(
    ("value", "kind"), [(1, "integer"), (0, "integer"), ("true", "string"), (None, "null")]
)
def test_requires_ack_must_be_a_boolean(value: object, kind: str) -> None:
    assert violations(dispatch(requires_ack=value)) == {"requires_ack": f"must be a boolean, not {kind}"}


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (300, 300), (300.0, 300)])
def test_ack_timeout_sec_accepts_non_negative_integers(value: object, expected: int) -> None:
    timeout = validate(dispatch(ack_timeout_sec=value)).ack_timeout_sec
    assert timeout == expected
    assert type(timeout) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "must be >= 0"),
        (True, "must be an integer, not boolean"),
        ("300", "must be an integer, not string"),
        (1.5, "must be an integer, not number"),
        (None, "must be an integer, not null"),
    ],
)
def test_ack_timeout_sec_must_be_a_non_negative_integer(value: object, message: str) -> None:
    assert violations(dispatch(ack_timeout_sec=value)) == {"ack_timeout_sec": message}


@pytest.mark.parametrize(("value", "kind"), [([], "array"), (None, "null"), ("{}", "string")])
def test_payload_must_be_an_object(value: object, kind: str) -> None:
    assert violations(dispatch(type="task_result", payload=value)) == {
        "payload": f"must be an object, not {kind}"
    }


def test_payload_is_open() -> None:
    message = with_payload(DISPATCH, notes="anything", nested={"deep": [1, 2]})
    assert validate(message).payload["nested"] == {"deep": [1, 2]}


def test_unknown_top_level_fields_are_each_rejected() -> None:
    assert violations(dispatch(priority="high", extra=None)) == {
        "priority": "unknown field: the envelope is closed, extra data goes in payload",
        "extra": "unknown field: the envelope is closed, extra data goes in payload",
    }


@pytest.mark.parametrize(
    "branch",
    ["feature/T-42", "fix/main-menu", "Maintenance", "mainline", "master-copy", "refs/heads/feature-x", "m"],
)
def test_dispatch_to_a_task_branch_is_accepted(branch: str) -> None:
    assert violations(with_payload(DISPATCH, branch=branch)) == {}


@pytest.mark.parametrize(
    "branch", ["main", "master", "MAIN", "Master", "mAsTeR", "refs/heads/main", "REFS/HEADS/MASTER"]
)
def test_dispatch_to_main_or_master_is_a_branch_violation(branch: str) -> None:
    assert violations(with_payload(DISPATCH, branch=branch)) == {
        "payload.branch": f"BRANCH VIOLATION: work is never dispatched to {branch!r}; use a task branch"
    }


@pytest.mark.parametrize("branch", ["main ", " main", "main\n", "feature x", "feat\tx", "x\x7f"])
def test_dispatch_branch_must_not_hold_whitespace_or_control_characters(branch: str) -> None:
    assert violations(with_payload(DISPATCH, branch=branch)) == {
        "payload.branch": "must not contain whitespace or control characters"
    }


@pytest.mark.parametrize(
    ("branch", "message"),
    [
        ("", "must not be empty"),
        (DROP, "is required"),
        (None, "must be a string, not null"),
        (["feature/x"], "must be a string, not array"),
    ],
)
def test_dispatch_branch_must_be_a_non_empty_string(branch: object, message: str) -> None:
    assert violations(with_payload(DISPATCH, branch=branch)) == {"payload.branch": message}


def test_branch_rule_applies_only_to_task_dispatch() -> None:
    assert violations(dispatch(type="review_request", payload={"branch": "main"})) == {}


@pytest.mark.parametrize("criteria", [["it works"], [{"id": 1, "text": "it works"}], ["a", "b"]])
def test_dispatch_with_acceptance_criteria_is_accepted(criteria: list[object]) -> None:
    assert violations(with_payload(DISPATCH, acceptance_criteria=criteria)) == {}


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ([], "must not be empty"),
        (DROP, "is required"),
        ("it works", "must be an array, not string"),
        ({"a": 1}, "must be an array, not object"),
    ],
)
def test_dispatch_acceptance_criteria_must_be_a_non_empty_list(criteria: object, message: str) -> None:
    assert violations(with_payload(DISPATCH, acceptance_criteria=criteria)) == {
        "payload.acceptance_criteria": message
    }


@pytest.mark.parametrize("field", ["escalation_type", "severity", "triggered_by", "description"])
def test_escalation_requires_its_payload_fields(field: str) -> None:
    assert violations(with_payload(ESCALATION, **{field: DROP})) == {f"payload.{field}": "is required"}


@pytest.mark.parametrize("field", ["escalation_type", "triggered_by", "description"])
def test_escalation_text_fields_must_not_be_empty(field: str) -> None:
    assert violations(with_payload(ESCALATION, **{field: ""})) == {f"payload.{field}": "must not be empty"}


@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
def test_escalation_severities_are_accepted(severity: str) -> None:
    assert violations(with_payload(ESCALATION, severity=severity)) == {}


@pytest.mark.parametrize("severity", ["fatal", "WARNING", ""])
def test_escalation_severity_must_be_known(severity: str) -> None:
    assert violations(with_payload(ESCALATION, severity=severity)) == {
        "payload.severity": f"must be one of info, warning, critical; got {severity!r}"
    }


def test_escalation_optional_fields_are_accepted() -> None:
    message = with_payload(
        ESCALATION,
        affected_msgs=["task_dispatch-T-42-1738324800000"],
        system_state_snapshot={"executor": "timeout"},
        suggested_actions=["restart the executor"],
        auto_suspended=False,
    )
    assert validate(message).payload["auto_suspended"] is False


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"affected_msgs": "a-b-c"}, "payload.affected_msgs", "must be an array, not string"),
        ({"system_state_snapshot": []}, "payload.system_state_snapshot", "must be an object, not array"),
        ({"suggested_actions": ["ok", 3]}, "payload.suggested_actions[1]", "must be a string, not integer"),
        ({"auto_suspended": "yes"}, "payload.auto_suspended", "must be a boolean, not string"),
        ({"auto_suspended": 1}, "payload.auto_suspended", "must be a boolean, not integer"),
    ],
)
def test_escalation_optional_fields_are_typed(changes: dict[str, object], path: str, message: str) -> None:
    assert violations(with_payload(ESCALATION, **changes)) == {path: message}


def test_escalation_affected_msgs_must_be_path_safe() -> None:
    found = violations(with_payload(ESCALATION, affected_msgs=["a-b-c", "../../x"]))
    assert list(found) == ["payload.affected_msgs[1]"]
    assert found["payload.affected_msgs[1]"].startswith(PATH_SAFE)


def test_escalation_rules_do_not_apply_to_other_types() -> None:
    assert violations(dispatch(type="task_result", payload={"severity": "fatal"})) == {}


def test_every_violation_is_reported_at_once() -> None:
    message = dispatch(
        msg_id="x",
        from_="root",
        timestamp="2025-01-31T12:00:00",
        requires_ack="yes",
        context_ref=["ok", "../x"],
        colour="red",
        payload={"branch": "master", "acceptance_criteria": []},
    )
    del message["task_id"]
    with pytest.raises(AmpValidationError) as caught:
        validate(message)
    assert [error.path for error in caught.value.errors] == [
        "msg_id",
        "from",
        "task_id",
        "timestamp",
        "requires_ack",
        "context_ref[1]",
        "colour",
        "payload.branch",
        "payload.acceptance_criteria",
    ]


def test_validation_error_is_a_value_error_that_reads_well() -> None:
    with pytest.raises(ValueError, match=r"^type: must be one of .*; requires_ack: is required$"):
        validate(dispatch(type="x", requires_ack=DROP))


def test_violation_reads_as_path_and_reason() -> None:
    assert str(Violation("payload.branch", "must not be empty")) == "payload.branch: must not be empty"


def test_validate_json_accepts_utf8_bytes_and_text() -> None:
    text = (
        '{"msg_id": "a-b-c", "protocol_version": "AMP/1.0", "type": "task_result", "from": "executor", '
        '"to": "coordinator", "task_id": "T-1", "timestamp": "2025-01-31T12:00:00Z", "requires_ack": true, '
        '"payload": {"summary": "fait ✓"}}'
    )
    assert validate_json(text.encode()).payload == {"summary": "fait ✓"}
    assert validate_json(text).msg_id == "a-b-c"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "UTF-16 text (a byte order mark at the start): JSON must be UTF-8"),
        (b"{\xff}", "not UTF-8 text (invalid start byte at byte 1)"),
        (b"", "empty: a JSON object is expected"),
        (b" \n", "empty: a JSON object is expected"),
        ("\ufeff{}".encode(), "a byte order mark (BOM) at the start: JSON must be UTF-8 without one"),
        (b"{'a': 1}", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b'{"to": "admin", "to": "system"}', "duplicate key 'to' in one object"),
        (b'{"payload": {"a": 1, "b": 2, "b": 3, "a": 4}}', "duplicate key 'b' in one object"),
        (b'{"ack_timeout_sec": NaN}', "NaN is not a JSON number (JSON has no NaN or Infinity)"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b"[" * 100_000, "nested 100000 deep: at most 64 levels of objects and arrays"),
        (b'{"a": 1} x', "data after the JSON value at line 1 column 10"),
    ],
)
def test_validate_json_reports_undecodable_content_at_the_root(data: bytes, message: str) -> None:
    with pytest.raises(AmpValidationError) as caught:
        validate_json(data)
    assert caught.value.errors == [Violation("$", message)]
