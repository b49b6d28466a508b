"""Query filters of the tasks, messages and audit lists (django-filter; the backend is core/filters.py)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from core.filters import ID_LENGTH
from ssot.models import AuditEntry, Message, RiskLevel, Task

UNACKED = (Message.AckState.PENDING, Message.AckState.OVERDUE)


class TaskFilter(filters.FilterSet):
    status = filters.CharFilter(max_length=64)
    risk_level = filters.ChoiceFilter(choices=RiskLevel.choices)
    branch = filters.CharFilter(max_length=255)
    ci_state = filters.CharFilter(max_length=16)
    search = filters.CharFilter(
        method="filter_search", max_length=500, help_text="Part of the task id, title or branch."
    )

    class Meta:
        model = Task
        fields = ["status", "risk_level", "branch", "ci_state"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(task_id__icontains=value) | Q(title__icontains=value) | Q(branch__icontains=value)
        )


class MessageFilter(filters.FilterSet):
    task_id = filters.CharFilter(max_length=ID_LENGTH)
    type = filters.CharFilter(max_length=32)
    # `from` and `to` are Python keywords: the class namespace takes them as strings.
    locals()["from"] = filters.CharFilter(field_name="sender", max_length=32, help_text="The sender.")
    locals()["to"] = filters.CharFilter(field_name="recipient", max_length=32, help_text="The addressee.")
    unacked = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_unacked",
        help_text="true: waiting for an ACK (pending or overdue); false: the rest.",
    )
    ack_state = filters.ChoiceFilter(choices=Message.AckState.choices)

    class Meta:
        model = Message
        fields = ["task_id", "type", "ack_state"]

    def filter_unacked(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "true":
            return queryset.filter(ack_state__in=UNACKED)
        return queryset.exclude(ack_state__in=UNACKED)


class AuditFilter(filters.FilterSet):
    task_id = filters.CharFilter(max_length=ID_LENGTH)
    msg_id = filters.CharFilter(max_length=ID_LENGTH)
    actor = filters.CharFilter(max_length=150)
    action = filters.CharFilter(max_length=64)
    include = filters.ChoiceFilter(
        choices=[("rewritten", "rewritten")],
        method="filter_include",
        help_text="`rewritten`: also the lines a commit removed or changed (kept, marked with that commit).",
    )

    class Meta:
        model = AuditEntry
        fields = ["task_id", "msg_id", "actor", "action", "include"]

    @property
    def qs(self) -> QuerySet:
        rows = super().qs
        if self.form.cleaned_data.get("include") != "rewritten":
            rows = rows.filter(rewritten_at__isnull=True)
        return rows

    def filter_include(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset
