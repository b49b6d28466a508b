"""Signature and token checks, and what each payload says about a branch (pure functions, no database)."""

from __future__ import annotations

import pytest

from testing.webhooks import payload
from webhooks import payloads
from webhooks.verify import github_signature, github_signature_valid, token_valid

# GitHub's documented test vector ("Validating webhook deliveries").
DOC_SECRET = "It's a Secret to Everybody"
DOC_PAYLOAD = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_test_vector_verifies():
    assert github_signature(DOC_PAYLOAD, DOC_SECRET) == DOC_SIGNATURE
    assert github_signature_valid(DOC_PAYLOAD, DOC_SIGNATURE, [DOC_SECRET])


def test_the_documented_signature_fails_for_another_body_or_secret():
    assert not github_signature_valid(b"Hello, World?", DOC_SIGNATURE, [DOC_SECRET])
    assert not github_signature_valid(DOC_PAYLOAD, DOC_SIGNATURE, ["It's a secret to everybody"])


def test_any_one_of_the_rotated_secrets_verifies():
    signature = github_signature(b"{}", "old")
    assert github_signature_valid(b"{}", signature, ["new", "old"])
    assert github_signature_valid(b"{}", github_signature(b"{}", "new"), ["new", "old"])
    assert not github_signature_valid(b"{}", signature, ["new"])


def test_uppercase_hex_is_the_same_signature():
    assert github_signature_valid(
        DOC_PAYLOAD, DOC_SIGNATURE.upper().replace("SHA256=", "sha256="), [DOC_SECRET]
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17, sha256=00",
    ],
)
def test_a_malformed_signature_header_never_verifies(header):
    assert not github_signature_valid(DOC_PAYLOAD, header, [DOC_SECRET])


def test_an_empty_secret_verifies_nothing():
    assert not github_signature_valid(b"x", github_signature(b"x", ""), [""])


def test_tokens_are_compared_whole():
    assert token_valid("xc-token", "xc-token")
    assert not token_valid("xc-toke", "xc-token")
    assert not token_valid("", "xc-token")
    assert not token_valid(None, "xc-token")
    assert not token_valid("anything", "")


def test_a_form_encoded_delivery_is_decoded_from_its_payload_field():
    assert payloads.decode(b"payload=%7B%22zen%22%3A%22ok%22%7D", "application/x-www-form-urlencoded") == {
        "zen": "ok"
    }


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(payloads.PayloadError):
        payloads.decode(body)


def test_a_failed_check_run_is_a_failure_of_its_name_on_the_suites_branch():
    [update] = payloads.check_run(payload("check_run_completed"))
    assert (update.branch, update.check, update.state, update.conclusion) == (
        "feature/t-0001",
        "build",
        "failure",
        "failure",
    )
    assert update.url == "https://github.com/agentos/app/runs/128620228"
    assert update.at == "2026-11-21T10:05:41Z"


def test_a_check_suite_is_named_after_its_app():
    [update] = payloads.check_suite(payload("check_suite_completed"))
    assert (update.branch, update.check, update.state) == ("feature/t-0001", "Octo CI", "success")


def test_a_running_workflow_is_pending_and_a_finished_one_succeeds():
    [running] = payloads.workflow_run(payload("workflow_run_in_progress"))
    [done] = payloads.workflow_run(payload("workflow_run_completed"))
    assert (running.check, running.state, done.state) == ("CI", "pending", "success")
    assert done.url == "https://github.com/agentos/app/actions/runs/30433642"


def test_a_status_updates_every_branch_it_names():
    updates = payloads.status(payload("status_failure"))
    assert [(u.branch, u.check, u.state) for u in updates] == [
        ("feature/t-0001", "ci/lint", "failure"),
        ("feature/t-0002", "ci/lint", "failure"),
    ]


@pytest.mark.parametrize(
    ("status", "conclusion", "state"),
    [
        ("queued", None, "pending"),
        ("in_progress", None, "pending"),
        ("completed", "success", "success"),
        ("completed", "neutral", "success"),
        ("completed", "skipped", "success"),
        ("completed", "failure", "failure"),
        ("completed", "timed_out", "failure"),
        ("completed", "cancelled", "failure"),
        ("completed", "action_required", "pending"),
    ],
)
def test_check_conclusions_map_to_three_states(status, conclusion, state):
    data = payload("check_run_completed")
    data["check_run"].update(status=status, conclusion=conclusion)
    assert payloads.check_run(data)[0].state == state


def test_the_summary_is_failure_then_pending_then_success():
    assert payloads.ci_state({}) == ""
    assert payloads.ci_state({"a": {"state": "success"}, "b": {"state": "success"}}) == "success"
    assert payloads.ci_state({"a": {"state": "success"}, "b": {"state": "pending"}}) == "pending"
    assert payloads.ci_state({"a": {"state": "failure"}, "b": {"state": "pending"}}) == "failure"


def test_a_merged_pull_request_is_merged_and_an_open_one_open():
    opened = payloads.pull_request(payload("pull_request_opened"))
    merged = payloads.pull_request(payload("pull_request_closed_merged"))
    assert (opened.branch, opened.number, opened.state, opened.title) == (
        "feature/t-0001",
        42,
        "open",
        "Add the login form (T-0001)",
    )
    assert (merged.state, merged.action, merged.url) == (
        "merged",
        "closed",
        "https://github.com/agentos/app/pull/42",
    )


def test_a_pull_request_from_a_fork_is_not_the_tasks_branch():
    assert payloads.pull_request(payload("pull_request_from_fork")) is None


def test_xcode_cloud_builds_map_to_the_xcode_cloud_check():
    [started] = payloads.xcode_build(payload("xcode_build_started"))
    [completed] = payloads.xcode_build(payload("xcode_build_completed"))
    assert (started.check, started.branch, started.state) == ("xcode_cloud", "feature/t-0001", "pending")
    assert (completed.state, completed.conclusion, completed.source) == ("failure", "FAILED", "xcode_cloud")
    assert completed.at == "2026-11-21T10:14:10.194Z"


def test_an_xcode_cloud_delivery_id_is_its_build_run_and_event():
    data = payload("xcode_build_completed")
    assert payloads.xcode_delivery_id(data, b"ignored") == (
        "xcode:56c512e6-111e-4067-8e88-640c28ce91a7:BUILD_COMPLETED"
    )
    assert payloads.xcode_delivery_id({}, b"{}").startswith("xcode:44136fa355b3678a")


def test_an_older_timestamp_is_recognised_across_formats():
    assert payloads.is_older("2026-11-21T10:00:00Z", "2026-11-21T10:00:00.500Z")
    assert not payloads.is_older("2026-11-21T10:00:01+00:00", "2026-11-21T10:00:00Z")
    assert not payloads.is_older("not a time", "2026-11-21T10:00:00Z")
