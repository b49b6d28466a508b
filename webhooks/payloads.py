"""Reading GitHub and Xcode Cloud payloads: what a delivery says about a branch's CI or pull request.

Pure functions over the decoded JSON (no database): the processing applies what they return through
`webhooks.services`. Field names follow GitHub's "Webhook events and payloads" and Apple's
"Xcode Cloud webhook payload reference".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import amp

PENDING, SUCCESS, FAILURE = "pending", "success", "failure"

# GitHub check conclusions, as branch protection reads them: neutral and skipped do not block a merge.
_GOOD_CONCLUSIONS = {"success", "neutral", "skipped"}
_BAD_CONCLUSIONS = {"failure", "timed_out", "cancelled", "startup_failure", "stale"}
# The commit status API's states.
_STATUS_STATES = {"pending": PENDING, "success": SUCCESS, "failure": FAILURE, "error": FAILURE}
# Xcode Cloud's CiCompletionStatus.
_XCODE_COMPLETION = {
    "SUCCEEDED": SUCCESS,
    "SKIPPED": SUCCESS,
    "FAILED": FAILURE,
    "ERRORED": FAILURE,
    "CANCELED": FAILURE,
}
XCODE_EVENTS = ("BUILD_CREATED", "BUILD_STARTED", "BUILD_COMPLETED")
XCODE_CHECK = "xcode_cloud"


class PayloadError(ValueError):
    """The body is not a JSON object the strict reader accepts (or a form whose `payload` field is not)."""


@dataclass(frozen=True)
class CheckUpdate:
    """One check's latest state on one branch, as `Task.ci_status[check]` keeps it."""

    branch: str
    check: str
    state: str
    conclusion: str
    url: str
    at: str
    source: str
    event: str
    sha: str = ""

    def entry(self) -> dict[str, str]:
        return {
            "state": self.state,
            "conclusion": self.conclusion,
            "url": self.url,
            "at": self.at,
            "source": self.source,
            "event": self.event,
            "sha": self.sha,
        }


@dataclass(frozen=True)
class PrUpdate:
    """A pull request whose head is `branch`; `state` is open, closed or merged."""

    branch: str
    number: int
    state: str
    url: str
    title: str
    action: str


# -- decoding ---------------------------------------------------------------------------------------


