"""The approval policy file (SPEC section 5): read strictly, mirrored, the previous one kept when invalid."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from amp.jsonschema import POLICY_SCHEMA_PATH, build_policy_schema
from amp.spec import RISK_LEVELS
from ssot.documents import FileInvalid, parse_approvals
from ssot.models import ApprovalPolicy, QuarantinedFile, RiskLevel, SsotFile, Task, TaskApprovals
from ssot.paths import POLICY_PATH, kind_of
from ssot.policy import (
    BUILT_IN,
    BUILT_IN_POLICY,
    Level,
    approval_status,
    parse_policy,
    policy_in_force,
)
from ssot.seals import approval_seal
from ssot.sync import sync
from ssot.verify import differences
from testing.api import make_user
from testing.content import commit, task_doc
from testing.factories import UserFactory
from testing.strategies import documents, encodings, examples, json_values

TWO_FOR_HIGH = {
    "levels": {
        "low": {"approvals": 1, "groups": ["approvers"]},
        "medium": {"approvals": 1, "groups": ["approvers"]},
        "high": {"approvals": 2, "groups": ["approvers"]},
    },
    "self_approval": False,
}


def _raw(document: object) -> bytes:
    return json.dumps(document).encode()


# -- the reader -------------------------------------------------------------------------------------


def test_the_spec_example_reads_as_two_approvers_for_high_risk():
    policy = parse_policy(_raw(TWO_FOR_HIGH), source="abc")
    assert policy.level("high") == Level(approvals=2, groups=("approvers",))
    assert policy.level("low") == Level(approvals=1, groups=("approvers",))
    assert (policy.self_approval, policy.source) == (False, "abc")
    assert policy.as_dict() == TWO_FOR_HIGH


def test_the_built_in_default_is_one_approver_of_the_group_approvers_everywhere():
    assert BUILT_IN_POLICY.source == BUILT_IN
    assert {name: BUILT_IN_POLICY.level(name) for name in RISK_LEVELS} == dict.fromkeys(
        RISK_LEVELS, Level(1, ("approvers",))
    )
    assert BUILT_IN_POLICY.self_approval is False


def test_a_level_left_out_keeps_the_built_in_default():
    policy = parse_policy(_raw({"levels": {"high": {"approvals": 3, "groups": ["leads"]}}}), source="x")
    assert policy.level("high") == Level(3, ("leads",))
    assert policy.level("medium") == Level(1, ("approvers",))


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [
        ({"levels": {"high": {"approvals": 0, "groups": ["a"]}}}, "levels.high.approvals", "less than"),
        ({"levels": {"high": {"approvals": 6, "groups": ["a"]}}}, "levels.high.approvals", "greater than"),
        ({"levels": {"high": {"approvals": True, "groups": ["a"]}}}, "levels.high.approvals", "integer"),
        ({"levels": {"high": {"approvals": 1.5, "groups": ["a"]}}}, "levels.high.approvals", "integer"),
        ({"levels": {"high": {"approvals": 1, "groups": []}}}, "levels.high.groups", "should be non-empty"),
        ({"levels": {"high": {"approvals": 1, "groups": ["a", "a"]}}}, "levels.high.groups", "non-unique"),
        (
            {"levels": {"high": {"approvals": 1, "groups": [""]}}},
            "levels.high.groups[0]",
            "should be non-empty",
        ),
        ({"levels": {"high": {"approvals": 1}}}, "levels.high", "'groups' is a required property"),
        ({"levels": {"hihg": {"approvals": 1, "groups": ["a"]}}}, "levels", "'hihg' was unexpected"),
        ({"self_approval": "no"}, "self_approval", "boolean"),
        ({"selfapproval": False}, "$", "'selfapproval' was unexpected"),
    ],
)
def test_an_invalid_policy_names_the_field_and_the_reason(document, path, fragment):
    with pytest.raises(FileInvalid) as caught:
        parse_policy(_raw(document), source="x")
    assert any(error["path"] == path and fragment in error["message"] for error in caught.value.errors), (
        caught.value.errors
    )


def test_every_violation_is_reported_at_once():
    document = {"levels": {"low": {"approvals": 9, "groups": []}}, "self_approval": 1}
    with pytest.raises(FileInvalid) as caught:
        parse_policy(_raw(document), source="x")
    assert {error["path"] for error in caught.value.errors} == {
        "levels.low.approvals",
        "levels.low.groups",
        "self_approval",
    }


def test_the_strict_reader_refuses_what_it_refuses_everywhere():
    with pytest.raises(FileInvalid, match="duplicate"):
        parse_policy(b'{"self_approval": false, "self_approval": true}', source="x")


def test_the_published_schema_is_the_one_the_reader_applies():
    assert json.loads(POLICY_SCHEMA_PATH.read_text(encoding="utf-8")) == build_policy_schema()
    Draft202012Validator.check_schema(build_policy_schema())
    assert tuple(RiskLevel.values) == RISK_LEVELS


levels = st.fixed_dictionaries(
    {
        "approvals": st.integers(min_value=1, max_value=5),
        "groups": st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4, unique=True),
    }
)
valid_policies = st.fixed_dictionaries(
    {},
    optional={
        "levels": st.dictionaries(st.sampled_from(RISK_LEVELS), levels),
        "self_approval": st.booleans(),
        "description": st.text(max_size=30),
    },
)


@settings(max_examples=examples(200))
@given(document=valid_policies)
def test_every_valid_policy_reads_and_round_trips(document):
    policy = parse_policy(json.dumps(document, ensure_ascii=False).encode(), source="s")
    assert parse_policy(_raw(policy.as_dict()), source="s") == policy
    for name, level in document.get("levels", {}).items():
        assert policy.level(name) == Level(level["approvals"], tuple(level["groups"]))
    assert policy.self_approval is document.get("self_approval", False)


policy_texts = documents(
    {
        "levels": json.dumps(TWO_FOR_HIGH["levels"]),
        "self_approval": "false",
    }
)


@settings(max_examples=examples(300))
@given(raw=st.one_of(encodings(policy_texts), encodings(json_values)))
def test_any_bytes_read_as_a_policy_or_a_refusal_with_reasons(raw):
    validator = Draft202012Validator(build_policy_schema())
    try:
        policy = parse_policy(raw, source="s")
    except FileInvalid as exc:
        assert exc.errors and all(error["path"] and error["message"] for error in exc.errors)
        return
    # What the reader accepts, the published schema accepts too, and it means the same policy.
    document = json.loads(raw)
    assert validator.is_valid(document)
    assert parse_policy(_raw(policy.as_dict()), source="s") == policy


approvals_texts = documents(
    {
        "task_id": '"T-1"',
        "blob_sha": json.dumps("a" * 40),
        "approvals": '[{"by": "alice", "at": "2026-11-30T10:00:00+00:00", "reason": ""}]',
    }
)


@settings(max_examples=examples(300))
@given(raw=st.one_of(encodings(approvals_texts), encodings(json_values)))
def test_any_bytes_read_as_approvals_or_a_refusal_with_reasons(raw):
    try:
        doc = parse_approvals("approvals/T-1.json", raw)
    except FileInvalid as exc:
        assert exc.errors and all(error["path"] and error["message"] for error in exc.errors)
        return
    assert doc.task_id == "T-1" and len(doc.task_blob_sha) in (40, 64)
    assert len(set(doc.by())) == len(doc.approvals), "approvers are distinct"


# -- the mirror --------------------------------------------------------------------------------------


@pytest.fixture
def store(any_store):
    return any_store


def test_the_policy_path_is_mirrored_and_only_it():
    assert kind_of(POLICY_PATH) == "policy"
    assert kind_of("policy/other.json") is None
    assert kind_of("approvals/T-1.json") == "approvals"
    assert kind_of("approvals/sub/T-1.json") is None


@pytest.mark.django_db
def test_no_file_is_the_built_in_default(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    assert policy_in_force() == BUILT_IN_POLICY


@pytest.mark.django_db
def test_a_valid_file_is_in_force_with_its_blob_sha(store):
    commit(store, {POLICY_PATH: TWO_FOR_HIGH})
    sync()
    policy = policy_in_force()
    assert policy.level("high").approvals == 2
    assert policy.source == store.entry(store.head(), POLICY_PATH).sha
    assert differences(store) == []


@pytest.mark.django_db
def test_an_invalid_file_is_quarantined_and_the_previous_policy_stays(store):
    commit(store, {POLICY_PATH: TWO_FOR_HIGH})
    sync()
    valid_sha = policy_in_force().source
    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 9, "groups": ["approvers"]}}}})
    sync()
    quarantined = QuarantinedFile.objects.get(path=POLICY_PATH)
    assert quarantined.errors[0]["path"] == "levels.high.approvals"
    assert policy_in_force().source == valid_sha
    assert policy_in_force().level("high").approvals == 2
    assert differences(store) == []
    # Fixed: in force, out of quarantine.
    commit(store, {POLICY_PATH: {"levels": {"high": {"approvals": 3, "groups": ["approvers"]}}}})
    sync()
    assert policy_in_force().level("high").approvals == 3
    assert not QuarantinedFile.objects.filter(path=POLICY_PATH).exists()
    # Deleted: the built-in default again.
    commit(store, deletes=(POLICY_PATH,))
    sync()
    assert policy_in_force() == BUILT_IN_POLICY
    assert not ApprovalPolicy.objects.exists()
    assert differences(store) == []


@pytest.mark.django_db
def test_verify_sees_a_missing_policy_row_and_a_resync_from_the_ledger_rebuilds_it(store):
    commit(store, {POLICY_PATH: TWO_FOR_HIGH})
    sync()
    ApprovalPolicy.objects.all().delete()
    assert differences(store) == ["policy/approvals.json: the row differs from the file"]
    SsotFile.objects.filter(path=POLICY_PATH).delete()
    sync(full=True)
    assert policy_in_force().level("high").approvals == 2
    assert differences(store) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"task_id": "T-2", "blob_sha": "a" * 40, "approvals": []}, "task_id"),
        ({"task_id": "T-1", "blob_sha": "nope", "approvals": []}, "blob_sha"),
        (
            {"task_id": "T-1", "blob_sha": "a" * 40, "approvals": [{"by": "", "at": "2026-11-01T09:00:00Z"}]},
            "approvals[0].by",
        ),
        (
            {"task_id": "T-1", "blob_sha": "a" * 40, "approvals": [{"by": "x", "at": "yesterday"}]},
            "approvals[0].at",
        ),
        (
            {
                "task_id": "T-1",
                "blob_sha": "a" * 40,
                "approvals": [
                    {"by": "x", "at": "2026-11-01T09:00:00Z"},
                    {"by": "x", "at": "2026-11-01T09:00:00Z"},
                ],
            },
            "approvals[1].by",
        ),
    ],
)
def test_an_invalid_approvals_file_is_quarantined_and_counts_nothing(store, content, problem):
    commit(store, {"approvals/T-1.json": content})
    sync()
    assert not TaskApprovals.objects.exists()
    assert problem in [error["path"] for error in QuarantinedFile.objects.get().errors]
    assert differences(store) == []


# -- approval_status ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approval_status_explains_who_may_approve_and_why_not(store):
    commit(
        store,
        {
            POLICY_PATH: {"levels": {"high": {"approvals": 2, "groups": ["operators"]}}},
            "tasks/T-1.json": task_doc(
                "T-1", status="awaiting_approval", risk_level="high", requested_by="olga"
            ),
        },
    )
    sync()
    task = Task.objects.get()
    operator = make_user("operator", username="oscar")
    requester = make_user("operator", username="olga")
    approver = make_user("approver", username="alice")
    agent = make_user("executor")
    admin = UserFactory(username="root", is_superuser=True)

    status = approval_status(task, operator)
    assert (status.level, status.need, status.have, status.groups) == ("high", 2, 0, ("operators",))
    assert (status.may_approve, status.may_reject, status.why_not) == (True, True, "")
    assert status.policy_source == policy_in_force().source

    refused = approval_status(task, requester)
    assert (refused.may_approve, refused.why_not_code, refused.may_reject) == (False, "requested_it", True)
    assert "olga requested task T-1" in refused.why_not

    outsider = approval_status(task, approver)
    assert (outsider.may_approve, outsider.may_reject, outsider.why_not_code) == (
        False,
        False,
        "not_in_group",
    )
    assert "only members of 'operators'" in outsider.why_not

    assert approval_status(task, agent).why_not == "Agents never approve or reject tasks."
    assert approval_status(task, admin).may_approve, "a superuser is a member of every group"
    medium = Task.objects.get()
    medium.risk_level = "medium"
    assert approval_status(medium, approver).may_approve, "allowed on another level"


@pytest.mark.django_db
def test_approval_status_shows_approvals_of_this_version_and_voids_older_ones(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high")})
    sync()
    task = Task.objects.get()
    entry = {"by": "alice", "at": "2026-11-30T10:00:00+00:00", "reason": "looks right"}
    seal = approval_seal(task_id="T-1", task_sha=task.blob_sha, by="alice", at=entry["at"])  # as recorded
    sealed = {**entry, "seal": seal}
    pending = {"task_id": "T-1", "blob_sha": task.blob_sha, "approvals": [sealed]}
    commit(store, {"approvals/T-1.json": pending})
    sync()
    alice = make_user("approver", username="alice")
    status = approval_status(task, alice)
    assert (status.have, status.approvals, status.voided) == (1, [entry], [])
    assert (status.may_approve, status.why_not_code) == (False, "already_approved")
    assert status.may_reject

    commit(
        store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval", risk_level="high", title="new")}
    )
    sync()
    changed = approval_status(Task.objects.get(), alice)
    assert (changed.have, changed.approvals, changed.voided) == (0, [], [entry])
    assert changed.may_approve


@pytest.mark.django_db
def test_approval_status_of_a_decided_task_offers_no_button(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1", status="approved", approvals=[{"by": "a", "at": "t"}])})
    sync()
    status = approval_status(Task.objects.get(), make_user("approver"))
    assert (status.may_approve, status.may_reject, status.why_not_code) == (False, False, "not_awaiting")
    assert status.approvals == [{"by": "a", "at": "t", "reason": ""}]


@pytest.mark.django_db
def test_the_policy_history_is_git_log_of_policy(ssot_path):
    from ssot.stores.factory import get_store

    store = get_store()
    commit(store, {POLICY_PATH: TWO_FOR_HIGH}, author="lead", message="policy: two approvers for high risk")
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    commit(
        store,
        {POLICY_PATH: {**TWO_FOR_HIGH, "self_approval": True}},
        author="lead",
        message="policy: allow self",
    )
    log = subprocess.run(
        ["git", "--git-dir", str(ssot_path), "log", "--format=%an: %s", "--", "policy/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout.splitlines() == [
        "lead: policy: allow self",
        "lead: policy: two approvers for high risk",
    ]
