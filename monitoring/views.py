"""The dashboard pages (SPEC section 9): the live dashboard, rendered by what the events WebSocket sends it,
and the phone-first pages a notification links to — a task (`/dashboard/tasks/{task_id}/`, with what
changed and the decision buttons) and an escalation (`/dashboard/escalations/{id}/`). Server-rendered,
no build step; every decision goes through ssot.services."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

import amp
from core.errors import Forbidden, ReasonRequired, ServiceError, SsotUnavailable, StaleSha, WrongState
from ssot import selectors, services
from ssot.history import render as render_value
from ssot.history import task_changes
from ssot.models import Escalation, Message, Task
from ssot.policy import approval_status

APPROVE = "ssot.approve_task"
SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
CRITERIA_LIMIT = 50


@staff_member_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    """Staff only; the approve and reject buttons appear for users who hold `ssot.approve_task`."""
    return render(
        request,
        "monitoring/dashboard.html",
        {"can_approve": request.user.has_perm(APPROVE), "ws_path": "/ws/events/"},
    )


# -- the task page ---------------------------------------------------------------------------------------


def _task(task_id: str) -> Task:
    task = Task.objects.filter(task_id=task_id).first() if amp.is_safe_id(task_id) else None
    if task is None:
        raise Http404("No such task.")
    return task


def acceptance_criteria(task_id: str) -> tuple[Message | None, list[str]]:
    """The latest task_dispatch of the task and its acceptance criteria, each as text."""
    dispatch = (
        Message.objects.filter(task_id=task_id, type="task_dispatch")
        .order_by("-timestamp", "-msg_id")
        .first()
    )
    criteria = (
        dispatch.payload.get("acceptance_criteria")
        if dispatch and isinstance(dispatch.payload, dict)
        else None
    )
    if not isinstance(criteria, list):
        return dispatch, []
    return dispatch, [render_value(item) for item in criteria[:CRITERIA_LIMIT]]


def _checks(task: Task) -> list[dict[str, str]]:
    checks = task.ci_status if isinstance(task.ci_status, dict) else {}
    rows = []
    for name, entry in sorted(checks.items()):
        entry = entry if isinstance(entry, dict) else {}
        url = str(entry.get("url") or "")
        rows.append(
            {
                "name": str(name),
                "state": str(entry.get("state") or ""),
                "conclusion": str(entry.get("conclusion") or ""),
                "source": str(entry.get("source") or ""),
                "at": str(entry.get("at") or ""),
                "url": url if url.startswith(("https://", "http://")) else "",
            }
        )
    return rows


def _task_context(request: HttpRequest, task: Task, **extra: Any) -> dict[str, Any]:
    notified = request.GET.get("sha", "")
    document = task.document if isinstance(task.document, dict) else {}
    description = document.get("description")
    dispatch, criteria = acceptance_criteria(task.task_id)
    # Whether this user may approve or reject this version, under the approval policy (ssot.policy).
    policy = approval_status(task, request.user)
    return {
        "task": task,
        "description": render_value(description) if description not in (None, "") else "",
        "checks": _checks(task),
        "pr_url": task.pr_url if task.pr_url.startswith(("https://", "http://")) else "",
        "dispatch": dispatch,
        "criteria": criteria,
        "changes": task_changes(task),
        "timeline": selectors.task_timeline(task.task_id),
        "audit": selectors.task_audit(task.task_id),
        "decision": selectors.latest_decision(document),
        "changed_since_notified": bool(SHA.match(notified)) and notified != task.blob_sha,
        "policy": policy,
        "can_approve": policy.may_approve,
        "can_reject": policy.may_reject,
        "can_decide": policy.may_approve or policy.may_reject,
        "ws_path": "/ws/events/",
        "page_url": reverse("monitoring:task", args=[task.task_id]),
        **extra,
    }


@require_GET
@staff_member_required
@ensure_csrf_cookie
def task_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The task as an approver needs it on a phone, with decision buttons bound to the blob SHA shown."""
    task = _task(task_id)
    return render(request, "monitoring/task.html", _task_context(request, task))


