"""Hypothesis strategies for what an agent or a peer can send: JSON text with every refused kind mixed in.

Values are built as JSON *text*, not Python values, so that what Python's encoder would never write
(NaN, duplicate keys, lone surrogate escapes, 5,000-digit numbers, deep nesting) can be in it.
"""

from __future__ import annotations

import json
import os

from hypothesis import settings
from hypothesis import strategies as st


def examples(count: int) -> int:
    """`count` examples under the CI profile; the loaded profile's own number when exploring
    (HYPOTHESIS_PROFILE=explore), since a test's own settings would override the profile's."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return count
    return settings().max_examples


# Each kind the strict reader refuses, as a JSON value's text (or a key's).
REFUSED_VALUES = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e999",
    "1" * 101,
    "-" + "9" * 150,
    "0." + "5" * 120,
    '"\\ud800"',
    '"tail \\udfff"',
    '"\\uDBFF\\u0041"',
    "[" * 70 + "]" * 70,
    '{"a": ' * 65 + "1" + "}" * 65,
)
# Valid JSON that strains a column or the database: refused later (a conversion) or stored.
STRAINING_VALUES = (
    "18446744073709551616",
    "9223372036854775808",
    "9223372036854775807",
    "-9223372036854775809",
    "1e308",
    "5e-324",
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud83d\\ude00"',
    '"9999-12-31T23:59:59-05:00"',
    '"0001-01-01T00:00:00+01:00"',
    '"2026-11-01T09:00:00Z"',
    "[" * 63 + "]" * 63,
    "-0",
    "1E+2",
)
KEYS = ("task_id", "status", "reject_count", "msg_id", "by", "at", "agent", "payload", "a", "a")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"


keys = st.one_of(
    st.sampled_from(KEYS).map(json.dumps),
    st.text(max_size=8).map(json.dumps),
    st.sampled_from(('"\\ud800"', '"\\udc00k"')),
)
leaves = st.one_of(
    scalars.map(lambda value: json.dumps(value, ensure_ascii=False)),
    scalars.map(json.dumps),
    st.sampled_from(REFUSED_VALUES),
    st.sampled_from(STRAINING_VALUES),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(keys, children), max_size=4).map(_object),
    ),
    max_leaves=10,
)


def documents(fields: dict[str, str]) -> st.SearchStrategy[str]:
    """An object with these members (JSON texts), some replaced or joined by arbitrary values."""
    names = sorted(fields)
    return st.builds(
        lambda replaced, extra: _object(
            [(json.dumps(name), replaced.get(name, fields[name])) for name in names] + extra
        ),
        st.dictionaries(st.sampled_from(names), json_values, max_size=2),
        st.lists(st.tuples(keys, json_values), max_size=2),
    )


def encodings(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """The bytes a file holds: UTF-8 mostly, or with a BOM, as UTF-16, with trailing data, cut short."""

    def utf8(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")

    return st.one_of(
        texts.map(utf8),
        texts.map(utf8),
        texts.map(lambda text: b"\xef\xbb\xbf" + utf8(text)),
        texts.map(lambda text: text.encode("utf-16", "surrogatepass")),
        texts.map(lambda text: utf8(text) + b" {}"),
        texts.map(lambda text: utf8(text)[: max(0, len(utf8(text)) - 3)]),
        st.binary(max_size=64),
        st.just(b""),
    )