def decode(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """The JSON object of a delivery, read by the strict reader; GitHub's form content type wraps it in
    a `payload` field."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True, errors="strict")
            data: bytes | str = fields["payload"][0]
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"the form body cannot be read: {exc}") from None
        except KeyError:
            raise PayloadError("the form body has no payload field") from None
    else:
        data = body
    try:
        return amp.loads(data)
    except amp.JsonRefused as exc:
        raise PayloadError(exc.reason) from None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def text(payload: dict[str, Any], *keys: str) -> str:
    """The string at a path of keys, or "" if any step is missing or of another type."""
    value: Any = payload
    for key in keys:
        value = _obj(value).get(key)
    return _str(value)


def xcode_delivery_id(payload: dict[str, Any], body: bytes) -> str:
    """Xcode Cloud sends no delivery id: a build run's event is one delivery, however often it is resent."""
    run_id = _str(_obj(payload.get("ciBuildRun")).get("id"))
    event = xcode_event(payload)
    key = f"{run_id}:{event}" if run_id and event else hashlib.sha256(body).hexdigest()
    return f"xcode:{key}"[:128]


def xcode_event(payload: dict[str, Any]) -> str:
    return _str(_obj(_obj(payload.get("metadata")).get("attributes")).get("eventType"))


# -- CI ----------------------------------------------------------------------------------------------


def _check_state(status: str, conclusion: str) -> str:
    if status != "completed":
        return PENDING
    if conclusion in _GOOD_CONCLUSIONS:
        return SUCCESS
    if conclusion in _BAD_CONCLUSIONS:
        return FAILURE
    return PENDING  # action_required, or a conclusion GitHub has not sent yet


def check_run(payload: dict[str, Any]) -> list[CheckUpdate]:
    run = _obj(payload.get("check_run"))
    branch = _str(_obj(run.get("check_suite")).get("head_branch"))
    name = _str(run.get("name"))
    if not branch or not name:
        return []
    conclusion = _str(run.get("conclusion"))
    return [
        CheckUpdate(
            branch=branch,
            check=name,
            state=_check_state(_str(run.get("status")), conclusion),
            conclusion=conclusion,
            url=_str(run.get("html_url")) or _str(run.get("details_url")),
            at=_str(run.get("completed_at")) or _str(run.get("started_at")),
            source="github",
            event="check_run",
            sha=_str(run.get("head_sha")),
        )
    ]


def check_suite(payload: dict[str, Any]) -> list[CheckUpdate]:
    suite = _obj(payload.get("check_suite"))
    branch = _str(suite.get("head_branch"))
    app = _obj(suite.get("app"))
    name = _str(app.get("name")) or _str(app.get("slug")) or "check suite"
    if not branch:
        return []
    conclusion = _str(suite.get("conclusion"))
    return [
        CheckUpdate(
            branch=branch,
            check=name,
            state=_check_state(_str(suite.get("status")), conclusion),
            conclusion=conclusion,
            url=_str(suite.get("url")),
            at=_str(suite.get("updated_at")) or _str(suite.get("created_at")),
            source="github",
            event="check_suite",
            sha=_str(suite.get("head_sha")),
        )
    ]


def workflow_run(payload: dict[str, Any]) -> list[CheckUpdate]:
    run = _obj(payload.get("workflow_run"))
    branch = _str(run.get("head_branch"))
    name = _str(run.get("name")) or _str(_obj(payload.get("workflow")).get("name"))
    if not branch or not name or _from_fork(run.get("head_repository"), payload.get("repository")):
        return []
    conclusion = _str(run.get("conclusion"))
    return [
        CheckUpdate(
            branch=branch,
            check=name,
            state=_check_state(_str(run.get("status")), conclusion),
            conclusion=conclusion,
            url=_str(run.get("html_url")),
            at=_str(run.get("updated_at")) or _str(run.get("run_started_at")),
            source="github",
            event="workflow_run",
            sha=_str(run.get("head_sha")),
        )
    ]


def status(payload: dict[str, Any]) -> list[CheckUpdate]:
    """A commit status names every branch whose head is the commit: one update per branch."""
    context = _str(payload.get("context")) or "default"
    state = _str(payload.get("state"))
    branches = [_str(_obj(b).get("name")) for b in payload.get("branches") or []]
    return [
        CheckUpdate(
            branch=branch,
            check=context,
            state=_STATUS_STATES.get(state, PENDING),
            conclusion=state,
            url=_str(payload.get("target_url")),
            at=_str(payload.get("updated_at")) or _str(payload.get("created_at")),
            source="github",
            event="status",
            sha=_str(payload.get("sha")),
        )
        for branch in branches
        if branch
    ]


def xcode_build(payload: dict[str, Any]) -> list[CheckUpdate]:
    event = xcode_event(payload)
    reference = _obj(_obj(payload.get("scmGitReference")).get("attributes"))
    branch = _str(reference.get("name"))
    if event not in XCODE_EVENTS or not branch or _str(reference.get("kind")) not in ("", "BRANCH"):
        return []
    run = _obj(payload.get("ciBuildRun"))
    attributes = _obj(run.get("attributes"))
    progress = _str(attributes.get("executionProgress"))
    completion = _str(attributes.get("completionStatus"))
    if progress == "COMPLETE" or event == "BUILD_COMPLETED":
        state = _XCODE_COMPLETION.get(completion, FAILURE if completion else PENDING)
    else:
        state = PENDING
    at = (
        _str(attributes.get("finishedDate"))
        or _str(attributes.get("startedDate"))
        or _str(attributes.get("createdDate"))
        or _str(_obj(_obj(payload.get("metadata")).get("attributes")).get("createdDate"))
    )
    commit = _obj(attributes.get("sourceCommit"))
    return [
        CheckUpdate(
            branch=branch,
            check=XCODE_CHECK,
            state=state,
            conclusion=completion or progress,
            url=_str(_obj(run.get("links")).get("self")),
            at=at,
            source="xcode_cloud",
            event=event,
            sha=_str(commit.get("commitSha")),
        )
    ]


def ci_state(ci_status: dict[str, Any]) -> str:
    """The summary of every check: failure if any failed, else pending if any is running, else success."""
    states = {_str(_obj(entry).get("state")) for entry in ci_status.values()}
    if not states:
        return ""
    if FAILURE in states:
        return FAILURE
    if states == {SUCCESS}:
        return SUCCESS
    return PENDING


def is_older(candidate: str, current: str) -> bool:
    """True if timestamp `candidate` is strictly before `current` (deliveries can arrive out of order)."""
    try:
        return _when(candidate) < _when(current)
    except (ValueError, TypeError):  # not a timestamp, or one naive and one aware: not comparable
        return False


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- pull requests ------------------------------------------------------------------------------------


def pull_request(payload: dict[str, Any]) -> PrUpdate | None:
    pr = _obj(payload.get("pull_request"))
    head = _obj(pr.get("head"))
    branch = _str(head.get("ref"))
    number = pr.get("number", payload.get("number"))
    if not branch or not amp.fits_int64(number) or number <= 0:
        return None
    # A fork's branch with a task's name is not that task's branch.
    if _from_fork(head.get("repo"), _obj(pr.get("base")).get("repo")):
        return None
    return PrUpdate(
        branch=branch,
        number=number,
        state="merged" if pr.get("merged") is True or pr.get("merged_at") else _str(pr.get("state")),
        url=_str(pr.get("html_url")),
        title=_str(pr.get("title")),
        action=_str(payload.get("action")),
    )


def _from_fork(head_repo: Any, base_repo: Any) -> bool:
    head, base = _str(_obj(head_repo).get("full_name")), _str(_obj(base_repo).get("full_name"))
    return bool(head and base and head != base)


CI_EVENTS = {
    "check_run": check_run,
    "check_suite": check_suite,
    "workflow_run": workflow_run,
    "status": status,
}
