"""Parse and check SSOT files; one parser per kind, shared by the sync and the write path.

A parser returns the parsed value or raises `FileInvalid` listing every problem, which the mirror
turns into a quarantined file. Every file is read by the one strict reader (`amp.loads`); what becomes
a column is checked to fit it here (an integer in signed 64 bits, a time within the calendar in UTC).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import amp
from ssot.models import RiskLevel, SsotFile
from ssot.paths import stem

TASK_FIELDS_STR = ("title", "branch", "assignee", "last_writer", "requested_by")
# Blob SHAs: SHA-1 (40 hex digits) or SHA-256 (64) object names.
BLOB_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
MAX_USERNAME = 150
RISK_LEVELS = tuple(RiskLevel.values)  # TextChoices.values builds a new list on every access


class FileInvalid(ValueError):
    """An SSOT file failed validation; `errors` are {"path", "message"} dicts."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))


def _error(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def load_json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object a file holds; anything the strict reader refuses is FileInvalid with its reason."""
    try:
        return amp.loads(raw)
    except amp.JsonRefused as exc:
        raise FileInvalid([_error("$", exc.reason)]) from None


def dump_json(document: dict[str, Any]) -> bytes:
    """How the control plane writes a JSON file: indented, UTF-8, a final newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _aware(value: object, field: str, errors: list[dict[str, str]]) -> datetime | None:
    if not isinstance(value, str):
        errors.append(_error(field, "required: an ISO 8601 timestamp with a UTC offset"))
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append(_error(field, f"not an ISO 8601 timestamp: {value[:60]!r}"))
        return None
    if parsed.tzinfo is None:
        errors.append(_error(field, "the timestamp needs a UTC offset (e.g. +00:00 or Z)"))
        return None
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        errors.append(_error(field, "is out of range once converted to UTC (years 1 to 9999)"))
        return None
    return parsed


def _id_of(path: str, errors: list[dict[str, str]]) -> str:
    file_id = stem(path)
    if not amp.is_safe_id(file_id):
        errors.append(_error("$", f"unsafe id in the file name: {file_id[:80]!r}"))
    return file_id


@dataclass(frozen=True)
class TaskDoc:
    task_id: str
    document: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        """The indexed columns a Task row keeps beside the whole document."""
        doc = self.document
        return {
            "title": str(doc.get("title") or "")[:500],
            "status": doc["status"],
            "risk_level": doc.get("risk_level") or RiskLevel.MEDIUM,
            "branch": str(doc.get("branch") or "")[:255],
            "assignee": str(doc.get("assignee") or "")[:128],
            "reject_count": doc.get("reject_count") or 0,
            "last_writer": str(doc.get("last_writer") or "")[:128],
        }


def parse_task(path: str, raw: bytes) -> TaskDoc:
    """A task file: `task_id` equal to its file name, a `status`; known fields of the right type."""
    errors: list[dict[str, str]] = []
    file_id = _id_of(path, errors)
    doc = load_json_object(raw)
    if doc.get("task_id") != file_id:
        errors.append(_error("task_id", f"must equal the file name {file_id[:80]!r}"))
    status = doc.get("status")
    if not isinstance(status, str) or not status.strip() or len(status) > 64:
        errors.append(_error("status", "required: a non-empty string of at most 64 characters"))
    if doc.get("risk_level") is not None and doc.get("risk_level") not in RISK_LEVELS:
        errors.append(_error("risk_level", f"must be one of {', '.join(RiskLevel.values)}"))
    count = doc.get("reject_count")
    if count is not None and (not amp.fits_int64(count) or count < 0):
        problem = f"must be an integer from 0 to {amp.INT64_MAX} (a signed 64-bit integer)"
        errors.append(_error("reject_count", problem))
    for field in TASK_FIELDS_STR:
        if doc.get(field) is not None and not isinstance(doc[field], str):
            errors.append(_error(field, "must be a string"))
    if doc.get("approvals") is not None and not isinstance(doc["approvals"], list):
        errors.append(_error("approvals", "must be a list"))
    if errors:
        raise FileInvalid(errors)
    return TaskDoc(task_id=file_id, document=doc)


@dataclass(frozen=True)
class ApprovalsDoc:
    task_id: str
    task_blob_sha: str
    approvals: list[dict[str, Any]]

    def by(self) -> list[str]:
        return [str(approval["by"]) for approval in self.approvals]


def parse_approvals(path: str, raw: bytes) -> ApprovalsDoc:
    """`approvals/{task_id}.json`: `{"task_id", "blob_sha", "approvals": [{"by", "at", "reason"}]}`."""
    errors: list[dict[str, str]] = []
    file_id = _id_of(path, errors)
    doc = load_json_object(raw)
    if doc.get("task_id") != file_id:
        errors.append(_error("task_id", f"must equal the file name {file_id[:80]!r}"))
    blob_sha = doc.get("blob_sha")
    if not isinstance(blob_sha, str) or not BLOB_SHA.match(blob_sha):
        errors.append(_error("blob_sha", "required: the task's git blob SHA (40 or 64 lowercase hex digits)"))
    approvals = doc.get("approvals")
    if not isinstance(approvals, list):
        errors.append(_error("approvals", "required: a list of {by, at, reason}"))
        approvals = []
    seen: set[str] = set()
    for number, approval in enumerate(approvals):
        where = f"approvals[{number}]"
        if not isinstance(approval, dict):
            errors.append(_error(where, "must be an object {by, at, reason}"))
            continue
        by = approval.get("by")
        if not isinstance(by, str) or not by or len(by) > MAX_USERNAME:
            errors.append(_error(f"{where}.by", f"required: a username of 1 to {MAX_USERNAME} characters"))
        elif by in seen:
            errors.append(_error(f"{where}.by", f"{by[:80]!r} approves twice: approvers are distinct"))
        else:
            seen.add(by)
        _aware(approval.get("at"), f"{where}.at", errors)
        if not isinstance(approval.get("reason", ""), str):
            errors.append(_error(f"{where}.reason", "must be a string"))
    if errors:
        raise FileInvalid(errors)
    return ApprovalsDoc(task_id=file_id, task_blob_sha=str(blob_sha), approvals=list(approvals))


def parse_message(path: str, raw: bytes) -> amp.Envelope:
    """A message file: a valid AMP/1.0 envelope whose `msg_id` equals its file name."""
    try:
        envelope = amp.validate_json(raw)
    except amp.AmpValidationError as exc:
        errors = [_error(v.path, v.message) for v in exc.errors]
        if not amp.is_safe_id(stem(path)):
            errors.append(_error("$", f"unsafe id in the file name: {stem(path)[:80]!r}"))
        raise FileInvalid(errors) from None
    if envelope.msg_id != stem(path):
        raise FileInvalid([_error("msg_id", f"must equal the file name {stem(path)[:80]!r}")])
    return envelope


@dataclass(frozen=True)
class AckDoc:
    msg_id: str
    by: str
    at: datetime


def parse_ack(path: str, raw: bytes) -> AckDoc:
    """An ACK file `{"msg_id", "by", "at"}` named after the message it acknowledges."""
    errors: list[dict[str, str]] = []
    file_id = _id_of(path, errors)
    doc = load_json_object(raw)
    if doc.get("msg_id") != file_id:
        errors.append(_error("msg_id", f"must equal the file name {file_id[:80]!r}"))
    by = doc.get("by", "")
    if by not in amp.AGENT_NAMES:
        errors.append(_error("by", f"must be one of {', '.join(amp.AGENT_NAMES)}"))
    at = _aware(doc.get("at"), "at", errors)
    if errors or at is None:
        raise FileInvalid(errors)
    return AckDoc(msg_id=file_id, by=by, at=at)


@dataclass(frozen=True)
class HeartbeatDoc:
    agent: str
    at: datetime


def parse_heartbeat(path: str, raw: bytes) -> HeartbeatDoc:
    """A heartbeat file `{"agent", "at"}` named after its agent."""
    errors: list[dict[str, str]] = []
    file_id = _id_of(path, errors)
    doc = load_json_object(raw)
    if doc.get("agent") != file_id:
        errors.append(_error("agent", f"must equal the file name {file_id[:80]!r}"))
    at = _aware(doc.get("at"), "at", errors)
    if errors or at is None:
        raise FileInvalid(errors)
    return HeartbeatDoc(agent=file_id, at=at)


@dataclass(frozen=True)
class AuditLine:
    line_no: int
    raw: str
    timestamp: datetime
    actor: str
    action: str
    task_id: str
    msg_id: str
    detail: str
    data: dict[str, Any]


def jsonl_lines(raw: bytes) -> list[str]:
    """The lines of a JSON Lines file (an audit file), line k at index k - 1; amp.JsonRefused when the
    bytes are not UTF-8 text."""
    # JSON Lines end at "\n" only: str.splitlines() would also cut at U+2028 or \x1c inside a string.
    return amp.text_of(raw).split("\n")


def parse_audit(raw: bytes) -> tuple[list[AuditLine], list[dict[str, str]]]:
    """The lines of an audit file (1-based numbers) and the errors of the lines that are not valid."""
    try:
        texts = jsonl_lines(raw)
    except amp.JsonRefused as exc:
        return [], [_error("$", exc.reason)]
    lines: list[AuditLine] = []
    errors: list[dict[str, str]] = []
    for number, line in enumerate(texts, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            data = amp.loads(line)
        except amp.JsonRefused as exc:
            errors.append(_error(where, exc.reason))
            continue
        problems: list[dict[str, str]] = []
        timestamp = _aware(data.get("timestamp"), f"{where}.timestamp", problems)
        for field in ("actor", "action"):
            if not isinstance(data.get(field), str) or not data[field]:
                problems.append(_error(f"{where}.{field}", "required: a non-empty string"))
        if problems or timestamp is None:
            errors.extend(problems)
            continue
        detail = data.get("detail", "")
        lines.append(
            AuditLine(
                line_no=number,
                raw=line,
                timestamp=timestamp,
                actor=data["actor"][:150],
                action=data["action"][:64],
                task_id=str(data.get("task_id") or "")[:128],
                msg_id=str(data.get("msg_id") or "")[:128],
                detail=detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False),
                data=data,
            )
        )
    return lines, errors


PARSERS = {
    SsotFile.Kind.TASK: parse_task,
    SsotFile.Kind.MESSAGE: parse_message,
    SsotFile.Kind.ACK: parse_ack,
    SsotFile.Kind.HEARTBEAT: parse_heartbeat,
}
