"""Request bodies: strict JSON only, bounded in size; a body that is not understood is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

import amp
from core.errors import Invalid


class BadRequest(Invalid):
    """A body of the wrong shape (a field of the wrong type, a malformed SHA): 400 with every error."""

    status = 400
    code = "bad_request"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class StrictJSONParser(JSONParser):
    """A body read by the one strict reader (`amp.loads`), or a 400 with the reason. A top level that is
    not an object is left to the endpoint, which names what it expected (a 422 for a message).

    JSON is UTF-8 (RFC 8259): a body declared in another charset is refused rather than guessed at.
    DRF reads the body through Django, which refuses one over DATA_UPLOAD_MAX_MEMORY_SIZE (a 413 here).
    """

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = str((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii", "ascii"):
            raise ParseError(f"the body must be UTF-8 JSON, not {encoding[:40]}")
        try:
            return amp.loads(stream.read(), any_value=True)
        except amp.JsonRefused as exc:
            raise ParseError(exc.reason[:300]) from None


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
