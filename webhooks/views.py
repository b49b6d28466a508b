"""POST /webhooks/github and /webhooks/xcode[/{token}] (SPEC section 8): verify, store, answer, queue.

A view does the least it can: check the size before reading, verify the sender over the raw body,
store the delivery (its GUID is unique: a redelivery is a 200 no-op, concurrent ones included), and
answer. Processing happens after the response (`webhooks.processing`). Requests that fail
verification are rate limited per source address; a verified one never is.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import client_address, unverified_limiter
from webhooks import payloads
from webhooks.processing import delivery_refuse, delivery_store
from webhooks.verify import SIGNATURE_HEADER, github_signature_valid, token_valid

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Webhook-Token"  # noqa: S105 (a header name, not a secret)
KEPT_HEADERS = ("User-Agent", "Content-Type")


class TooLarge(Exception):
    pass


def _answer(status: int, **body: Any) -> Response:
    response = Response(body, status=status)
    # Django logs every 4xx with its path, and the Xcode path may hold the token: our own log line
    # (without the path) replaces it.
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's private mark
    return response


def _read_body(request: Request) -> bytes:
    """The raw body, refused (TooLarge) before reading it if its declared length is over the limit."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise TooLarge
    # Read from the stream, bounded: a chunked body declares no length, and `request.body` would apply
    # Django's form-sized DATA_UPLOAD_MAX_MEMORY_SIZE instead of the webhook limit.
    body = request._request.read(limit + 1)
    if len(body) > limit:
        raise TooLarge
    return body


class WebhookView(APIView):
    """What both endpoints share: no session or JWT, no CSRF (APIView exempts it), no API throttle."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    source = ""

    def http_method_not_allowed(self, request: HttpRequest | Request, *args: Any, **kwargs: Any) -> Response:
        return _answer(405, detail=f"Method {request.method} not allowed; webhooks are POSTed.")

    def unverified(self, address: str, status: int, detail: str) -> Response:
        """Refuse a request that failed verification; past the rate for its address, with a 429."""
        wait = unverified_limiter.failed(address)
        log.info("%s webhook refused (%s) from %s: %s", self.source, status, address, detail)
        if wait is not None:
            return self.too_many(wait)
        return _answer(status, detail=detail)

    def too_many(self, wait: int) -> Response:
        response = _answer(429, detail=f"Too many unverified webhook requests; retry in {wait} s.")
        response["Retry-After"] = str(wait)
        return response

    def refuse(self, *, guid: str, event: str, headers: dict[str, str], body: bytes, reason: str) -> Response:
        """A verified delivery whose body is refused: stored as failed with the reason, answered 400."""
        delivery_refuse(source=self.source, guid=guid, event=event, headers=headers, body=body, reason=reason)
        return _answer(400, detail=f"Malformed delivery: {reason}.")

    def store(self, *, guid: str, event: str, action: str, headers: dict[str, str], body: bytes) -> Response:
        """Store a verified delivery and queue its processing; a known GUID is a no-op."""
        if (
            delivery_store(
                source=self.source, guid=guid, event=event, action=action, headers=headers, body=body
            )
            is None
        ):
            return Response({"ok": True, "duplicate": True, "guid": guid}, status=200)
        return Response({"ok": True, "guid": guid, "event": event}, status=202)


class GitHubWebhookView(WebhookView):
    source = "github"

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        address = client_address(request)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature and (wait := unverified_limiter.blocked(address)) is not None:
            return self.too_many(wait)
        if not signature:
            return self.unverified(address, 401, f"The {SIGNATURE_HEADER} header is missing.")
        try:
            body = _read_body(request)
        except TooLarge:
            limit = settings.WEBHOOK_MAX_BODY_BYTES
            return self.unverified(address, 413, f"The body is over the limit of {limit} bytes.")
        if not github_signature_valid(body, signature, settings.GITHUB_WEBHOOK_SECRETS):
            return self.unverified(
                address, 401, f"The {SIGNATURE_HEADER} signature does not match the body under any secret."
            )
        event = request.headers.get("X-GitHub-Event", "").strip()
        guid = request.headers.get("X-GitHub-Delivery", "").strip()
        if not event or not guid:
            missing = " and ".join(
                name for name, value in (("X-GitHub-Event", event), ("X-GitHub-Delivery", guid)) if not value
            )
            return _answer(400, detail=f"The {missing} header is missing.")
        if len(guid) > 128 or len(event) > 64:
            return _answer(400, detail="X-GitHub-Delivery or X-GitHub-Event is too long.")
        content_type = request.headers.get("Content-Type", "application/json")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower().startswith("x-github-") or name in KEPT_HEADERS
        }
        try:
            payload = payloads.decode(body, content_type)
        except payloads.PayloadError as exc:
            return self.refuse(guid=guid, event=event, headers=headers, body=body, reason=str(exc))
        response = self.store(
            guid=guid, event=event, action=payloads.text(payload, "action"), headers=headers, body=body
        )
        if event == "ping" and response.status_code == 202:
            response.status_code = 200
            response.data["zen"] = payloads.text(payload, "zen")
        return response


class XcodeWebhookView(WebhookView):
    source = "xcode"

    @extend_schema(exclude=True)
    def post(self, request: Request, token: str | None = None) -> Response:
        address = client_address(request)
        given = request.headers.get(TOKEN_HEADER) or token
        if not given and (wait := unverified_limiter.blocked(address)) is not None:
            return self.too_many(wait)
        # The token does not depend on the body: check it before reading anything.
        if not token_valid(given, settings.XCODE_WEBHOOK_SECRET):
            detail = "The webhook token is missing." if not given else "The webhook token is wrong."
            return self.unverified(address, 401, detail)
        try:
            body = _read_body(request)
        except TooLarge:
            return _answer(
                413, detail=f"The body is over the limit of {settings.WEBHOOK_MAX_BODY_BYTES} bytes."
            )
        headers = {name: value for name, value in request.headers.items() if name in KEPT_HEADERS}
        # Apple echoes the webhook's URL in the payload, and the token may be part of it: never store it.
        stored = body.replace(settings.XCODE_WEBHOOK_SECRET.encode(), b"[token]")
        try:
            payload = payloads.decode(body, "application/json")
        except payloads.PayloadError as exc:
            guid = payloads.xcode_delivery_id({}, stored)
            return self.refuse(guid=guid, event="unknown", headers=headers, body=stored, reason=str(exc))
        body = stored
        return self.store(
            guid=payloads.xcode_delivery_id(payload, body),
            event=payloads.xcode_event(payload) or "unknown",
            action=payloads.text(payload, "ciBuildRun", "attributes", "executionProgress"),
            headers=headers,
            body=body,
        )
