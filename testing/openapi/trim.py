"""Trim GitHub's OpenAPI description to the operations the GitHub store and its emulator use.

    npm pack @octokit/openapi && tar xzf octokit-openapi-*.tgz
    python -m testing.openapi.trim package/generated/api.github.com.json > testing/openapi/github.json

Keeps, for each operation in OPERATIONS, its responses (examples dropped) and every component they
reference, transitively; nothing else. The emulator's answers are validated against the result
(ssot/tests/test_emulator_openapi.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any

# (method, path in GitHub's description): what the emulator serves (testing/github_emulator.py ROUTES).
OPERATIONS = [
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("post", "/repos/{owner}/{repo}/git/refs"),
    ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    ("post", "/repos/{owner}/{repo}/git/trees"),
    ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    ("post", "/repos/{owner}/{repo}/git/blobs"),
    ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    ("post", "/repos/{owner}/{repo}/git/commits"),
    ("get", "/repos/{owner}/{repo}/commits"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("put", "/repos/{owner}/{repo}/contents/{path}"),
]


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for key, value in node.items():
            if key != "examples":
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _strip_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_examples(v) for k, v in node.items() if k not in ("examples", "example")}
    if isinstance(node, list):
        return [_strip_examples(v) for v in node]
    return node


def trim(description: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path in OPERATIONS:
        operation = description["paths"][path][method]
        kept = {key: operation[key] for key in ("operationId", "summary", "responses") if key in operation}
        paths.setdefault(path, {})[method] = _strip_examples(kept)
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in done:
            continue
        done.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = _strip_examples(description["components"][kind][name])
        components.setdefault(kind, {})[name] = node
        _refs(node, pending)
    return {
        "openapi": description["openapi"],
        "info": {
            "title": description["info"]["title"],
            "version": description["info"]["version"],
            "description": "Trimmed by testing/openapi/trim.py from @octokit/openapi's "
            "generated/api.github.com.json: only the operations the emulator serves.",
        },
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        json.dump(trim(json.load(handle)), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
