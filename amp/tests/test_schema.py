"""The published JSON Schema is generated from amp.spec and agrees with validate() on a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from amp import validate
from amp.jsonschema import SCHEMA_PATH, build_schema, main, render_schema
from amp.spec import ENVELOPE_FIELDS, FORMATS, PAYLOAD_FIELDS
from amp.tests.messages import DISPATCH, ESCALATION, violations
from amp.validation import _FORMAT_CHECKS

CORPUS = Path(__file__).resolve().parent / "corpus"
GOOD = sorted((CORPUS / "good").glob("*.json"))
BAD = sorted((CORPUS / "bad").glob("*.json"))

# Why each bad file is bad: the exact paths validate() reports for it.
BAD_PATHS: dict[str, list[str]] = {
    "root-array": ["$"],
    "root-null": ["$"],
    "root-string": ["$"],
    "missing-msg-id": ["msg_id"],
    "missing-payload": ["payload"],
    "missing-requires-ack": ["requires_ack"],
    "missing-timestamp": ["timestamp"],
    "protocol-version-wrong": ["protocol_version"],
    "type-unknown": ["type"],
    "from-unknown": ["from"],
    "to-unknown": ["to"],
    "msg-id-two-parts": ["msg_id"],
    "msg-id-empty-part": ["msg_id"],
    "msg-id-dot-dot": ["msg_id"],
    "msg-id-path-traversal": ["msg_id"],
    "msg-id-trailing-newline": ["msg_id"],
    "task-id-path-traversal": ["task_id"],
    "task-id-129-characters": ["task_id"],
    "task-id-integer": ["task_id"],
    "task-id-hidden-file": ["task_id"],
    "timestamp-naive": ["timestamp"],
    "timestamp-not-a-date": ["timestamp"],
    "timestamp-without-seconds": ["timestamp"],
    "timestamp-epoch-number": ["timestamp"],
    "requires-ack-integer": ["requires_ack"],
    "requires-ack-string": ["requires_ack"],
    "ack-timeout-negative": ["ack_timeout_sec"],
    "ack-timeout-boolean": ["ack_timeout_sec"],
    "ack-timeout-string": ["ack_timeout_sec"],
    "ack-timeout-fraction": ["ack_timeout_sec"],
    "context-ref-string": ["context_ref"],
    "context-ref-unsafe-item": ["context_ref[2]"],
    "payload-array": ["payload"],
    "payload-null": ["payload"],
    "unknown-top-level-field": ["priority"],
    "dispatch-branch-main": ["payload.branch"],
    "dispatch-branch-master-uppercase": ["payload.branch"],
    "dispatch-branch-main-mixed-case": ["payload.branch"],
    "dispatch-branch-qualified-main": ["payload.branch"],
    "dispatch-branch-with-whitespace": ["payload.branch"],
    "dispatch-branch-empty": ["payload.branch"],
    "dispatch-branch-missing": ["payload.branch"],
    "dispatch-branch-not-string": ["payload.branch"],
    "dispatch-criteria-empty": ["payload.acceptance_criteria"],
    "dispatch-criteria-missing": ["payload.acceptance_criteria"],
    "dispatch-criteria-string": ["payload.acceptance_criteria"],
    "escalation-missing-escalation-type": ["payload.escalation_type"],
    "escalation-missing-severity": ["payload.severity"],
    "escalation-severity-unknown": ["payload.severity"],
    "escalation-missing-triggered-by": ["payload.triggered_by"],
    "escalation-missing-description": ["payload.description"],
    "escalation-empty-description": ["payload.description"],
    "escalation-auto-suspended-string": ["payload.auto_suspended"],
    "escalation-affected-msgs-unsafe-item": ["payload.affected_msgs[1]"],
    "escalation-snapshot-not-object": ["payload.system_state_snapshot"],
    "escalation-suggested-actions-not-strings": ["payload.suggested_actions[0]"],
    "many-violations-at-once": [
        "msg_id",
        "from",
        "timestamp",
        "requires_ack",
        "payload.branch",
        "payload.acceptance_criteria",
    ],
}


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def test_committed_schema_is_build_schema() -> None:
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == build_schema()
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema()


def test_validator_and_schema_implement_every_format() -> None:
    assert set(_FORMAT_CHECKS) == set(build_schema()["$defs"]) == set(FORMATS)


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(build_schema())


def test_corpus_is_large_enough() -> None:
    assert len(GOOD) >= 12
    assert len(BAD) >= 25


def test_every_bad_file_says_why_it_is_bad() -> None:
    assert sorted(BAD_PATHS) == sorted(path.stem for path in BAD)


def test_bad_corpus_covers_every_field_of_the_spec() -> None:
    reported = {path.split("[")[0] for paths in BAD_PATHS.values() for path in paths}
    expected = {f.name for f in ENVELOPE_FIELDS if f.required} | {
        f"payload.{f.name}" for fields in PAYLOAD_FIELDS.values() for f in fields
    }
    assert expected <= reported


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_messages_pass_both_validators(path: Path, schema_validator: Draft202012Validator) -> None:
    raw = _load(path)
    assert violations(raw) == {}
    assert list(schema_validator.iter_errors(raw)) == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_messages_fail_both_validators(path: Path, schema_validator: Draft202012Validator) -> None:
    raw = _load(path)
    assert list(violations(raw)) == BAD_PATHS[path.stem]
    assert not schema_validator.is_valid(raw)


@pytest.mark.parametrize("base", [DISPATCH, ESCALATION], ids=["dispatch", "escalation"])
def test_schema_defaults_are_the_validators_defaults(base: dict[str, object]) -> None:
    """`base` leaves every optional field out, so its canonical form shows the validator's defaults."""
    schema = build_schema()
    canonical = validate(base).to_dict()
    for name, prop in schema["properties"].items():
        if "default" in prop:
            assert canonical[name] == prop["default"]
    payload_rules = next(
        rule for rule in schema["allOf"] if rule["if"]["properties"]["type"]["const"] == base["type"]
    )
    for name, prop in payload_rules["then"]["properties"]["payload"]["properties"].items():
        if "default" in prop:
            assert canonical["payload"][name] == prop["default"]


def test_check_passes_on_the_committed_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert "is up to date" in capsys.readouterr().out


def test_check_fails_on_a_stale_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "amp-1.0.schema.json"
    stale.write_text(json.dumps({"title": "old"}), encoding="utf-8")
    assert main(["--check"], path=stale) == 1
    assert main(["--check"], path=tmp_path / "missing.json") == 1
    assert "is stale: run python -m amp.jsonschema --write" in capsys.readouterr().err


def test_write_regenerates_the_file(tmp_path: Path) -> None:
    target = tmp_path / "amp-1.0.schema.json"
    assert main(["--write"], path=target) == 0
    assert target.read_text(encoding="utf-8") == render_schema()
    assert main(["--check"], path=target) == 0


def test_an_action_is_required() -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
