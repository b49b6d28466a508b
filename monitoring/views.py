"""The live dashboard (SPEC section 9): a page that renders what the events WebSocket sends it."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@staff_member_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    """Staff only; the approve and reject buttons appear for users who hold `ssot.approve_task`."""
    return render(
        request,
        "monitoring/dashboard.html",
        {"can_approve": request.user.has_perm("ssot.approve_task"), "ws_path": "/ws/events/"},
    )
