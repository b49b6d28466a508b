"""The control plane's seals: HMACs (keyed by SECRET_KEY, with its fallbacks) that bind what the
control plane wrote in the SSOT to the task version it was written for. An agent can push any file, but
not one of these: a decision line without its seal flags the task `decision_unverified` (ssot.mirror), and
an approval entry without its seal never counts toward the policy (ssot.policy.split_approvals)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac


def _keys() -> list[str | bytes]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


SEAL_SALT = "agentos.decision-seal"


def decision_seal(
    *, task_id: str, action: str, status: str, task_sha: str, secret: str | bytes | None = None
) -> str:
    """The HMAC a decision line of the control plane carries: agents, without the secret, cannot forge it."""
    message = f"{task_id}\0{action}\0{status}\0{task_sha}"
    return salted_hmac(SEAL_SALT, message, secret=secret, algorithm="sha256").hexdigest()


def seal_holds(data: dict[str, Any]) -> bool:
    """Whether an audit line's `seal` is the control plane's for its task, action, status and task blob."""
    fields = [data.get(name) for name in ("task_id", "action", "status", "task_sha", "seal")]
    if not all(isinstance(value, str) and value for value in fields):
        return False
    task_id, action, status, task_sha, seal = (str(value) for value in fields)
    return any(
        constant_time_compare(
            seal, decision_seal(task_id=task_id, action=action, status=status, task_sha=task_sha, secret=key)
        )
        for key in _keys()
    )


APPROVAL_SEAL_SALT = "agentos.approval-seal"


def approval_seal(*, task_id: str, task_sha: str, by: str, at: str, secret: str | bytes | None = None) -> str:
    """The HMAC an approval below the policy's count carries in approvals/{task_id}.json: an entry an
    agent writes there by hand, in anyone's name, cannot carry it, and never counts."""
    message = f"{task_id}\0{task_sha}\0{by}\0{at}"
    return salted_hmac(APPROVAL_SEAL_SALT, message, secret=secret, algorithm="sha256").hexdigest()


def approval_sealed(entry: dict[str, Any], *, task_id: str, task_sha: str) -> bool:
    """Whether an approvals entry was written by the control plane for this task version."""
    by, at, seal = entry.get("by"), entry.get("at"), entry.get("seal")
    if not (isinstance(by, str) and isinstance(at, str) and isinstance(seal, str)):
        return False
    expected = (
        approval_seal(task_id=task_id, task_sha=task_sha, by=by, at=at, secret=key) for key in _keys()
    )
    return any(constant_time_compare(seal, value) for value in expected)
