"""The one strict JSON reader for everything an agent or a peer sends: SSOT files, API and webhook bodies.

RFC 8259 leaves room that parsers fill differently (duplicate keys, huge numbers, lone surrogates,
NaN), and what one reader accepts another refuses: PostgreSQL's jsonb takes no NaN nor lone surrogate,
SQLite's JSON no Infinity, Python's own `json` recurses into deep nesting and turns 1e400 into an
infinity. A value this reader returns can be stored, indexed and rendered anywhere; everything else is
refused with a `JsonRefused` whose `reason` says what is wrong, one reason per kind:

    invalid UTF-8; a byte order mark, UTF-16 or UTF-32; a lone surrogate (escaped or encoded);
    NaN / Infinity / -Infinity; a float out of a 64-bit float's range; a number of more than 100 digits;
    nesting deeper than 64; a duplicate key; data after the value; nothing at all; a top level that is
    not an object; and, of course, text that is not JSON.

Integers outside signed 64 bits are valid JSON here: they are refused where they would become a column
(`fits_int64`). The reader is Python's C decoder with hooks, built once; the checks that need a walk
(depth, escaped surrogates) run only when a cheap count says they could fail. (Considered: `orjson`,
which refuses some of these but not duplicate keys, nor deep nesting below its own fixed limit of 1024.)
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "JsonRefused",
    "fits_int64",
    "loads",
    "text_of",
]

MAX_DEPTH = 64
MAX_DIGITS = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_INFINITIES = (float("inf"), float("-inf"))
_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
_UTF16_32_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
# A JSON string, or one bracket outside strings (the unrolled form: no backtracking within a string).
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """Content the strict reader refuses; `reason` says why, in words fit for the sender."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def fits_int64(value: object) -> TypeGuard[int]:
    """Whether `value` is an integer a signed 64-bit column can hold (bool is not an integer here)."""
    return value.__class__ is int and INT64_MIN <= value <= INT64_MAX


def text_of(data: bytes) -> str:
    """The text of UTF-8 bytes without a byte order mark; anything else is refused with its reason."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise JsonRefused("a byte order mark (BOM) at the start: JSON must be UTF-8 without one")
    for bom, encoding in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise JsonRefused(f"{encoding} text (a byte order mark at the start): JSON must be UTF-8")
    if len(data) >= 2 and (data[0] == 0 or data[1] == 0):
        raise JsonRefused("UTF-16 or UTF-32 text (a NUL byte at the start): JSON must be UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRefused(_utf8_reason(data, exc)) from None


def loads(data: bytes | str, *, any_value: bool = False) -> Any:
    """The JSON object `data` holds (UTF-8 bytes, or text); JsonRefused with the reason otherwise.

    `any_value` lets another top level through (an API body: its endpoint says what it wanted instead).
    """
    if data.__class__ is bytes and data[:1] == b"{" and data[1:2] != b"\x00":
        # Nearly every file: no byte order mark, not UTF-16, not empty.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused(_utf8_reason(data, exc)) from None
    else:
        text = _text(data)
    # Cheap counts first: only a text with that many brackets can nest too deep, and only one with a
    # \ud.. escape can hold a lone surrogate.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(text)
    try:
        value = _DECODER.decode(text)
    except JsonRefused:
        raise
    except json.JSONDecodeError as exc:
        raise JsonRefused(_syntax_reason(exc)) from None
    except RecursionError:  # not reached past _check_depth; kept so that no input can raise it
        raise JsonRefused(f"nested too deeply: at most {MAX_DEPTH} levels") from None
    if value.__class__ is not dict and not any_value:
        raise JsonRefused(f"must be a JSON object, not {_type_name(value)}")
    if "\\u" in text and ("\\ud" in text or "\\uD" in text):
        where = _surrogate_at(value, "$")
        if where is not None:
            raise JsonRefused(f"a lone surrogate (an unpaired \\ud800-\\udfff escape) at {where}")
    return value


def _text(data: bytes | bytearray | memoryview | str) -> str:
    """The text of anything but the common case, refused as text_of refuses bytes; never empty."""
    if isinstance(data, bytes | bytearray | memoryview):
        text = text_of(bytes(data))
    else:
        text = data
        if text.startswith("\ufeff"):
            raise JsonRefused("a byte order mark (BOM) at the start: JSON must be UTF-8 without one")
        if not text.isascii() and (found := _SURROGATE.search(text)):
            raise JsonRefused(f"a lone surrogate U+{ord(found.group()):04X} (not a character)")
    if not text or text.isspace():
        raise JsonRefused("empty: a JSON object is expected")
    return text


# -- hooks of the one decoder -------------------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins, so an object with one has no single meaning.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"duplicate key {_shown(key)} in one object")
            seen.add(key)
    return result


def _constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def _float(token: str) -> float:
    if len(token) > MAX_DIGITS:
        _check_digits(token)
    value = float(token)
    if value in _INFINITIES:
        raise JsonRefused(f"the number {token[:40]} is too large for a 64-bit float")
    return value


def _int(token: str) -> int:
    if len(token) > MAX_DIGITS:
        _check_digits(token)
    return int(token)


def _check_digits(token: str) -> None:
    digits = sum(char.isdigit() for char in token)
    if digits > MAX_DIGITS:
        raise JsonRefused(f"a number of {digits} digits: at most {MAX_DIGITS} are read")


# Built once: json.loads with hooks builds a decoder, and its scanner, on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float, parse_int=_int
)


# -- the walks, run only when the counts say they must ---------------------------------------------------


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, before the recursive decoder sees it."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        char = text[match.start()]
        if char == '"':
            continue
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    if deepest > MAX_DEPTH:
        raise JsonRefused(f"nested {deepest} deep: at most {MAX_DEPTH} levels of objects and arrays")


def _surrogate_at(value: Any, path: str) -> str | None:
    """The path of the first key or string holding a lone surrogate, or None (depth is bounded here)."""
    if value.__class__ is str:
        return path if _SURROGATE.search(value) else None
    if value.__class__ is dict:
        for key, item in value.items():
            child = f"{path}.{_SURROGATE.sub('?', key)}"
            if _SURROGATE.search(key):
                return child
            found = _surrogate_at(item, child)
            if found is not None:
                return found
    elif value.__class__ is list:
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


# -- reasons ------------------------------------------------------------------------------------------


def _utf8_reason(data: bytes, exc: UnicodeDecodeError) -> str:
    byte = data[exc.start : exc.start + 2]
    if len(byte) == 2 and byte[0] == 0xED and 0xA0 <= byte[1] <= 0xBF:
        return f"not UTF-8 text: a surrogate encoded at byte {exc.start} (lone surrogates are not characters)"
    return f"not UTF-8 text ({exc.reason} at byte {exc.start})"


def _syntax_reason(exc: json.JSONDecodeError) -> str:
    if exc.msg == "Extra data":
        return f"data after the JSON value at line {exc.lineno} column {exc.colno}"
    return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _type_name(value: object) -> str:
    return "null" if value is None else _TYPE_NAMES.get(value.__class__, type(value).__name__)


def _shown(key: str) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."
