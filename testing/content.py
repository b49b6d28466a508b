"""Helpers that write realistic SSOT content through a store, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pygit2

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
    writes: Mapping[str, bytes | dict] | None = None,
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


def commit_gitlink(repository: str | Path, path: str, target: str, *, branch: str = "main") -> str:
    """Commit a submodule entry (a gitlink to commit `target`) at `path`, as `git submodule add` would.

    Straight into the bare repository behind a store (the local one, or the emulator's), like a push.
    """
    repo = pygit2.Repository(str(repository))
    ref = repo.references.get(f"refs/heads/{branch}")
    index = pygit2.Index()
    if ref is not None:
        index.read_tree(repo[ref.target].peel(pygit2.Tree))
    index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=target), pygit2.enums.FileMode.COMMIT))
    author = pygit2.Signature("executor", "executor@agentos.local")
    parents = [ref.target] if ref is not None else []
    oid = repo.create_commit(None, author, author, "add a submodule", index.write_tree(repo), parents)
    repo.references.create(f"refs/heads/{branch}", oid, force=True)
    return str(oid)


def read_json(store: Store, path: str) -> Any:
    head = store.head()
    entry = store.entry(head, path) if head is not None else None
    return amp.loads(store.read(entry.sha)) if entry else None
