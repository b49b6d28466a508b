"""Request bodies: strict JSON only, bounded in size; a body that is not understood is a 400, never a 500."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from ssot.errors import Invalid


class BadRequest(Invalid):
    """A body of the wrong shape (a field of the wrong type, a malformed SHA): 400 with every error."""

    status = 400
    code = "bad_request"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"duplicate keys {duplicates[:5]}")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class StrictJSONParser(JSONParser):
    """JSON without duplicate keys, NaN or Infinity (parsers disagree on what they mean).

    DRF reads the body through Django, which refuses one over DATA_UPLOAD_MAX_MEMORY_SIZE (a 413 here).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(stream.read(), encoding)
            return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except (ValueError, RecursionError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from None


def serializer_errors(errors: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested serializer errors as a flat list of {"path", "message"}."""
    flat: list[dict[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = prefix if key == "non_field_errors" else f"{prefix}.{key}" if prefix else str(key)
            flat.extend(serializer_errors(value, path))
    elif isinstance(errors, list):
        for item in errors:
            flat.extend(serializer_errors(item, prefix))
    else:
        flat.append({"path": prefix or "$", "message": str(errors)})
    return flat


def nul_paths(value: Any, path: str = "$") -> list[str]:
    """Where a JSON value holds a NUL character (in a key or a string), which the database cannot store."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = str(key) if path == "$" else f"{path}.{key}"
            found.extend([child] if "\x00" in str(key) else nul_paths(item, child))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(nul_paths(item, f"{path}[{index}]"))
    return found
