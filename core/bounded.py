"""JSON values read back from the database, made safe to render whatever an agent once wrote.

The strict reader (`amp`) keeps new documents shallow and clean, but rows stored before it may hold a
document nested hundreds deep (too deep for Python's decoder and encoder), a lone surrogate (not
encodable as UTF-8), or a number past a float's range (not JSON). Two bounds make every such row readable:

- `load_bounded` decodes a stored text that `json.loads` cannot (too deep, or an integer past Python's
  4,300-digit conversion limit), replacing what is nested deeper than MAX_RENDER_DEPTH by DEEP_MARKER;
- `renderable` is the value as an answer shows it: containers deeper than MAX_RENDER_DEPTH replaced by
  DEEP_MARKER, lone surrogates by U+FFFD, non-finite floats by their name.

What the strict reader accepts (at most 64 levels, finite numbers, valid Unicode) passes unchanged.
The rows themselves are never rewritten: the SSOT file stays the record.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

# The strict reader's own bound: a document it accepts is shown whole.
MAX_RENDER_DEPTH = 64
DEEP_MARKER = f"… (nested deeper than {MAX_RENDER_DEPTH} levels: see the SSOT file)"

_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string (escapes included) or a bracket: brackets inside strings are skipped with their string.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_INT_DIGITS = sys.get_int_max_str_digits() or 4300


def _cut_deep(text: str, limit: int) -> str:
    """`text` with every container opened below `limit` levels replaced by DEEP_MARKER (as a string)."""
    pieces: list[str] = []
    marker = json.dumps(DEEP_MARKER)
    depth, last, cut_from = 0, 0, -1
    for match in _TOKEN.finditer(text):
        lexeme = match.group()
        if lexeme in "[{":
            depth += 1
            if depth == limit + 1:
                cut_from = match.start()
        elif lexeme in "]}":
            if depth == limit + 1 and cut_from >= 0:
                pieces += [text[last:cut_from], marker]
                last, cut_from = match.end(), -1
            depth -= 1
    pieces.append(text[last:])
    return "".join(pieces)


def _int_or_digits(literal: str) -> int | str:
    return int(literal) if len(literal.lstrip("-")) <= _INT_DIGITS else literal


def load_bounded(text: str) -> Any:
    """Decode stored JSON text that Python's decoder refused, with its depth cut and long integers as text."""
    return json.loads(_cut_deep(text, MAX_RENDER_DEPTH), parse_int=_int_or_digits)


def _text(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def renderable(value: Any, depth: int = 0) -> Any:
    """`value` as strict JSON can carry it: bounded depth, valid Unicode, finite numbers."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        if depth >= MAX_RENDER_DEPTH:
            return DEEP_MARKER
        return {_text(str(key)): renderable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if depth >= MAX_RENDER_DEPTH:
            return DEEP_MARKER
        return [renderable(item, depth + 1) for item in value]
    return value
