"""The one strict JSON reader: each refused kind with its own reason, the limits exactly, and no surprise."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amp import strictjson
from amp.strictjson import JsonRefused, loads
from testing.strategies import documents, encodings, examples, json_values

REFUSED = {
    "invalid UTF-8": (b'{"a": "\xff"}', "not UTF-8 text (invalid start byte at byte 7)"),
    "encoded surrogate": (
        b'{"a": "\xed\xa0\x80"}',
        "not UTF-8 text: a surrogate encoded at byte 7 (lone surrogates are not characters)",
    ),
    "UTF-8 byte order mark": (b'\xef\xbb\xbf{"a": 1}', "a byte order mark (BOM) at the start"),
    "UTF-16": ('{"a": 1}'.encode("utf-16"), "UTF-16 text (a byte order mark at the start)"),
    "UTF-16 without a BOM": ('{"a": 1}'.encode("utf-16-le"), "UTF-16 or UTF-32 text (a NUL byte"),
    "UTF-32": ('{"a": 1}'.encode("utf-32"), "UTF-32 text (a byte order mark at the start)"),
    "escaped lone surrogate": (b'{"a": ["x", "\\ud800"]}', "a lone surrogate (an unpaired"),
    "escaped lone surrogate in a key": (b'{"b": {"\\uDC00": 1}}', "at $.b.?"),
    "a low surrogate first": (b'{"a": "\\udc00\\ud800"}', "a lone surrogate"),
    "NaN": (b'{"a": NaN}', "NaN is not a JSON number (JSON has no NaN or Infinity)"),
    "Infinity": (b'{"a": Infinity}', "Infinity is not a JSON number"),
    "-Infinity": (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
    "float overflow": (b'{"a": 1e400}', "the number 1e400 is too large for a 64-bit float"),
    "negative float overflow": (b'{"a": -2e308}', "the number -2e308 is too large for a 64-bit float"),
    "long integer": (b'{"a": ' + b"1" * 101 + b"}", "a number of 101 digits: at most 100 are read"),
    "long float": (b'{"a": 0.' + b"1" * 100 + b"}", "a number of 101 digits: at most 100 are read"),
    "deep nesting": (b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}", "nested 65 deep: at most 64 levels"),
    "very deep nesting": (b"[" * 200_000, "nested 200000 deep"),
    "duplicate key": (b'{"a": 1, "b": {"c": 1, "c": 2}}', "duplicate key 'c' in one object"),
    "trailing data": (b'{"a": 1}\n{"b": 2}\n', "data after the JSON value at line 2 column 1"),
    "empty file": (b"", "empty: a JSON object is expected"),
    "only whitespace": (b" \r\n\t", "empty: a JSON object is expected"),
    "an array at the top": (b"[1]", "must be a JSON object, not an array"),
    "a string at the top": (b'"x"', "must be a JSON object, not a string"),
    "null at the top": (b"null", "must be a JSON object, not null"),
    "not JSON": (b"{'a': 1}", "not valid JSON: Expecting property name enclosed in double quotes"),
    "a control character in a string": (b'{"a": "\x01"}', "not valid JSON: Invalid control character"),
}


@pytest.mark.parametrize("kind", REFUSED)
def test_each_refused_kind_has_its_reason(kind: str) -> None:
    data, reason = REFUSED[kind]
    with pytest.raises(JsonRefused) as refused:
        loads(data)
    assert reason in refused.value.reason
    assert str(refused.value) == refused.value.reason


def test_text_is_read_as_strictly_as_bytes() -> None:
    with pytest.raises(JsonRefused, match="a lone surrogate U\\+D800"):
        loads('{"a": "\ud800"}')
    with pytest.raises(JsonRefused, match="byte order mark"):
        loads('\ufeff{"a": 1}')
    assert loads('{"a": "ü"}') == {"a": "ü"}


def test_the_limits_themselves_are_accepted() -> None:
    deepest = loads(b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}")["a"]  # 64 levels with the top
    assert json.dumps(deepest, separators=(",", ":")) == "[" * 63 + "]" * 63
    hundred = "9" * 100
    assert loads(f'{{"a": {hundred}, "b": -{hundred}}}'.encode()) == {"a": int(hundred), "b": -int(hundred)}
    assert loads(b'{"a": 1.7976931348623157e308, "b": 5e-324, "c": 1e-400}')["a"] == 1.7976931348623157e308
    assert loads(b'{"pair": "\\ud83d\\ude00", "nul": "\\u0000"}') == {"pair": "\U0001f600", "nul": "\x00"}
    assert loads(b'{"a": "[[[[{{{{"}') == {"a": "[[[[{{{{"}
    assert loads(b'\n {"a": 1} \n') == {"a": 1}


def test_a_bracket_count_past_the_limit_is_not_depth() -> None:
    wide = {"items": [[{"n": n}] for n in range(200)]}
    assert loads(json.dumps(wide).encode()) == wide


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"a": "[" * 500, "b": ['\\"[[' * 100]})
    assert loads(text.encode())["a"] == "[" * 500


def test_any_value_lets_another_top_level_through_but_nothing_else() -> None:
    assert loads(b"[1, 2]", any_value=True) == [1, 2]
    assert loads(b'"x"', any_value=True) == "x"
    with pytest.raises(JsonRefused, match="lone surrogate"):
        loads(b'"\\ud800"', any_value=True)


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        (0, True),
        (2**63 - 1, True),
        (-(2**63), True),
        (2**63, False),
        (-(2**63) - 1, False),
        (True, False),
        (1.0, False),
        ("1", False),
        (None, False),
    ],
)
def test_fits_int64(value: Any, fits: bool) -> None:
    assert strictjson.fits_int64(value) is fits


def _storable(value: Any, depth: int = 1) -> None:
    """What any database and any renderer can take: finite floats, short numbers, no surrogate, bounded."""
    assert depth <= strictjson.MAX_DEPTH
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert len(str(abs(value))) <= strictjson.MAX_DIGITS
    elif isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1)


@settings(max_examples=examples(300))
@given(encodings(st.one_of(json_values, documents({"task_id": '"T-1"', "status": '"new"'}))))
def test_any_bytes_are_a_storable_object_or_refused_with_a_reason(data: bytes) -> None:
    try:
        value = loads(data)
    except JsonRefused as refused:
        assert refused.reason
        return
    assert isinstance(value, dict)
    _storable(value)
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


json_like = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**99), max_value=10**99),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=examples(200))
@given(st.dictionaries(st.text(), json_like, max_size=6), st.booleans())
def test_what_pythons_encoder_writes_is_read_back_the_same(value: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=False)
    assert loads(text.encode()) == value
