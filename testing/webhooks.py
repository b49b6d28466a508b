"""Signed webhook deliveries for tests and benchmarks: GitHub-shaped pushes and payloads from the docs."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from webhooks.verify import SIGNATURE_HEADER, github_signature

PAYLOADS = Path(__file__).resolve().parent / "webhook_payloads"


def payload(name: str) -> dict[str, Any]:
    """A realistic payload written from GitHub's or Apple's documentation (`webhook_payloads/{name}.json`)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def push_payload(*, repository: str, before: str, after: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    """A GitHub `push` payload for `repository` moving `ref` from `before` to `after`."""
    data = copy.deepcopy(payload("push"))
    data.update(ref=ref, before=before, after=after)
    data["repository"].update(full_name=repository, name=repository.rsplit("/", 1)[-1])
    return data


def github_headers(body: bytes, *, event: str, secret: str, guid: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery of `body`, signed with `secret`."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/7a3c4f1",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "30",
        SIGNATURE_HEADER: github_signature(body, secret),
    }


class Poster:
    """Sends deliveries through Django's test client, from one source address."""

    def __init__(self, client: Any, *, secret: str, token: str, address: str) -> None:
        self.client, self.secret, self.token, self.address = client, secret, token, address

    def github(
        self,
        event: str,
        data: dict[str, Any] | bytes,
        *,
        guid: str | None = None,
        secret: str | None = None,
        headers: dict[str, str | None] | None = None,
        path: str = "/webhooks/github",
    ) -> Any:
        """POST a delivery signed like GitHub's; `headers` overrides some (None drops one)."""
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        sent: dict[str, str | None] = dict(
            github_headers(body, event=event, secret=secret or self.secret, guid=guid)
        )
        sent.update(headers or {})
        return self.client.post(
            path,
            data=body,
            content_type=sent.pop("Content-Type") or "application/json",
            headers={name: value for name, value in sent.items() if value is not None},
            REMOTE_ADDR=self.address,
        )

    def xcode(
        self, data: dict[str, Any] | bytes, *, token: str | None = None, in_url: bool = False, path: str = ""
    ) -> Any:
        """POST an Xcode Cloud delivery with the token in X-Webhook-Token, or in the URL."""
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        token = self.token if token is None else token
        headers = {} if in_url or not token else {"X-Webhook-Token": token}
        url = path or (f"/webhooks/xcode/{token}" if in_url else "/webhooks/xcode")
        return self.client.post(
            url, data=body, content_type="application/json", headers=headers, REMOTE_ADDR=self.address
        )
