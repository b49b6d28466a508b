"""The approval console: mirrored rows are read-only, and admins change the world only through actions.

The actions Approve, Reject and Override go through an intermediate form (reason; target status for
an override) that carries each task's blob SHA, so that a task changed since it was shown is refused
as stale. Every action calls ssot.services; each task's outcome is one admin message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html, format_html_join

import amp
from core.bounded import renderable
from core.errors import ServiceError, SsotUnavailable, StaleSha, WrongState
from core.permissions import APPROVE, OVERRIDE
from ssot import selectors, services
from ssot.models import (
    Ack,
    ApprovalPolicy,
    AuditEntry,
    Message,
    QuarantinedFile,
    SyncState,
    Task,
    TaskApprovals,
)
from ssot.policy import approval_status

RAW_DISPLAY_LIMIT = 100_000
# Wrapped and scrollable, so that long documents stay readable on a phone.
PRE_STYLE = "white-space: pre-wrap; word-break: break-word; max-height: 32em; overflow: auto; margin: 0"
ACTION_FORM_TEMPLATE = "admin/agentos/action_form.html"


def is_staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff)


def _cut(text: str) -> tuple[str, str]:
    """`text` cut at RAW_DISPLAY_LIMIT characters, and what says how much more there is."""
    if len(text) <= RAW_DISPLAY_LIMIT:
        return text, ""
    return text[:RAW_DISPLAY_LIMIT], f"\n… ({len(text) - RAW_DISPLAY_LIMIT} more characters)"


def pretty_json(value: Any) -> str:
    """A JSON value indented in a <pre>, escaped, bounded in depth and size (core/bounded.py)."""
    text, suffix = _cut(json.dumps(renderable(value), indent=2, ensure_ascii=False))
    return format_html('<pre style="{}">{}{}</pre>', PRE_STYLE, text, suffix)


def pretty_bytes(raw: bytes | memoryview | None) -> str:
    """Raw file content as escaped text (invalid UTF-8 replaced), cut at RAW_DISPLAY_LIMIT characters."""
    text, suffix = _cut(bytes(raw or b"").decode("utf-8", errors="replace"))
    return format_html('<pre style="{}">{}{}</pre>', PRE_STYLE, text, suffix)


def outcome_message(
    request: HttpRequest, modeladmin: admin.ModelAdmin, label: str, verb: str, call: Callable[[], str]
) -> None:
    """Run one write for one object; report its outcome as one admin message, never as an error page."""
    try:
        done = call()
    except StaleSha as exc:
        modeladmin.message_user(
            request, f"{label}: not {verb}, it changed since it was shown. {exc.detail}", messages.ERROR
        )
    except WrongState as exc:
        modeladmin.message_user(request, f"{label}: not {verb}. {exc.detail}", messages.WARNING)
    except SsotUnavailable as exc:
        modeladmin.message_user(
            request,
            f"{label}: not {verb}, the SSOT is unavailable; nothing changed. {exc.detail}",
            messages.ERROR,
        )
    except ServiceError as exc:
        modeladmin.message_user(request, f"{label}: not {verb}. {exc.detail}", messages.ERROR)
    else:
        modeladmin.message_user(request, f"{label}: {done}", messages.SUCCESS)


def _approvals_cell(task: Task, user: Any) -> str:
    """What the approve form shows of a task's policy: approvals counted of those needed for this version
    ("1 of 2"), and why this user may not approve it, when that is so (as the task page says)."""
    status = approval_status(task, user)
    counted = f"{status.have} of {status.need}"
    return counted if status.may_approve else f"{counted} · {status.why_not}"


def action_form_response(
    request: HttpRequest,
    modeladmin: admin.ModelAdmin,
    *,
    action: str,
    title: str,
    intro: str,
    form: forms.Form,
    columns: list[str],
    rows: list[dict[str, Any]],
    submit: str,
) -> TemplateResponse:
    """The intermediate page of an action: what is selected, the form, hidden ids (and SHAs)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "opts": modeladmin.model._meta,
        "form": form,
        "columns": columns,
        "rows": rows,
        "action": action,
        "submit": submit,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, ACTION_FORM_TEMPLATE, context)


def fixed_choices(field: str, values: Iterable[str]) -> type[admin.SimpleListFilter]:
    """A list filter on `field` offering `values`, a set AMP fixes (message types, party names), without
    reading the table for them: Django's filter of a column without choices lists the distinct values
    of every row on each page. Same parameter as Django's (`<field>__exact`), so links keep working."""

    class FixedChoices(admin.SimpleListFilter):
        title = field
        parameter_name = f"{field}__exact"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, value) for value in values]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    return FixedChoices


