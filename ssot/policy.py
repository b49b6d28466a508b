"""The approval policy (SPEC section 5): who may decide on a task at each risk level, and how many must agree.

The policy is `policy/approvals.json` in the SSOT, so every change to it is a reviewed commit and its
history is `git log policy/`. It is read with the JSON Schema published in amp/schema (one source for
the control plane and for anyone who checks the file before pushing it). The mirror keeps the last valid
file in `ApprovalPolicy`; an invalid one is quarantined and leaves that row, the previous valid policy,
in force. No file: the built-in default, one approval by the group `approvers` at every level.

The rules about a person (`decide_refusal`, `approve_refusal`) are written once here; the services
enforce them and `approval_status` explains them to the admin and the task page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from jsonschema import Draft202012Validator

from amp.jsonschema import build_policy_schema
from amp.spec import RISK_LEVELS
from core.permissions import APPROVE, is_agent
from ssot.documents import FileInvalid, load_json_object
from ssot.models import ApprovalPolicy, RiskLevel, Task, TaskApprovals
from ssot.seals import approval_sealed

BUILT_IN = "built-in"
DEFAULT_GROUP = "approvers"
_VALIDATOR = Draft202012Validator(build_policy_schema())
MAX_ERRORS = 50


@dataclass(frozen=True)
class Level:
    """Who decides at one risk level: `approvals` distinct people, members of one of `groups`."""

    approvals: int
    groups: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"approvals": self.approvals, "groups": list(self.groups)}


DEFAULT_LEVEL = Level(approvals=1, groups=(DEFAULT_GROUP,))


@dataclass(frozen=True)
class Policy:
    """The policy in force; `source` is the blob SHA of the file it was read from, or "built-in"."""

    levels: Mapping[str, Level]
    self_approval: bool = False
    source: str = BUILT_IN

    def level(self, risk_level: str | None) -> Level:
        return self.levels.get(risk_level or RiskLevel.MEDIUM, DEFAULT_LEVEL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "levels": {name: self.levels[name].as_dict() for name in RISK_LEVELS},
            "self_approval": self.self_approval,
        }


BUILT_IN_POLICY = Policy(levels=dict.fromkeys(RISK_LEVELS, DEFAULT_LEVEL))


def _error_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "$"


def policy_from_document(document: Any, *, source: str) -> Policy:
    """The policy a parsed JSON value states; FileInvalid listing every way it breaks the schema."""
    problems = sorted(_VALIDATOR.iter_errors(document), key=lambda e: _error_path(e.absolute_path))
    if problems:
        raise FileInvalid(
            [
                {"path": _error_path(problem.absolute_path), "message": problem.message[:300]}
                for problem in problems[:MAX_ERRORS]
            ]
        )
    levels = dict(BUILT_IN_POLICY.levels)
    for name, level in document.get("levels", {}).items():
        # The schema's "integer" admits 2.0 (JSON has one number type): the count is its value.
        levels[name] = Level(approvals=int(level["approvals"]), groups=tuple(level["groups"]))
    return Policy(levels=levels, self_approval=document.get("self_approval", False), source=source)


def parse_policy(raw: bytes, *, source: str) -> Policy:
    """`policy/approvals.json`: read by the strict reader, then checked against the published schema."""
    return policy_from_document(load_json_object(raw), source=source)


def policy_in_force() -> Policy:
    """The policy the mirror holds: the last valid file, or the built-in default when there is none."""
    row = ApprovalPolicy.objects.only("document", "blob_sha").first()
    if row is None:
        return BUILT_IN_POLICY
    try:
        return policy_from_document(row.document, source=row.blob_sha)
    except FileInvalid:
        # Only valid files become this row; a row the schema now refuses is not a policy to apply.
        return BUILT_IN_POLICY


# -- who may decide ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a person may not approve or reject: a stable `code` and a sentence for people."""

    code: str
    message: str


NOT_PERMITTED = "not_permitted"
NOT_IN_GROUP = "not_in_group"
REQUESTED_IT = "requested_it"
ALREADY_APPROVED = "already_approved"
NOT_AWAITING = "not_awaiting"


def _in_groups(user: Any, groups: tuple[str, ...]) -> bool:
    return bool(user.is_superuser or user.groups.filter(name__in=groups).exists())


def decide_refusal(user: Any, *, risk_level: str, level: Level) -> Refusal | None:
    """Why `user` may not approve or reject at this level (permission, agent, group), or None."""
    if user is None or not user.is_active:
        return Refusal(NOT_PERMITTED, "Only an active user may approve or reject a task.")
    if is_agent(user):
        return Refusal(NOT_PERMITTED, "Agents never approve or reject tasks.")
    if not user.has_perm(APPROVE):
        return Refusal(NOT_PERMITTED, f"Approving and rejecting need the permission {APPROVE}.")
    if not _in_groups(user, level.groups):
        names = ", ".join(repr(name) for name in level.groups)
        return Refusal(
            NOT_IN_GROUP,
            f"At risk level {risk_level}, only members of {names} may approve or reject; "
            f"{user.get_username()} is in none of them.",
        )
    return None