@require_POST
@staff_member_required
def task_decide(request: HttpRequest, task_id: str) -> HttpResponse:
    """Approve (optional note) or reject (required reason) the version the page showed (`expected_sha`).

    Refused with the page again: 409 when the task changed (the new version is shown) or is no longer
    awaiting approval, 422 without a reason, 403 without the permission, 503 while the SSOT is down."""
    task = _task(task_id)
    action = request.POST.get("action", "")
    expected = request.POST.get("expected_sha", "")
    reason = request.POST.get("reason", "")
    if action not in ("approve", "reject") or not SHA.match(expected):
        return _refused(request, task, 400, "The form was incomplete: reload the page and try again.")
    if not request.user.has_perm(APPROVE):
        return _refused(request, task, 403, "Deciding needs the permission ssot.approve_task.")
    actor = request.user.get_username()
    try:
        if action == "approve":
            decision = services.task_approve(
                task_id=task.task_id, actor=actor, reason=reason, expected_sha=expected
            )
        else:
            decision = services.task_reject(
                task_id=task.task_id, actor=actor, reason=reason, expected_sha=expected
            )
    except StaleSha:
        fresh = _task(task_id)
        return _refused(
            request,
            fresh,
            409,
            "The task changed since you opened it, so your decision was not recorded. "
            "The new version is shown below: review what changed, then decide again.",
            stale=expected,
        )
    except WrongState as exc:
        return _refused(request, _task(task_id), 409, str(exc))
    except ReasonRequired as exc:
        return _refused(request, task, 422, str(exc), reason_error=True)
    except Forbidden as exc:
        return _refused(request, task, 403, str(exc))
    except SsotUnavailable as exc:
        return _refused(request, task, 503, f"The SSOT cannot take the decision now: {exc}")
    except ServiceError as exc:
        return _refused(request, task, 400, str(exc))
    if action == "approve" and decision.status == Task.AWAITING_APPROVAL:
        messages.success(
            request,
            f"Your approval of {task.task_id} is recorded: {decision.have} of {decision.need}; "
            "it waits for more approvers.",
        )
    else:
        verb = "Approved" if action == "approve" else "Rejected"
        messages.success(request, f"{verb} {task.task_id} (now {decision.status}).")
    url = reverse("monitoring:task", args=[task.task_id]) + "?" + urlencode({"sha": decision.blob_sha})
    return HttpResponseRedirect(url, status=303)


def _refused(request: HttpRequest, task: Task, status: int, problem: str, **extra: Any) -> HttpResponse:
    context = _task_context(request, task, problem=problem, **extra)
    return render(request, "monitoring/task.html", context, status=status)


# -- the escalation page ------------------------------------------------------------------------------------


def _escalation(ref: str) -> Escalation:
    escalation = None
    if ref.isascii() and ref.isdigit():
        escalation = Escalation.objects.filter(pk=int(ref)).first()
    if escalation is None and amp.is_safe_id(ref):
        escalation = Escalation.objects.filter(msg_id=ref).first()
    if escalation is None:
        raise Http404("No such escalation.")
    return escalation


def _escalation_context(request: HttpRequest, escalation: Escalation, **extra: Any) -> dict[str, Any]:
    message = Message.objects.filter(msg_id=escalation.msg_id).first()
    payload = message.payload if message and isinstance(message.payload, dict) else {}
    actions = payload.get("suggested_actions")
    return {
        "escalation": escalation,
        "suggested": [render_value(a) for a in actions[:20]] if isinstance(actions, list) else [],
        "task_exists": Task.objects.filter(task_id=escalation.task_id).exists(),
        "can_act": request.user.has_perm(APPROVE),
        **extra,
    }


@require_GET
@staff_member_required
@ensure_csrf_cookie
def escalation_page(request: HttpRequest, ref: str) -> HttpResponse:
    """An escalation (by id or msg_id), with Acknowledge and Resolve."""
    escalation = _escalation(ref)
    return render(request, "monitoring/escalation.html", _escalation_context(request, escalation))


@require_POST
@staff_member_required
def escalation_act(request: HttpRequest, ref: str) -> HttpResponse:
    escalation = _escalation(ref)
    action = request.POST.get("action", "")
    actor = request.user.get_username()

    def refused(status: int, problem: str) -> HttpResponse:
        context = _escalation_context(request, _escalation(ref), problem=problem)
        return render(request, "monitoring/escalation.html", context, status=status)

    if action not in ("acknowledge", "resolve"):
        return refused(400, "The form was incomplete: reload the page and try again.")
    if not request.user.has_perm(APPROVE):
        return refused(403, "Handling escalations needs the permission ssot.approve_task.")
    try:
        if action == "acknowledge":
            services.escalation_acknowledge(escalation_id=escalation.pk, actor=actor)
        else:
            services.escalation_resolve(
                escalation_id=escalation.pk, actor=actor, reason=request.POST.get("reason", "")
            )
    except WrongState as exc:
        return refused(409, str(exc))
    except ReasonRequired as exc:
        return refused(422, str(exc))
    except SsotUnavailable as exc:
        return refused(503, f"The SSOT cannot take it now: {exc}")
    except ServiceError as exc:
        return refused(400, str(exc))
    messages.success(request, "Acknowledged." if action == "acknowledge" else "Resolved.")
    return HttpResponseRedirect(reverse("monitoring:escalation", args=[escalation.msg_id]), status=303)
