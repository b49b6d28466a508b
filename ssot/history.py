"""What changed in a task (SPEC section 9, the task page): its versions from the SSOT's history, read through
the store (`Store.history`: one request on GitHub; then each version with `Store.file_at`: one request
each on GitHub, none for a version read before), and a field-by-field diff between the version shown and
the baseline — the version of its last decision, or of when it last entered `awaiting_approval`.

The baseline is searched among the versions older than the one shown, newest first, and the first found
wins: a version that records a new decision (its latest `approved_at`/`rejected_at`/`override_at` differs
from the version before it), or the version in which the task entered `awaiting_approval`. When the version
shown is itself the one that entered `awaiting_approval`, the baseline is the version before it, so the
approver sees what the agent changed when it asked. Every version listed is read: the history shows each
one's status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ssot.documents import load_json_object
from ssot.models import Task
from ssot.paths import task_path
from ssot.selectors import latest_decision
from ssot.stores.base import HISTORY_LIMIT, Revision, StoreError
from ssot.stores.factory import get_store

# Fields shown first, in this order; any other field follows, sorted (unknown fields are kept and shown).
ORDER = (
    "status",
    "title",
    "description",
    "risk_level",
    "branch",
    "assignee",
    "last_writer",
    "requested_by",
    "reject_count",
)
VALUE_CHARS = 2000


@dataclass(frozen=True)
class Version:
    """One version of the task file: the commit that wrote it, its blob (None: deleted) and content."""

    revision: Revision
    blob_sha: str | None
    document: dict[str, Any] | None

    @property
    def status(self) -> str:
        return str(self.document.get("status", "")) if self.document else ""


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: str | None  # None: the field is absent on that side
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"


@dataclass
class TaskChanges:
    history: list[Version] = field(default_factory=list)
    baseline: Version | None = None
    basis: str = ""
    fields: list[FieldChange] = field(default_factory=list)
    error: str = ""


def render(value: Any) -> str:
    """A field's value as text: strings as they are, anything else as JSON; long values are cut."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[FieldChange]:
    """Field by field, known fields first: what differs between two task documents."""
    old, new = old or {}, new or {}
    names = [n for n in ORDER if n in old or n in new]
    names += sorted((old.keys() | new.keys()) - set(ORDER))
    changes = []
    for name in names:
        if name in old and name in new and old[name] == new[name]:
            continue
        changes.append(
            FieldChange(
                name,
                render(old[name]) if name in old else None,
                render(new[name]) if name in new else None,
            )
        )
    return changes


def _decision_key(document: dict[str, Any] | None) -> tuple[str, str] | None:
    decision = latest_decision(document) if document else None
    return (str(decision["action"]), str(decision["at"])) if decision else None


def describe_decision(document: dict[str, Any] | None) -> str:
    decision = latest_decision(document) if document else None
    if not decision:
        return "the last decision"
    return f"the last decision ({decision['action']} by {decision['by'] or '?'})"


def task_changes(task: Task, *, limit: int = HISTORY_LIMIT) -> TaskChanges:
    """The task's history (who, when, message, status) and what changed since the baseline.

    A store failure is reported in `error`, never raised: the page shows the rest."""
    store = get_store()
    path = task_path(task.task_id)
    changes = TaskChanges()
    try:
        revisions = store.history(path, limit=limit)
    except StoreError as exc:
        changes.error = f"The SSOT history cannot be read: {str(exc)[:300]}"
        return changes
    cache: dict[str, dict[str, Any] | None] = {task.blob_sha: task.document}

    def version(revision: Revision) -> Version:
        found = store.file_at(revision.commit, path)
        if found is None:
            return Version(revision, None, None)
        sha, data = found
        if sha not in cache:
            try:
                cache[sha] = load_json_object(data)
            except ValueError:
                cache[sha] = None  # quarantined content: shown as unreadable
        return Version(revision, sha, cache[sha])

    try:
        versions = [version(revision) for revision in revisions]
    except StoreError as exc:
        changes.error = f"The SSOT history cannot be read: {str(exc)[:300]}"
        return changes
    changes.history = versions
    shown = next((i for i, v in enumerate(versions) if v.blob_sha == task.blob_sha), None)
    if shown is None:
        changes.error = (
            "The version shown is not in the SSOT's recent history (the mirror may be catching up)."
        )
        return changes
    older = versions[shown + 1 :]
    newer_status = versions[shown].status
    for i, candidate in enumerate(older):
        before = older[i + 1].document if i + 1 < len(older) else None
        if _decision_key(candidate.document) not in (None, _decision_key(before)):
            changes.baseline, changes.basis = candidate, describe_decision(candidate.document)
            break
        if newer_status == Task.AWAITING_APPROVAL and candidate.status != Task.AWAITING_APPROVAL:
            entered = versions[shown + i]  # the version after `candidate`: the one that asked
            if entered.blob_sha == task.blob_sha:
                changes.baseline, changes.basis = candidate, "the version before it asked for approval"
            else:
                changes.baseline, changes.basis = entered, "when it last entered awaiting_approval"
            break
        newer_status = candidate.status
    else:
        if older:
            changes.baseline, changes.basis = older[-1], "its oldest version in the recent history"
    if changes.baseline is not None:
        changes.fields = diff(changes.baseline.document, task.document)
    else:
        changes.basis = "its first version"
        changes.fields = diff(None, task.document)
    return changes
