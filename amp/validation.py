"""Validation of AMP/1.0 messages against `amp.spec`, reporting every violation at once.

Decisions beyond SPEC section 6, mirrored by the published JSON Schema:
- the envelope is closed: an unknown top-level field is a violation (extra data belongs in `payload`,
  which stays open: only the members `amp.spec.PAYLOAD_FIELDS` names are checked);
- JSON has one number type, so an integral float such as 300.0 is an integer, as in JSON Schema;
  a boolean is never an integer;
- timestamps follow RFC 3339 (seconds required, `T` separator, `Z` or `+hh:mm` offset);
- a branch is also refused as `refs/heads/main` and when it holds whitespace or control characters,
  which git forbids in ref names;
- a file is read by `amp.strictjson` (duplicate keys, NaN/Infinity, lone surrogates, deep nesting...
  are refused there, each with its reason as a violation at `$`);
- an integer that becomes a column (`ack_timeout_sec`) fits a signed 64-bit integer;
- a timestamp must stay within the calendar once converted to UTC (year 1 to 9999), as the database
  stores it in UTC.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amp import spec, strictjson

ROOT = "$"

_ID_RE = re.compile(spec.ID_PATTERN)
_MSG_ID_PARTS_RE = re.compile(spec.MSG_ID_PARTS_PATTERN)
_TIMESTAMP_RE = re.compile(spec.TIMESTAMP_PATTERN)
_BRANCH_CHARS_RE = re.compile(spec.BRANCH_CHARS_PATTERN)
_FORBIDDEN_BRANCH_RE = re.compile(spec.FORBIDDEN_BRANCH_PATTERN)


@dataclass(frozen=True)
class Violation:
    """One broken rule: `path` locates the value (`payload.branch`, `context_ref[2]`, `$` for the root)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class AmpValidationError(ValueError):
    """A message is not valid AMP/1.0; `errors` lists every violation."""

    def __init__(self, errors: list[Violation]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class Envelope:
    """A valid AMP/1.0 message; `raw` is the dict as received, `payload` a copy with its defaults filled."""

    msg_id: str
    protocol_version: str
    type: str
    sender: str
    recipient: str
    task_id: str
    timestamp: datetime
    requires_ack: bool
    ack_timeout_sec: int
    context_ref: tuple[str, ...]
    payload: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical JSON object: every envelope field in spec order, defaults filled."""
        return {
            "msg_id": self.msg_id,
            "protocol_version": self.protocol_version,
            "type": self.type,
            "from": self.sender,
            "to": self.recipient,
            "task_id": self.task_id,
            "timestamp": self.raw["timestamp"],
            "requires_ack": self.requires_ack,
            "ack_timeout_sec": self.ack_timeout_sec,
            "context_ref": list(self.context_ref),
            "payload": dict(self.payload),
        }


def is_safe_id(s: object) -> bool:
    """Whether `s` can be an SSOT id (task, message, agent): a file name that stays in its folder."""
    return isinstance(s, str) and _ID_RE.fullmatch(s) is not None and spec.ID_FORBIDDEN_SUBSTRING not in s


def validate(raw: object) -> Envelope:
    """Return the Envelope of an AMP/1.0 message; raise AmpValidationError listing every violation."""
    envelope = _plainly_valid(raw)
    return envelope if envelope is not None else _validate_fully(raw)


def _validate_fully(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise AmpValidationError([Violation(ROOT, f"must be a JSON object, not {_json_type(raw)}")])
    errors: list[Violation] = []
    values = _check_object(raw, spec.ENVELOPE_FIELDS, "", errors)
    known = {f.name for f in spec.ENVELOPE_FIELDS}
    for key in raw:
        if key not in known:
            errors.append(
                Violation(str(key), "unknown field: the envelope is closed, extra data goes in payload")
            )
    payload = values.get("payload")
    msg_type = values.get("type")
    payload_fields = spec.PAYLOAD_FIELDS.get(msg_type, ()) if isinstance(msg_type, str) else ()
    if isinstance(payload, dict) and payload_fields:
        payload = {**payload, **_check_object(payload, payload_fields, "payload.", errors)}
    if errors:
        raise AmpValidationError(errors)
    # No violation: the required `payload` field was checked to be an object.
    assert isinstance(payload, dict)
    return _envelope(raw, values, payload)


def _envelope(raw: dict[str, Any], values: dict[str, Any], payload: dict[str, Any]) -> Envelope:
    return Envelope(
        msg_id=values["msg_id"],
        protocol_version=values["protocol_version"],
        type=values["type"],
        sender=values["from"],
        recipient=values["to"],
        task_id=values["task_id"],
        timestamp=datetime.fromisoformat(values["timestamp"]),
        requires_ack=values["requires_ack"],
        ack_timeout_sec=int(values["ack_timeout_sec"]),
        context_ref=tuple(values["context_ref"]),
        payload=dict(payload),
        raw=raw,
    )


def validate_json(data: bytes | str) -> Envelope:
    """Read a message file with the strict reader and validate it; a refusal is a violation at `$`."""
    try:
        raw = strictjson.loads(data)
    except strictjson.JsonRefused as exc:
        raise AmpValidationError([Violation(ROOT, exc.reason)]) from None
    return validate(raw)


def _check_object(
    obj: dict[str, Any], fields: tuple[spec.Field, ...], prefix: str, errors: list[Violation]
) -> dict[str, Any]:
    """Check `fields` of `obj`, appending violations; return their values with defaults filled."""
    values: dict[str, Any] = {}
    for f in fields:
        path = prefix + f.name
        if f.name in obj:
            values[f.name] = obj[f.name]
            _check_value(f.rule, obj[f.name], path, errors)
        elif f.required:
            errors.append(Violation(path, "is required"))
        else:
            values[f.name] = copy.deepcopy(f.default)
    return values


def _check_value(rule: spec.Rule, value: object, path: str, errors: list[Violation]) -> None:
    actual = _json_type(value)
    if actual != rule.kind:
        errors.append(Violation(path, f"must be {_a(rule.kind)}, not {actual}"))
        return
    problem = None
    if rule.const is not None and value != rule.const:
        problem = f"must be {rule.const!r}, not {_shorten(value)}"
    elif rule.enum and value not in rule.enum:
        problem = f"must be one of {', '.join(rule.enum)}; got {_shorten(value)}"
    elif rule.min_length and isinstance(value, str | list) and len(value) < rule.min_length:
        problem = "must not be empty"
    elif rule.minimum is not None and isinstance(value, int | float) and value < rule.minimum:
        problem = f"must be >= {rule.minimum}"
    elif rule.maximum is not None and isinstance(value, int | float) and value > rule.maximum:
        problem = f"must be <= {rule.maximum} (it is stored as a signed 64-bit integer)"
    elif rule.format is not None and isinstance(value, str):
        problem = _FORMAT_CHECKS[rule.format](value)
    if problem:
        errors.append(Violation(path, problem))
    if rule.items is not None and isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(rule.items, item, f"{path}[{index}]", errors)


def _check_safe_id(value: str) -> str | None:
    if _ID_RE.fullmatch(value) is None:
        return (
            "must be a path-safe id: 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit; "
            f"got {_shorten(value)}"
        )
    if spec.ID_FORBIDDEN_SUBSTRING in value:
        return f"must not contain {spec.ID_FORBIDDEN_SUBSTRING!r}"
    return None


def _check_msg_id(value: str) -> str | None:
    problem = _check_safe_id(value)
    if problem is None and _MSG_ID_PARTS_RE.fullmatch(value) is None:
        problem = "must have at least three non-empty '-'-separated parts, like {type}-{task_id}-{epoch_ms}"
    return problem


def _check_timestamp(value: str) -> str | None:
    if _TIMESTAMP_RE.fullmatch(value):
        try:
            datetime.fromisoformat(value).astimezone(UTC)
        except ValueError as exc:
            return f"is not a real date-time ({exc})"
        except OverflowError:
            return "is out of range once converted to UTC (years 1 to 9999)"
        return None
    try:
        naive = datetime.fromisoformat(value).tzinfo is None
    except ValueError:
        naive = False
    if naive:
        return "has no UTC offset: naive timestamps are refused, add 'Z' or '+hh:mm'"
    return (
        f"must be an ISO 8601 date-time with a UTC offset, like 2025-01-31T12:00:00Z; got {_shorten(value)}"
    )


def _check_branch(value: str) -> str | None:
    if _BRANCH_CHARS_RE.fullmatch(value) is None:
        return "must not contain whitespace or control characters"
    if _FORBIDDEN_BRANCH_RE.fullmatch(value):
        return f"BRANCH VIOLATION: work is never dispatched to {value!r}; use a task branch"
    return None


_FORMAT_CHECKS: dict[str, Callable[[str], str | None]] = {
    spec.SAFE_ID: _check_safe_id,
    spec.MSG_ID: _check_msg_id,
    spec.TIMESTAMP: _check_timestamp,
    spec.BRANCH: _check_branch,
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the fast path --------------------------------------------------------------------------------
# Nearly every message is valid, and the full check spends most of its time building the paths and
# messages it would report. `_plainly_valid` checks the same rules as yes/no predicates compiled from
# `amp.spec` and answers None at the first doubt (any failed rule, but also a float where an integer
# is due, a subclass of str...): the full check then decides, and reports every violation.

_EXACT_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _never(value: object) -> bool:
    return False


def _accepts(rule: spec.Rule) -> Callable[[object], bool]:
    """A predicate true only for values `rule` accepts without a doubt (each name below is bound once)."""
    exact = _EXACT_TYPES.get(rule.kind)
    if exact is None:
        return _never
    tests: list[Callable[[Any], bool]] = []
    if (const := rule.const) is not None:
        tests.append(lambda value: value == const)
    if allowed := frozenset(rule.enum):
        tests.append(lambda value: value in allowed)
    if least_length := rule.min_length:
        tests.append(lambda value: len(value) >= least_length)
    if (minimum := rule.minimum) is not None:
        tests.append(lambda value: value >= minimum)
    if (maximum := rule.maximum) is not None:
        tests.append(lambda value: value <= maximum)
    if rule.format is not None:
        check = _FORMAT_CHECKS[rule.format]
        tests.append(lambda value: check(value) is None)
    if rule.items is not None:
        item = _accepts(rule.items)
        tests.append(lambda value: all(map(item, value)))
    if not tests:
        return lambda value: value.__class__ is exact
    if len(tests) == 1:
        test = tests[0]
        return lambda value: value.__class__ is exact and test(value)
    return lambda value: value.__class__ is exact and all(test(value) for test in tests)


_Checks = tuple[tuple[str, bool, Callable[[], Any], Callable[[object], bool]], ...]


def _default_factory(default: Any) -> Callable[[], Any]:
    """A fresh copy of a default each time, without deepcopy's cost for the common ones."""
    if default is None or isinstance(default, str | int | float):
        return lambda: default
    if default == []:
        return list
    if default == {}:
        return dict
    return lambda: copy.deepcopy(default)


def _compile(fields: tuple[spec.Field, ...]) -> _Checks:
    return tuple((f.name, f.required, _default_factory(f.default), _accepts(f.rule)) for f in fields)


_ENVELOPE_CHECKS = _compile(spec.ENVELOPE_FIELDS)
_ENVELOPE_NAMES = frozenset(f.name for f in spec.ENVELOPE_FIELDS)
_PAYLOAD_CHECKS = {msg_type: _compile(fields) for msg_type, fields in spec.PAYLOAD_FIELDS.items()}


def _plain_values(obj: dict[str, Any], checks: _Checks) -> dict[str, Any] | None:
    """The checked fields of `obj` with defaults filled, as `_check_object` gives them; None at a doubt."""
    values: dict[str, Any] = {}
    for name, required, default, accepts in checks:
        if name in obj:
            value = obj[name]
            if not accepts(value):
                return None
            values[name] = value
        elif required:
            return None
        else:
            values[name] = default()
    return values


def _plainly_valid(raw: object) -> Envelope | None:
    """The Envelope of a message that passes every rule at first sight; None when the full check must look."""
    if raw.__class__ is not dict or not raw.keys() <= _ENVELOPE_NAMES:
        return None
    values = _plain_values(raw, _ENVELOPE_CHECKS)
    if values is None:
        return None
    payload = values["payload"]
    checks = _PAYLOAD_CHECKS.get(values["type"])
    if checks:
        checked = _plain_values(payload, checks)
        if checked is None:
            return None
        payload = {**payload, **checked}
    return _envelope(raw, values, payload)
