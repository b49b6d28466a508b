"""Where things live in the SSOT repository (SPEC section 4), and which paths the mirror reads."""

from __future__ import annotations

import re
from datetime import datetime

from ssot.models import SsotFile

_AUDIT_DAY = re.compile(r"^audit/\d{4}/\d{2}/\d{2}\.jsonl$")
LEGACY_AUDIT = "audit/log.jsonl"
_FOLDERS = {
    "tasks/": SsotFile.Kind.TASK,
    "messages/": SsotFile.Kind.MESSAGE,
    "acks/": SsotFile.Kind.ACK,
    "heartbeats/": SsotFile.Kind.HEARTBEAT,
}


def task_path(task_id: str) -> str:
    return f"tasks/{task_id}.json"


def message_path(msg_id: str) -> str:
    return f"messages/{msg_id}.json"


def ack_path(msg_id: str) -> str:
    return f"acks/{msg_id}.json"


def heartbeat_path(agent: str) -> str:
    return f"heartbeats/{agent}.json"


def audit_day_path(when: datetime) -> str:
    return f"audit/{when:%Y/%m/%d}.jsonl"


def kind_of(path: str) -> str | None:
    """The kind of file the mirror keeps at `path`, or None for a path it ignores."""
    if _AUDIT_DAY.match(path) or path == LEGACY_AUDIT:
        return SsotFile.Kind.AUDIT
    for folder, kind in _FOLDERS.items():
        if path.startswith(folder) and path.endswith(".json") and "/" not in path[len(folder) :]:
            return kind
    return None


def stem(path: str) -> str:
    """The id a file name carries: `tasks/T-1.json` -> `T-1`."""
    return path.rsplit("/", 1)[-1].removesuffix(".json")