def _aware(value: str) -> str:
    """A date or date-time typed without a time zone, in the current one (as a form reads it); any other
    value as it came, for Django to accept or refuse."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime.combine(day, time())
    except ValueError:  # well formed, but no such date or time
        return value
    if moment is None or timezone.is_aware(moment):
        return value
    return timezone.make_aware(moment).isoformat()


class DateFilter(admin.DateFieldListFilter):
    """Django's date filter (today, the past 7 days, this month, this year). Its own links carry the time
    zone; a date typed into the address without one is read in the current time zone, where Django
    would pass it to the query naive (a RuntimeWarning on every such request)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        self.used_parameters = {
            name: [_aware(value) for value in values] if isinstance(values, list) else values
            for name, values in self.used_parameters.items()
        }
        return super().queryset(request, queryset)


class MirroredAdmin(admin.ModelAdmin):
    """Rows mirrored from the SSOT (or kept by the control plane): staff read them, nobody edits them here.

    A list counts its rows once: with the filters applied (Django counts the whole table a second time).
    """

    list_per_page = 50
    show_full_result_count = False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # PostgreSQL refuses a NUL character in a query: a filter holding one is a bad request.
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest("A query parameter holds a NUL character.")
        return super().changelist_view(request, extra_context)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# -- tasks -------------------------------------------------------------------------------------------


class DecisionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        required=False,
        max_length=services.MAX_REASON,
    )
    status = forms.CharField(
        required=False,
        max_length=services.MAX_STATUS,
        help_text='The status to force; empty means "override".',
    )

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        reason = self.fields["reason"]
        reason.required = kind != "approve"
        reason.help_text = "An optional note to the agent." if kind == "approve" else "Required."
        if kind != "override":
            del self.fields["status"]


DECISIONS = {
    "approve": {"perm": APPROVE, "verb": "approved", "title": "Approve tasks"},
    "reject": {"perm": APPROVE, "verb": "rejected", "title": "Reject tasks"},
    "override": {"perm": OVERRIDE, "verb": "overridden", "title": "Override tasks"},
}
DECISION_ACTIONS = {f"{kind}_tasks": kind for kind in DECISIONS}


