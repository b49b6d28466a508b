"""The JSON Schemas (draft 2020-12) agents validate against: AMP/1.0, generated from `amp.spec`, and the
approval policy file of the SSOT (`policy/approvals.json`, SPEC section 5).

`python -m amp.jsonschema --write` regenerates amp/schema/amp-1.0.schema.json and
amp/schema/approval-policy.schema.json; `--check` exits 1 if either file is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from amp import spec

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "amp-1.0.schema.json"
POLICY_SCHEMA_PATH = SCHEMA_PATH.with_name("approval-policy.schema.json")

_PORTABILITY_NOTE = (
    "Patterns are ECMA-262 and Python compatible; '$(?!\\n)' is end of input in both "
    "(Python's '$' also matches before a trailing newline)."
)


def _pattern(regex: str) -> str:
    """Make a Python `^...$` pattern end at the end of input under `re.search` too, as ECMA-262 does."""
    return regex + r"(?!\n)" if regex.endswith("$") else regex


def _format_defs() -> dict[str, dict[str, Any]]:
    return {
        spec.SAFE_ID: {
            "description": "Path-safe id: a file name that stays in its SSOT folder.",
            "type": "string",
            "pattern": _pattern(spec.ID_PATTERN),
            "not": {"pattern": re.escape(spec.ID_FORBIDDEN_SUBSTRING)},
        },
        spec.MSG_ID: {
            "description": "Path-safe id with at least three non-empty '-'-separated parts.",
            "$ref": f"#/$defs/{spec.SAFE_ID}",
            "pattern": _pattern(spec.MSG_ID_PARTS_PATTERN),
        },
        spec.TIMESTAMP: {
            "description": (
                "RFC 3339 date-time with a mandatory UTC offset ('Z' or '+hh:mm'); "
                "calendar validity (no 30 February) is left to format: date-time."
            ),
            "type": "string",
            "format": "date-time",
            "pattern": _pattern(spec.TIMESTAMP_PATTERN),
        },
        spec.BRANCH: {
            "description": "BRANCH VIOLATION unless a git branch other than main/master (any case).",
            "type": "string",
            "pattern": _pattern(spec.BRANCH_CHARS_PATTERN),
            "not": {"pattern": _pattern(spec.FORBIDDEN_BRANCH_PATTERN)},
        },
    }


def _rule_schema(rule: spec.Rule) -> dict[str, Any]:
    if rule.format is not None:
        schema: dict[str, Any] = {"$ref": f"#/$defs/{rule.format}"}
    else:
        schema = {"type": rule.kind}
    if rule.const is not None:
        schema["const"] = rule.const
    if rule.enum:
        schema["enum"] = list(rule.enum)
    if rule.min_length:
        schema["minItems" if rule.kind == "array" else "minLength"] = rule.min_length
    if rule.minimum is not None:
        schema["minimum"] = rule.minimum
    if rule.maximum is not None:
        schema["maximum"] = rule.maximum
    if rule.items is not None:
        schema["items"] = _rule_schema(rule.items)
    return schema


def _object_schema(fields: tuple[spec.Field, ...], *, closed: bool) -> dict[str, Any]:
    properties = {}
    for f in fields:
        prop = {"description": f.description, **_rule_schema(f.rule)}
        if not f.required:
            prop["default"] = f.default
        properties[f.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "required": [f.name for f in fields if f.required],
        "properties": properties,
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def build_schema() -> dict[str, Any]:
    """Return the JSON Schema of an AMP/1.0 message."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{spec.PROTOCOL_VERSION} message",
        "description": "A message between AgentOS agents; the envelope is closed, the payload open.",
        "$comment": _PORTABILITY_NOTE,
        **_object_schema(spec.ENVELOPE_FIELDS, closed=True),
        "allOf": [
            {
                "if": {"required": ["type"], "properties": {"type": {"const": msg_type}}},
                "then": {"properties": {"payload": _object_schema(fields, closed=False)}},
            }
            for msg_type, fields in spec.PAYLOAD_FIELDS.items()
        ],
        "$defs": _format_defs(),
    }


def render_schema() -> str:
    """Return the schema as the text of the committed file."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def build_policy_schema() -> dict[str, Any]:
    """Return the JSON Schema of the approval policy file (`policy/approvals.json` in the SSOT)."""
    level = {
        "type": "object",
        "description": "Who decides on the tasks of one risk level.",
        "required": ["approvals", "groups"],
        "additionalProperties": False,
        "properties": {
            "approvals": {
                "description": "How many distinct people must approve the same task version.",
                "type": "integer",
                "minimum": spec.POLICY_MIN_APPROVALS,
                "maximum": spec.POLICY_MAX_APPROVALS,
            },
            "groups": {
                "description": (
                    "Django groups whose members may approve or reject at this level (the permission "
                    "ssot.approve_task is still required; a superuser counts as a member of every group)."
                ),
                "type": "array",
                "minItems": 1,
                "maxItems": spec.POLICY_MAX_GROUPS,
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 1, "maxLength": spec.POLICY_MAX_GROUP_NAME},
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "AgentOS approval policy",
        "description": (
            "policy/approvals.json in the SSOT: per risk level, how many approvers and from which groups. "
            "A level left out keeps the built-in default (one approval by the group 'approvers')."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"},
            "description": {"type": "string"},
            "levels": {
                "type": "object",
                "additionalProperties": False,
                "properties": {name: {"$ref": "#/$defs/level"} for name in spec.RISK_LEVELS},
            },
            "self_approval": {
                "description": "Whether the task's requested_by may approve it.",
                "type": "boolean",
                "default": False,
            },
        },
        "$defs": {"level": level},
    }


def render_policy_schema() -> str:
    """Return the policy schema as the text of the committed file."""
    return json.dumps(build_policy_schema(), indent=2, ensure_ascii=False) + "\n"


def main(
    argv: list[str] | None = None, path: Path = SCHEMA_PATH, policy_path: Path = POLICY_SCHEMA_PATH
) -> int:
    """Write or check the committed schema files; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m amp.jsonschema",
        description="Write or check the JSON Schema files of AMP/1.0 and of the approval policy.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the committed schema files")
    action.add_argument("--check", action="store_true", help="exit 1 if a committed schema file is stale")
    args = parser.parse_args(argv)
    files = ((path, render_schema()), (policy_path, render_policy_schema()))
    if args.write:
        for target, text in files:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
        return 0
    code = 0
    for target, text in files:
        try:
            stale = target.read_text(encoding="utf-8") != text
        except OSError:
            stale = True
        if stale:
            print(f"{target} is stale: run python -m amp.jsonschema --write", file=sys.stderr)
            code = 1
        else:
            print(f"{target} is up to date")
    return code


if __name__ == "__main__":
    sys.exit(main())
