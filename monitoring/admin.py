"""Agents, escalations (acknowledge; resolve with a reason, through ssot.services) and notifications."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

import amp
from core.permissions import APPROVE
from monitoring.models import Notification
from ssot import services
from ssot.admin import (
    DateFilter,
    MirroredAdmin,
    action_form_response,
    fixed_choices,
    is_staff,
    outcome_message,
    pretty_json,
)
from ssot.models import Agent, Escalation

ESCALATION_ACTIONS = ("acknowledge_escalations", "resolve_escalations")


@admin.register(Agent)
class AgentAdmin(MirroredAdmin):
    list_display = ["name", "status", "status_since", "last_seen", "last_seen_via", "timeout_msg_id"]
    list_filter = ["status"]
    search_fields = ["name"]


class ResolveForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=services.MAX_REASON,
        help_text="Required: how it was resolved.",
    )


@admin.register(Escalation)
class EscalationAdmin(MirroredAdmin):
    list_display = [
        "created_at",
        "severity",
        "escalation_type",
        "task_id",
        "subject",
        "status",
        "short_description",
    ]
    # A date filter, not a date hierarchy (docs/design.md, "Lists that only grow"): an agent that stops
    # acknowledging makes escalations by the minute.
    list_filter = [
        "status",
        fixed_choices("severity", amp.SEVERITIES),
        "escalation_type",
        ("created_at", DateFilter),
    ]
    search_fields = ["msg_id", "task_id", "subject", "description"]
    fields = [
        "msg_id",
        "task_id",
        "escalation_type",
        "severity",
        "triggered_by",
        "subject",
        "description",
        "status",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "resolution",
        "created_at",
        "payload_json",
    ]
    readonly_fields = ["payload_json"]
    actions = ["acknowledge_escalations", "resolve_escalations"]

    @admin.display(description="Description")
    def short_description(self, escalation: Escalation) -> str:
        text = escalation.description
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="Payload")
    def payload_json(self, escalation: Escalation) -> str:
        return pretty_json(escalation.message.payload)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return is_staff(request) and request.user.has_perm(APPROVE)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        posted = request.POST.get("action", "") if request.method == "POST" else ""
        if posted in ESCALATION_ACTIONS and not self.has_approve_permission(request):
            raise PermissionDenied("Handling escalations needs the permission ssot.approve_task.")
        return super().changelist_view(request, extra_context)

    @admin.action(description="Acknowledge selected escalations", permissions=["approve"])
    def acknowledge_escalations(self, request: HttpRequest, queryset: QuerySet[Escalation]) -> None:
        actor = request.user.get_username()
        for escalation in queryset.order_by("created_at"):

            def call(escalation: Escalation = escalation) -> str:
                services.escalation_acknowledge(escalation_id=escalation.pk, actor=actor)
                return "acknowledged."

            outcome_message(request, self, escalation.msg_id, "acknowledged", call)

    @admin.action(description="Resolve selected escalations…", permissions=["approve"])
    def resolve_escalations(
        self, request: HttpRequest, queryset: QuerySet[Escalation]
    ) -> HttpResponse | None:
        escalations = list(queryset.order_by("created_at"))
        applying = "apply" in request.POST
        form = ResolveForm(request.POST if applying else None)
        if applying and form.is_valid():
            actor = request.user.get_username()
            for escalation in escalations:

                def call(escalation: Escalation = escalation) -> str:
                    services.escalation_resolve(
                        escalation_id=escalation.pk, actor=actor, reason=form.cleaned_data["reason"]
                    )
                    return "resolved."

                outcome_message(request, self, escalation.msg_id, "resolved", call)
            return None
        if applying:
            self.message_user(
                request, "A reason is required to resolve escalations; nothing was changed.", messages.ERROR
            )
        rows = [
            {
                "pk": e.pk,
                "cells": [e.msg_id, e.severity, e.escalation_type, e.status, e.description[:120]],
                "hidden": {},
            }
            for e in escalations
        ]
        return action_form_response(
            request,
            self,
            action="resolve_escalations",
            title="Resolve escalations",
            intro="The reason is written to the SSOT's audit log with each escalation's resolution.",
            form=form,
            columns=["Escalation", "Severity", "Type", "Status", "Description"],
            rows=rows,
            submit="Resolve escalations",
        )


@admin.register(Notification)
class NotificationAdmin(MirroredAdmin):
    list_display = ["created_at", "title", "state", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["state", "escalate"]
    search_fields = ["title", "body", "escalation_msg_id"]
    fields = [
        "title",
        "body",
        "link",
        "escalation_msg_id",
        "key",
        "escalate",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
    ]
