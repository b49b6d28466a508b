"""Which integrity escalations are due (SPEC sections 4-5, issue 15): one `audit_rewritten` per commit that
removed or changed mirrored audit lines, one `decision_unverified` per task version decided outside the
control plane. The sync marks the rows; the monitor claims and writes the escalations
(`Monitor.report_integrity`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max

from monitoring.envelopes import (
    AUDIT_REWRITTEN,
    DECISION_UNVERIFIED,
    audit_escalation_id,
    decision_escalation_id,
)
from monitoring.models import Notification
from ssot.models import AuditEntry, Escalation, Task


@dataclass(frozen=True)
class Due:
    msg_id: str
    title: str
    body: str


def due() -> list[Due]:
    """The integrity escalations nobody claimed yet (two queries, and one per kind for the claims)."""
    found: dict[str, Due] = {}
    commits = (
        AuditEntry.objects.exclude(rewritten_in="")
        .values("rewritten_in")
        .annotate(lines=Count("id"), author=Max("rewritten_by"))
        .order_by()
    )
    for row in commits:
        commit, author = row["rewritten_in"], row["author"] or "an unknown author"
        found[audit_escalation_id(commit)] = Due(
            audit_escalation_id(commit),
            f"[critical] {AUDIT_REWRITTEN}: commit {commit[:12]} by {author}",
            f"Commit {commit} by {author} removed or changed {row['lines']} line(s) of the audit log, which "
            "is append-only. The lines are kept in the control plane, marked (admin, "
            "GET /api/audit/?include=rewritten).",
        )
    for task in Task.objects.filter(decision_unverified=True).only(
        "task_id", "status", "blob_sha", "decision_unverified_in", "decision_unverified_by"
    ):
        msg_id = decision_escalation_id(task.task_id, task.blob_sha)
        author = task.decision_unverified_by or "an unknown author"
        found[msg_id] = Due(
            msg_id,
            f"[critical] {DECISION_UNVERIFIED}: {task.task_id} is {task.status} (commit by {author})",
            f"Task {task.task_id} became {task.status} in commit {task.decision_unverified_in[:12]} by "
            f"{author}, with no decision of the control plane (no sealed decision line): nobody approved or "
            "rejected it here. The file is left as it is; the task is flagged decision_unverified.",
        )
    if not found:
        return []
    claimed = set(Escalation.objects.filter(msg_id__in=found).values_list("msg_id", flat=True))
    claimed |= set(
        Notification.objects.filter(escalation_msg_id__in=found).values_list("escalation_msg_id", flat=True)
    )
    return [item for msg_id, item in found.items() if msg_id not in claimed]