def approve_refusal(
    user: Any,
    *,
    task_id: str,
    risk_level: str,
    policy: Policy,
    requested_by: object,
    approved_by: list[str],
) -> Refusal | None:
    """Why `user` may not approve this task version (besides its status), or None."""
    refusal = decide_refusal(user, risk_level=risk_level, level=policy.level(risk_level))
    if refusal is not None:
        return refusal
    username = user.get_username()
    if not policy.self_approval and isinstance(requested_by, str) and requested_by == username:
        return Refusal(
            REQUESTED_IT,
            f"{username} requested task {task_id}; the policy refuses self-approval, so someone else "
            "must approve it.",
        )
    if username in approved_by:
        return Refusal(
            ALREADY_APPROVED,
            f"{username} already approved this version of task {task_id}; approvers must be distinct.",
        )
    return None


def split_approvals(
    entries: list[dict[str, Any]],
    *,
    task_id: str,
    task_sha: str,
    risk_level: str,
    policy: Policy,
    requested_by: object,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The approvals of a version that count, and those that do not: an approval counts only when the
    control plane recorded it for this version (its seal, ssot.seals.approval_seal: an entry an agent
    pushed by hand, in anyone's name, never counts) and only while its author may approve at this level
    (an account removed from the groups, deactivated, unknown, or the requester under
    `self_approval: false` is not counted, whoever wrote the file). Both lists keep the file's order."""
    sealed = [entry for entry in entries if approval_sealed(entry, task_id=task_id, task_sha=task_sha)]
    counted = _allowed(sealed, risk_level=risk_level, policy=policy, requested_by=requested_by)
    kept = {id(entry) for entry in counted}
    return counted, [entry for entry in entries if id(entry) not in kept]


def _allowed(
    entries: list[dict[str, Any]], *, risk_level: str, policy: Policy, requested_by: object
) -> list[dict[str, Any]]:
    """The entries whose authors may approve at this level now."""
    level = policy.level(risk_level)
    model = get_user_model()
    names = [str(entry.get("by", "")) for entry in entries]
    users = {
        user.get_username(): user for user in model.objects.filter(**{f"{model.USERNAME_FIELD}__in": names})
    }
    counted: list[dict[str, Any]] = []
    for name, entry in zip(names, entries, strict=True):
        requester = not policy.self_approval and isinstance(requested_by, str) and requested_by == name
        refused = requester or decide_refusal(users.get(name), risk_level=risk_level, level=level) is not None
        if not refused:
            counted.append(entry)
    return counted


# -- what the admin and the task page show --------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a task stands under the policy, seen by one user."""

    task_id: str
    blob_sha: str
    level: str
    need: int
    have: int
    groups: tuple[str, ...]
    self_approval: bool
    policy_source: str
    requested_by: str
    # Approvals of the version shown (blob_sha): {"by", "at", "reason"}.
    approvals: list[dict[str, Any]] = field(default_factory=list)
    # Approvals given to an older version of the task: they no longer count.
    voided: list[dict[str, Any]] = field(default_factory=list)
    # Approvals of this version by people who may not approve (any longer): they do not count.
    discounted: list[dict[str, Any]] = field(default_factory=list)
    may_approve: bool = False
    may_reject: bool = False
    why_not: str = ""
    why_not_code: str = ""
    why_not_reject: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "blob_sha": self.blob_sha,
            "level": self.level,
            "need": self.need,
            "have": self.have,
            "groups": list(self.groups),
            "self_approval": self.self_approval,
            "policy_source": self.policy_source,
            "requested_by": self.requested_by,
            "approvals": self.approvals,
            "voided": self.voided,
            "discounted": self.discounted,
            "may_approve": self.may_approve,
            "may_reject": self.may_reject,
            "why_not": self.why_not,
            "why_not_code": self.why_not_code,
            "why_not_reject": self.why_not_reject,
        }


def _approval_entries(value: object) -> list[dict[str, Any]]:
    """Approvals as the page shows them, from a list that came from the SSOT (anything may be in it)."""
    if not isinstance(value, list):
        return []
    return [
        {
            "by": str(item.get("by", ""))[:150],
            "at": str(item.get("at", ""))[:64],
            "reason": str(item.get("reason", ""))[:4000],
        }
        for item in value
        if isinstance(item, dict)
    ]


def _entries(pending: TaskApprovals) -> list[dict[str, Any]]:
    """The entries of a pending approvals row (its file was validated; dicts only, whatever a row holds)."""
    return [item for item in pending.approvals or [] if isinstance(item, dict)]


class Counted(NamedTuple):
    """A task version's approvals that count, and how many its level needs."""

    have: int
    need: int


# Task ids per query when reading pending approvals for many tasks.
_PENDING_BATCH = 500


def approval_counts(tasks: Iterable[Task], *, policy: Policy | None = None) -> dict[str, Counted]:
    """For each task awaiting approval among `tasks`, its approvals counted for the version mirrored and
    the number needed, as `approval_status` counts them, for a list of many tasks: the policy, the pending
    approvals and the documents of the tasks that have some (for who requested them) are read once each;
    then each such task's approvers and whether each may approve (`decide_refusal`). Tasks not awaiting
    approval are left out."""
    awaiting = {task.task_id: task for task in tasks if task.status == Task.AWAITING_APPROVAL}
    if not awaiting:
        return {}
    policy = policy or policy_in_force()
    counts = {
        task_id: Counted(0, policy.level(task.risk_level).approvals) for task_id, task in awaiting.items()
    }
    current: list[tuple[Task, list[dict[str, Any]]]] = []  # tasks with approvals of the version mirrored
    ids = list(awaiting)
    for start in range(0, len(ids), _PENDING_BATCH):
        chunk = ids[start : start + _PENDING_BATCH]
        for pending in TaskApprovals.objects.filter(task_id__in=chunk).only(
            "task_id", "task_blob_sha", "approvals"
        ):
            task, entries = awaiting[pending.task_id], _entries(pending)
            # Approvals of an older version count for nothing.
            if pending.task_blob_sha == task.blob_sha and entries:
                current.append((task, entries))
    deferred = {task.pk for task, _ in current if "document" in task.get_deferred_fields()}
    documents = dict(Task.objects.filter(pk__in=deferred).values_list("pk", "document")) if deferred else {}
    for task, entries in current:
        document = documents.get(task.pk) if task.pk in deferred else task.document
        counted, _ = split_approvals(
            entries,
            task_id=task.task_id,
            task_sha=task.blob_sha,
            risk_level=task.risk_level,
            policy=policy,
            requested_by=document.get("requested_by") if isinstance(document, dict) else None,
        )
        counts[task.task_id] = Counted(len(counted), counts[task.task_id].need)
    return counts


def approval_status(task: Task, user: Any, *, policy: Policy | None = None) -> ApprovalStatus:
    """The policy that applies to `task`, who approved the version mirrored, and what `user` may do."""
    policy = policy or policy_in_force()
    level = policy.level(task.risk_level)
    document = task.document if isinstance(task.document, dict) else {}
    requested_by = document.get("requested_by")
    awaiting = task.status == Task.AWAITING_APPROVAL
    approvals: list[dict[str, Any]] = []
    voided: list[dict[str, Any]] = []
    discounted: list[dict[str, Any]] = []
    recorded: list[str] = []  # who the control plane recorded as approving this version (sealed entries)
    if awaiting:
        pending = TaskApprovals.objects.filter(task_id=task.task_id).first()
        if pending is not None:
            entries = _entries(pending)
            if pending.task_blob_sha == task.blob_sha:
                counted, dropped = split_approvals(
                    entries,
                    task_id=task.task_id,
                    task_sha=task.blob_sha,
                    risk_level=task.risk_level,
                    policy=policy,
                    requested_by=requested_by,
                )
                approvals, discounted = _approval_entries(counted), _approval_entries(dropped)
                recorded = [
                    str(entry["by"])
                    for entry in entries
                    if approval_sealed(entry, task_id=task.task_id, task_sha=task.blob_sha)
                ]
            else:
                voided = _approval_entries(entries)
    elif task.status == "approved":
        approvals = _approval_entries(document.get("approvals"))
    refusal: Refusal | None
    if not awaiting:
        refusal = Refusal(NOT_AWAITING, f"Task {task.task_id} is {task.status!r}, not awaiting approval.")
        reject_refusal: Refusal | None = refusal
    else:
        refusal = approve_refusal(
            user,
            task_id=task.task_id,
            risk_level=task.risk_level,
            policy=policy,
            requested_by=requested_by,
            approved_by=recorded,  # as the service decides: an unsealed entry blocks nobody
        )
        reject_refusal = decide_refusal(user, risk_level=task.risk_level, level=level)
    return ApprovalStatus(
        task_id=task.task_id,
        blob_sha=task.blob_sha,
        level=task.risk_level,
        need=level.approvals,
        have=len(approvals),
        groups=level.groups,
        self_approval=policy.self_approval,
        policy_source=policy.source,
        requested_by=requested_by if isinstance(requested_by, str) else "",
        approvals=approvals,
        voided=voided,
        discounted=discounted,
        may_approve=refusal is None,
        may_reject=reject_refusal is None,
        why_not=refusal.message if refusal else "",
        why_not_code=refusal.code if refusal else "",
        why_not_reject=reject_refusal.message if reject_refusal else "",
    )
