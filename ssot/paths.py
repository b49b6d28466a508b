"""Where things live in the SSOT repository (SPEC section 4), and which paths the mirror reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ssot.models import SsotFile

_AUDIT_DAY = re.compile(r"^audit/\d{4}/\d{2}/\d{2}\.jsonl$")
# Message and ack files may sit in dated sub-folders (SPEC section 4): messages/2026/11/30/{msg_id}.json.
_DATED = re.compile(r"^[0-9]{4}/[0-9]{2}/[0-9]{2}/")  # ASCII digits only
_SHARDED = ("messages/", "acks/")
_SURROGATE = re.compile("[\ud800-\udfff]")
LEGACY_AUDIT = "audit/log.jsonl"
_FOLDERS = {
    "tasks/": SsotFile.Kind.TASK,
    "messages/": SsotFile.Kind.MESSAGE,
    "acks/": SsotFile.Kind.ACK,
    "heartbeats/": SsotFile.Kind.HEARTBEAT,
    "approvals/": SsotFile.Kind.APPROVALS,
}
POLICY_PATH = "policy/approvals.json"


def task_path(task_id: str) -> str:
    return f"tasks/{task_id}.json"


def message_path(msg_id: str) -> str:
    return f"messages/{msg_id}.json"


def dated_message_path(msg_id: str, when: datetime) -> str:
    """Where the control plane writes a message when SSOT_DATED_FOLDERS is on: its timestamp's UTC day."""
    day = when.astimezone(UTC)
    return f"messages/{day.year:04d}/{day.month:02d}/{day.day:02d}/{msg_id}.json"


def ack_path(msg_id: str) -> str:
    return f"acks/{msg_id}.json"


def heartbeat_path(agent: str) -> str:
    return f"heartbeats/{agent}.json"


def approvals_path(task_id: str) -> str:
    return f"approvals/{task_id}.json"


def audit_day_path(when: datetime) -> str:
    return f"audit/{when:%Y/%m/%d}.jsonl"


# The ledger's and the quarantine's path columns hold this many characters.
MAX_PATH = 300


def kind_of(path: str) -> str | None:
    """The kind of file the mirror keeps at `path`, or None for a path it ignores.

    A path the database cannot hold (longer than MAX_PATH, or a name that is not UTF-8, which git
    allows and pygit2 hands over with lone surrogates) can never name a valid file, whose id has at
    most 128 path-safe characters: it is ignored like any other path, not quarantined under a name
    that is not its own.
    """
    if len(path) > MAX_PATH or (not path.isascii() and _SURROGATE.search(path)):
        return None
    if _AUDIT_DAY.match(path) or path == LEGACY_AUDIT:
        return SsotFile.Kind.AUDIT
    if path == POLICY_PATH:
        return SsotFile.Kind.POLICY
    for folder, kind in _FOLDERS.items():
        if not path.startswith(folder) or not path.endswith(".json"):
            continue
        name = path[len(folder) :]
        if folder in _SHARDED and (dated := _DATED.match(name)):
            name = name[dated.end() :]
        if "/" not in name:
            return kind
    return None


def stem(path: str) -> str:
    """The id a file name carries: `tasks/T-1.json` -> `T-1`."""
    return path.rsplit("/", 1)[-1].removesuffix(".json")
