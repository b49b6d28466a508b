"""Who sent a delivery: GitHub's HMAC-SHA256 signature and Xcode Cloud's shared token, in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def github_signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_signature_valid(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True if `header` is the signature of the raw `body` under any one of `secrets` (rotation).

    Every secret is tried, whatever matched first, so the time taken does not tell which one did.
    """
    match = _SIGNATURE.fullmatch((header or "").strip())
    if match is None:
        return False
    given = match.group(1).lower().encode()
    valid = False
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        valid |= hmac.compare_digest(expected, given)
    return valid


def token_valid(given: str | None, expected: str) -> bool:
    """A shared token compared in constant time; an unset expected token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
