"""Compare the mirror with the SSOT file by file: what `ssot_verify` reports as drift."""

from __future__ import annotations

from ssot.documents import FileInvalid, parse_ack, parse_approvals, parse_audit, parse_message, parse_task
from ssot.models import (
    Ack,
    ApprovalPolicy,
    AuditEntry,
    Message,
    QuarantinedFile,
    SsotFile,
    Task,
    TaskApprovals,
)
from ssot.paths import kind_of
from ssot.policy import parse_policy
from ssot.stores.base import Store
from ssot.sync import sync_state


def differences(store: Store, *, deep: bool = True) -> list[str]:
    """Every way the rows differ from the SSOT's head; empty when the mirror is exact."""
    head = store.head()
    found: list[str] = []
    mirrored = sync_state().head or None
    if mirrored != head:
        found.append(f"mirror is at {(mirrored or 'nothing')[:10]}, the SSOT at {(head or 'nothing')[:10]}")
    entries = [e for e in (store.list(head) if head else []) if kind_of(e.path)]
    files = {e.path: e.sha for e in entries}
    gitlinks = {e.path for e in entries if e.gitlink}
    ledger = {row.path: row for row in SsotFile.objects.all()}
    for path in sorted(set(ledger) - set(files)):
        found.append(f"{path}: mirrored but not in the SSOT")
    tables = [
        (Task, Task.objects.values_list("ssot_path", flat=True)),
        (Message, Message.objects.values_list("ssot_path", flat=True)),
        (Ack, Ack.objects.exclude(ssot_path=None).values_list("ssot_path", flat=True)),
        (QuarantinedFile, QuarantinedFile.objects.values_list("path", flat=True)),
        (TaskApprovals, TaskApprovals.objects.values_list("ssot_path", flat=True)),
        (ApprovalPolicy, ApprovalPolicy.objects.values_list("ssot_path", flat=True)),
    ]
    for model, paths in tables:
        for path in sorted({p for p in paths if p is not None} - set(files)):
            found.append(f"{path}: a {model._meta.verbose_name} row without its file")
    for path, sha in sorted(files.items()):
        row = ledger.get(path)
        if row is None:
            found.append(f"{path}: not mirrored")
        elif row.blob_sha != sha:
            found.append(f"{path}: mirrored blob {row.blob_sha[:10]}, SSOT blob {sha[:10]}")
        elif path in gitlinks:
            # A submodule entry has no content: it can only be quarantined.
            if not row.quarantined or not QuarantinedFile.objects.filter(path=path, blob_sha=sha).exists():
                found.append(f"{path}: a submodule entry, not quarantined")
        elif deep:
            found.extend(_compare(path, kind_of(path), store.read(sha), quarantined=row.quarantined))
    return found


def _compare(path: str, kind: str | None, raw: bytes, *, quarantined: bool) -> list[str]:
    if quarantined:
        row = QuarantinedFile.objects.filter(path=path).first()
        if kind == "audit":
            return _compare_audit(path, raw)
        return (
            []
            if row is not None and bytes(row.raw) == raw
            else [f"{path}: quarantine does not hold the file"]
        )
    try:
        if kind == "task":
            task = Task.objects.filter(ssot_path=path).first()
            doc = parse_task(path, raw)
            same = (
                task is not None
                and task.document == doc.document
                and all(getattr(task, name) == value for name, value in doc.columns().items())
            )
        elif kind == "message":
            message = Message.objects.filter(ssot_path=path).first()
            same = message is not None and message.envelope == parse_message(path, raw).raw
        elif kind == "ack":
            ack, ack_doc = Ack.objects.filter(ssot_path=path).first(), parse_ack(path, raw)
            same = ack is not None and (ack.by, ack.at) == (ack_doc.by, ack_doc.at)
        elif kind == "audit":
            return _compare_audit(path, raw)
        elif kind == "approvals":
            approvals = TaskApprovals.objects.filter(ssot_path=path).first()
            approvals_doc = parse_approvals(path, raw)
            same = approvals is not None and (approvals.task_blob_sha, approvals.approvals) == (
                approvals_doc.task_blob_sha,
                approvals_doc.approvals,
            )
        elif kind == "policy":
            policy = ApprovalPolicy.objects.filter(ssot_path=path).first()
            same = policy is not None and policy.document == parse_policy(raw, source="").as_dict()
        else:
            same = True
    except FileInvalid as exc:
        return [f"{path}: invalid in the SSOT but not quarantined ({exc})"]
    return [] if same else [f"{path}: the row differs from the file"]


def _compare_audit(path: str, raw: bytes) -> list[str]:
    lines, _ = parse_audit(raw)
    wanted = {(line.line_no, line.raw) for line in lines}
    rows = set(AuditEntry.objects.filter(ssot_path=path).values_list("line_no", "raw"))
    if wanted == rows:
        return []
    return [f"{path}: {len(wanted - rows)} lines not mirrored, {len(rows - wanted)} rows without a line"]
