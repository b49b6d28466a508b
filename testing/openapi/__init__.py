"""GitHub's REST description, trimmed to what the emulator serves (`github.json`, made by `trim.py`), and
a validator of the emulator's answers against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

DESCRIPTION = Path(__file__).with_name("github.json")
# The emulator's route templates (testing/github_emulator.py) -> (method, path in GitHub's description).
ROUTES = {
    "GET /repos/{owner}/{repo}": ("get", "/repos/{owner}/{repo}"),
    "GET /repos/{owner}/{repo}/branches/{branch}": ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    "GET /repos/{owner}/{repo}/git/ref/{ref}": ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    "GET /repos/{owner}/{repo}/git/refs/{ref}": ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    "POST /repos/{owner}/{repo}/git/refs": ("post", "/repos/{owner}/{repo}/git/refs"),
    "PATCH /repos/{owner}/{repo}/git/refs/{ref}": ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    "GET /repos/{owner}/{repo}/git/trees/{sha}": ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    "POST /repos/{owner}/{repo}/git/trees": ("post", "/repos/{owner}/{repo}/git/trees"),
    "GET /repos/{owner}/{repo}/git/blobs/{sha}": ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    "POST /repos/{owner}/{repo}/git/blobs": ("post", "/repos/{owner}/{repo}/git/blobs"),
    "GET /repos/{owner}/{repo}/git/commits/{sha}": ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    "POST /repos/{owner}/{repo}/git/commits": ("post", "/repos/{owner}/{repo}/git/commits"),
    "GET /repos/{owner}/{repo}/commits": ("get", "/repos/{owner}/{repo}/commits"),
    "GET /repos/{owner}/{repo}/contents/{path}": ("get", "/repos/{owner}/{repo}/contents/{path}"),
    "PUT /repos/{owner}/{repo}/contents/{path}": ("put", "/repos/{owner}/{repo}/contents/{path}"),
}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: `nullable: true` becomes "or null"."""
    if isinstance(node, list):
        return [_json_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def description() -> dict[str, Any]:
    with DESCRIPTION.open(encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def _components() -> dict[str, Any]:
    return _json_schema(description()["components"])


def response_schema(route: str, status: int) -> dict[str, Any] | None:
    """The JSON Schema of the answer `status` to the emulator's `route` ("METHOD template"); None when
    GitHub documents that answer without a body. KeyError when it documents no such answer at all."""
    method, path = ROUTES[route]
    response = description()["paths"][path][method]["responses"][str(status)]
    while "$ref" in response:
        response = description()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    content = response.get("content", {}).get("application/json")
    return None if content is None else content["schema"]


def validate(route: str, status: int, payload: Any) -> list[str]:
    """Every way the answer differs from what GitHub's description says of it (empty: it conforms)."""
    if status == 304 and payload is None:
        return []  # a conditional request's answer (REST guide, "conditional requests"): any GET
    try:
        schema = response_schema(route, status)
    except KeyError:
        return [f"{route}: GitHub documents no {status} answer"]
    if schema is None:
        return [] if payload is None else [f"{route} {status}: GitHub documents no body"]
    root = {"allOf": [_json_schema(schema)], "components": _components()}
    validator = jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker())
    return [
        f"{route} {status}: {'/'.join(str(p) for p in error.absolute_path) or '$'}: {error.message[:300]}"
        for error in validator.iter_errors(payload)
    ]
