"""Helpers that write realistic SSOT content through a store, for tests and benchmarks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import amp
from ssot.documents import dump_json
from ssot.stores.base import Store

BASE_TIME = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def task_doc(task_id: str, status: str = "in_progress", **fields: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "title": f"Task {task_id}",
        "status": status,
        "risk_level": "medium",
        "branch": f"feature/{task_id.lower()}",
        "reject_count": 0,
        "last_writer": "coordinator",
        **fields,
    }


def dispatch(task_id: str, *, n: int = 0, when: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    when = when or BASE_TIME + timedelta(seconds=n)
    envelope = amp.build_envelope(
        msg_type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id=task_id,
        payload={"branch": f"feature/{task_id.lower()}", "acceptance_criteria": ["it works"]},
        now=when,
        msg_id=f"task_dispatch-{task_id}-{int(when.timestamp() * 1000) + n}",
    )
    envelope.update(overrides)
    return envelope


def result(
    task_id: str, *, refs: tuple[str, ...] = (), n: int = 0, when: datetime | None = None
) -> dict[str, Any]:
    when = when or BASE_TIME + timedelta(minutes=5, seconds=n)
    return amp.build_envelope(
        msg_type="task_result",
        sender="executor",
        recipient="coordinator",
        task_id=task_id,
        payload={"summary": "done"},
        context_ref=refs,
        now=when,
        msg_id=f"task_result-{task_id}-{int(when.timestamp() * 1000) + n}",
    )


def commit(
    store: Store,
    writes: dict[str, bytes | dict] | None = None,
    deletes: tuple[str, ...] = (),
    *,
    author: str = "coordinator",
    message: str = "test change",
) -> str:
    """Commit on the current head; dict values are written as JSON."""
    data = {
        path: value if isinstance(value, bytes) else dump_json(value)
        for path, value in (writes or {}).items()
    }
    return store.commit(parent=store.head(), writes=data, deletes=deletes, message=message, author=author)


def read_json(store: Store, path: str) -> Any:
    entry = store.entry(store.head(), path)
    return json.loads(store.read(entry.sha)) if entry else None
