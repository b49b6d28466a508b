"""Logins refused for too many failures (django-axes): the answer, and the audit line of each lockout."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from axes.helpers import get_cache, get_client_ip_address, get_cool_off
from axes.signals import user_locked_out
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from ssot.audit import audit_queue


def lockout_message(request: HttpRequest) -> tuple[str, int]:
    cool_off = get_cool_off(request)
    seconds = max(1, math.ceil(cool_off.total_seconds())) if cool_off else 0
    minutes = max(1, math.ceil(seconds / 60))
    return (
        f"Too many failed logins for this username or from this address; try again in {minutes} minute"
        f"{'s' if minutes != 1 else ''}.",
        seconds,
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 with Retry-After: JSON under /api/, a plain page elsewhere (the admin's login)."""
    message, seconds = lockout_message(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def lockout_audit_key(username: str | None, address: str | None) -> str:
    """The cache key (beside django-axes' counters) that says a lockout was audited already."""
    return "agentos-lockout-" + hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()


@receiver(user_locked_out)
def _audit_lockout(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    # One line per lockout: the attempts that keep coming while it lasts are refused without a line each.
    cool_off = get_cool_off(request)
    timeout = int(cool_off.total_seconds()) if cool_off else None
    if not get_cache().add(lockout_audit_key(username, ip_address), 1, timeout=timeout):
        return
    audit_queue(
        actor="system",
        action="login_locked_out",
        detail=f"logins refused for {username or '?'} from {ip_address or get_client_ip_address(request)}",
        extra={"username": (username or "")[:150], "address": ip_address or ""},
    )