@admin.register(Task)
class TaskAdmin(MirroredAdmin):
    list_display = [
        "task_id",
        "title",
        "status",
        "risk_level",
        "branch",
        "reject_count",
        "ci_state",
        "pull_request",
        "last_writer",
        "decision_unverified",
        "updated_at",
    ]
    list_filter = [
        ("status", admin.AllValuesFieldListFilter),
        "decision_unverified",
        "risk_level",
        ("ci_state", admin.AllValuesFieldListFilter),
    ]
    search_fields = ["task_id", "title", "branch", "assignee"]
    fieldsets = [
        (
            None,
            {"fields": ["task_id", "title", "status", "risk_level", "branch", "assignee", "reject_count"]},
        ),
        ("SSOT", {"fields": ["last_writer", "ssot_path", "blob_sha", "updated_at", "document_json"]}),
        (
            "Decision unverified (reached approved/rejected without a decision of the control plane)",
            {"fields": ["decision_unverified", "decision_unverified_in", "decision_unverified_by"]},
        ),
        ("CI and pull request", {"fields": ["ci_state", "ci_status_json", "pull_request"]}),
    ]
    readonly_fields = ["document_json", "ci_status_json", "pull_request", "updated_at"]
    actions = ["approve_tasks", "reject_tasks", "override_tasks"]

    @admin.display(description="SSOT document")
    def document_json(self, task: Task) -> str:
        return pretty_json(task.document)

    @admin.display(description="CI status")
    def ci_status_json(self, task: Task) -> str:
        return pretty_json(task.ci_status)

    @admin.display(description="PR")
    def pull_request(self, task: Task) -> str:
        if not task.pr_number:
            return "-"
        label = f"#{task.pr_number} {task.pr_state}".strip()
        if task.pr_url.startswith(("https://", "http://")):
            return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', task.pr_url, label)
        return label

    # Django hides an action whose permissions the user lacks (get_actions); these say who has them.
    def has_approve_permission(self, request: HttpRequest) -> bool:
        return is_staff(request) and request.user.has_perm(APPROVE)

    def has_override_permission(self, request: HttpRequest) -> bool:
        return is_staff(request) and request.user.has_perm(OVERRIDE)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        kind = DECISION_ACTIONS.get(request.POST.get("action", "")) if request.method == "POST" else None
        if kind is not None and not (is_staff(request) and request.user.has_perm(DECISIONS[kind]["perm"])):
            raise PermissionDenied(f"You may not {kind} tasks.")
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        task = self.get_object(request, object_id)
        if task is not None:
            approval = approval_status(task, request.user)
            offered = {"approve": approval.may_approve, "reject": approval.may_reject}
            allowed = [
                kind
                for kind, spec in DECISIONS.items()
                if request.user.has_perm(spec["perm"]) and offered.get(kind, True)
            ]
            extra_context = {
                **(extra_context or {}),
                "approval": approval,
                "timeline": selectors.task_timeline(task.task_id),
                "audit_lines": selectors.task_audit(task.task_id),
                "decide": [(f"{kind}_tasks", DECISIONS[kind]["title"].split()[0] + "…") for kind in allowed],
                "changelist_url": reverse("admin:ssot_task_changelist"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Approve selected tasks…", permissions=["approve"])
    def approve_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        return self._decide(request, queryset, "approve")

    @admin.action(description="Reject selected tasks…", permissions=["approve"])
    def reject_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        return self._decide(request, queryset, "reject")

    @admin.action(description="Override selected tasks…", permissions=["override"])
    def override_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        return self._decide(request, queryset, "override")

    def _decide(self, request: HttpRequest, queryset: QuerySet[Task], kind: str) -> HttpResponse | None:
        tasks = list(queryset.order_by("task_id"))
        applying = "apply" in request.POST
        form = DecisionForm(request.POST if applying else None, kind=kind)
        if applying and form.is_valid():
            for task in tasks:
                self._decide_one(request, task, kind, form.cleaned_data)
            return None
        if applying and "reason" in form.errors:
            self.message_user(
                request, f"A reason is required to {kind} tasks; nothing was changed.", messages.ERROR
            )
        rows = [
            {
                "pk": task.pk,
                "cells": [task.task_id, task.title, task.status, task.risk_level, task.blob_sha[:10]]
                + ([_approvals_cell(task, request.user)] if kind == "approve" else []),
                "hidden": {f"sha_{task.pk}": request.POST.get(f"sha_{task.pk}") or task.blob_sha},
            }
            for task in tasks
        ]
        return action_form_response(
            request,
            self,
            action=f"{kind}_tasks",
            title=DECISIONS[kind]["title"],
            intro=(
                "Each task is decided on the version shown here: a task that changed in the SSOT since "
                "is refused as stale."
            ),
            form=form,
            columns=["Task", "Title", "Status", "Risk", "Blob SHA"]
            + (["Approvals"] if kind == "approve" else []),
            rows=rows,
            submit=DECISIONS[kind]["title"],
        )

    def _decide_one(self, request: HttpRequest, task: Task, kind: str, data: dict[str, Any]) -> None:
        actor = request.user.get_username()
        expected_sha = request.POST.get(f"sha_{task.pk}") or None
        reason = data.get("reason", "")

        def call() -> str:
            if kind == "approve":
                decision = services.task_approve(
                    task_id=task.task_id, actor=actor, reason=reason, expected_sha=expected_sha
                )
            elif kind == "reject":
                decision = services.task_reject(
                    task_id=task.task_id, actor=actor, reason=reason, expected_sha=expected_sha
                )
            else:
                decision = services.task_override(
                    task_id=task.task_id,
                    actor=actor,
                    reason=reason,
                    status=data.get("status") or None,
                    expected_sha=expected_sha,
                )
            if kind == "approve" and decision.have < decision.need:
                return (
                    f"approval recorded ({decision.have} of {decision.need} for this version); "
                    f"it stays {decision.status} until {decision.need - decision.have} more."
                )
            return f"{DECISIONS[kind]['verb']} ({decision.prev_status} → {decision.status})."

        outcome_message(request, self, task.task_id, DECISIONS[kind]["verb"], call)


# -- the other mirrored rows ---------------------------------------------------------------------------


@admin.register(Message)
class MessageAdmin(MirroredAdmin):
    list_display = [
        "msg_id",
        "type",
        "sender",
        "recipient",
        "task_id",
        "timestamp",
        "ack_state",
        "ack_deadline",
    ]
    # No date hierarchy: it lists the distinct days (months, years) of every message on each page.
    list_filter = [
        fixed_choices("type", amp.MESSAGE_TYPES),
        "ack_state",
        fixed_choices("sender", amp.AGENT_NAMES),
        fixed_choices("recipient", amp.AGENT_NAMES),
        ("timestamp", DateFilter),
    ]
    search_fields = ["msg_id", "task_id"]
    fields = [
        "msg_id",
        "type",
        "sender",
        "recipient",
        "task_id",
        "timestamp",
        "requires_ack",
        "ack_state",
        "ack_deadline",
        "acked_at",
        "ssot_path",
        "blob_sha",
        "envelope_json",
    ]
    readonly_fields = ["envelope_json"]

    @admin.display(description="Envelope")
    def envelope_json(self, message: Message) -> str:
        return pretty_json(message.envelope)


@admin.register(Ack)
class AckAdmin(MirroredAdmin):
    list_display = ["msg_id", "by", "at", "via", "source_msg_id"]
    list_filter = ["via", "by"]
    search_fields = ["msg_id", "source_msg_id"]


@admin.register(AuditEntry)
class AuditEntryAdmin(MirroredAdmin):
    list_display = [
        "timestamp",
        "actor",
        "action",
        "task_id",
        "msg_id",
        "short_detail",
        "in_ssot",
        "rewritten",
    ]
    # No date hierarchy, as for messages. Actions are free text: their filter reads them (from an index).
    list_filter = [
        "action",
        "in_ssot",
        ("rewritten_at", admin.EmptyFieldListFilter),
        ("timestamp", DateFilter),
    ]
    search_fields = ["task_id", "msg_id", "actor", "detail"]
    fields = [
        "timestamp",
        "actor",
        "action",
        "task_id",
        "msg_id",
        "detail",
        "in_ssot",
        "ssot_path",
        "line_no",
        "raw",
        "rewritten_at",
        "rewritten_in",
        "rewritten_by",
        "rewritten_how",
        "rewritten_path",
        "rewritten_line",
    ]

    @admin.display(description="Rewritten")
    def rewritten(self, entry: AuditEntry) -> str:
        if entry.rewritten_at is None:
            return ""
        return f"{entry.rewritten_how} in {entry.rewritten_in[:10]} by {entry.rewritten_by or '?'}"

    @admin.display(description="Detail")
    def short_detail(self, entry: AuditEntry) -> str:
        return entry.detail if len(entry.detail) <= 80 else entry.detail[:79] + "…"


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(MirroredAdmin):
    """The last valid policy/approvals.json (no row: the built-in default); its history: `git log policy/`."""

    list_display = ["ssot_path", "blob_sha", "updated_at"]
    fields = ["ssot_path", "blob_sha", "updated_at", "document_json"]
    readonly_fields = ["document_json"]

    @admin.display(description="Policy in force")
    def document_json(self, policy: ApprovalPolicy) -> str:
        return pretty_json(policy.document)


@admin.register(TaskApprovals)
class TaskApprovalsAdmin(MirroredAdmin):
    """Approvals below the policy's count, per task version (approvals/{task_id}.json)."""

    list_display = ["task_id", "task_blob_sha", "approvers"]
    search_fields = ["task_id"]
    fields = ["task_id", "task_blob_sha", "ssot_path", "blob_sha", "approvals_json"]
    readonly_fields = ["approvals_json"]

    @admin.display(description="Approved by")
    def approvers(self, pending: TaskApprovals) -> str:
        entries = pending.approvals if isinstance(pending.approvals, list) else []
        return ", ".join(str(e.get("by", "")) for e in entries if isinstance(e, dict))

    @admin.display(description="Approvals")
    def approvals_json(self, pending: TaskApprovals) -> str:
        return pretty_json(pending.approvals)


@admin.register(QuarantinedFile)
class QuarantinedFileAdmin(MirroredAdmin):
    list_display = ["path", "kind", "error_count", "first_seen", "last_seen"]
    list_filter = ["kind"]
    search_fields = ["path"]
    fields = ["path", "kind", "blob_sha", "first_seen", "last_seen", "error_list", "raw_text"]
    readonly_fields = ["error_list", "raw_text"]

    @admin.display(description="Errors")
    def error_count(self, quarantined: QuarantinedFile) -> int:
        return len(quarantined.errors or [])

    @admin.display(description="Errors")
    def error_list(self, quarantined: QuarantinedFile) -> str:
        errors = [e for e in quarantined.errors or [] if isinstance(e, dict)]
        items = format_html_join(
            "", "<li><code>{}</code>: {}</li>", ((e.get("path", ""), e.get("message", "")) for e in errors)
        )
        return format_html("<ul>{}</ul>", items)

    @admin.display(description="Content (verbatim)")
    def raw_text(self, quarantined: QuarantinedFile) -> str:
        return pretty_bytes(quarantined.raw)


@admin.register(SyncState)
class SyncStateAdmin(MirroredAdmin):
    list_display = [
        "backend",
        "repository",
        "branch",
        "head",
        "last_sync_at",
        "last_success_at",
        "consecutive_errors",
    ]
    fields = [
        "backend",
        "repository",
        "branch",
        "head",
        "last_sync_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_errors",
        "report_json",
    ]
    readonly_fields = ["report_json"]

    @admin.display(description="Last report")
    def report_json(self, state: SyncState) -> str:
        return pretty_json(state.last_report)


# Credentials (API keys, users' sign-out): their own module.
from ssot import admin_credentials  # noqa: E402, F401
