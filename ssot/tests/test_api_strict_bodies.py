"""POST /api/messages/ refuses what the strict reader refuses, with its reason, before any commit."""

from __future__ import annotations

import json

import pytest

from ssot.models import Message
from ssot.sync import sync
from testing.api import jwt_client, make_user
from testing.content import commit, dispatch, read_json, task_doc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

MESSAGE = dispatch("T-1")


@pytest.fixture
def coordinator():
    return jwt_client(make_user("coordinator"))


def _with(field: str, value: str) -> bytes:
    """The valid message as JSON text with one member's value replaced by the text `value`."""
    return json.dumps({**MESSAGE, field: "@@"}).replace('"@@"', value).encode()


def _in_payload(value: str) -> bytes:
    return _with("payload", f'{{"branch": "feature/x", "acceptance_criteria": ["ok"], "extra": {value}}}')


# Every kind the strict reader refuses, as an agent could send it: (body, the reason in the answer).
UNDECODABLE = {
    "invalid UTF-8": (_in_payload('"@"').replace(b"@", b"\xff"), "not UTF-8 text (invalid start byte"),
    "encoded surrogate": (_in_payload('"@"').replace(b"@", b"\xed\xa0\x80"), "a surrogate encoded"),
    "byte order mark": (b"\xef\xbb\xbf" + _in_payload("1"), "byte order mark"),
    "UTF-16": (_in_payload("1").decode().encode("utf-16"), "UTF-16 text"),
    "escaped lone surrogate": (_in_payload('"\\ud800"'), "lone surrogate (an unpaired"),
    "lone surrogate in a key": (_with("payload", '{"\\udfff": 1}'), "lone surrogate"),
    "NaN": (_in_payload("NaN"), "NaN is not a JSON number"),
    "Infinity": (_in_payload("Infinity"), "Infinity is not a JSON number"),
    "-Infinity": (_in_payload("-Infinity"), "-Infinity is not a JSON number"),
    "float overflow": (_in_payload("1e400"), "the number 1e400 is too large for a 64-bit float"),
    "long number": (_in_payload("1" * 101), "a number of 101 digits: at most 100 are read"),
    "deep nesting": (_in_payload("[" * 950 + "]" * 950), "nested 952 deep: at most 64 levels"),
    "duplicate key": (_with("to", '"executor", "to": "reviewer"'), "duplicate key 'to' in one object"),
    "trailing data": (_in_payload("1") + b" {}", "data after the JSON value"),
    "not JSON": (b"{msg_id: 1}", "not valid JSON"),
}


@pytest.mark.parametrize("kind", UNDECODABLE)
def test_an_undecodable_message_is_a_400_with_its_reason_and_nothing_is_written(store, coordinator, kind):
    body, reason = UNDECODABLE[kind]
    response = coordinator.generic("POST", "/api/messages/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith("Malformed request body: ")
    assert reason in detail
    assert store.head() is None


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (_with("ack_timeout_sec", str(2**63)), "ack_timeout_sec", "must be <= 9223372036854775807"),
        (_with("ack_timeout_sec", "1e30"), "ack_timeout_sec", "must be <= 9223372036854775807"),
        (
            _with("timestamp", '"9999-12-31T23:00:00-05:00"'),
            "timestamp",
            "out of range once converted to UTC",
        ),
        (
            _with("timestamp", '"0001-01-01T00:30:00+01:00"'),
            "timestamp",
            "out of range once converted to UTC",
        ),
        (b"[]", "$", "must be a JSON object, not array"),
    ],
)
def test_a_message_that_cannot_become_a_row_is_a_422_before_anything_is_written(
    store, coordinator, body, path, reason
):
    response = coordinator.generic("POST", "/api/messages/", body, content_type="application/json")
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert any(error["path"] == path and reason in error["message"] for error in errors), errors
    assert store.head() is None


def test_a_body_declared_in_another_charset_is_a_400(store, coordinator):
    body = json.dumps(MESSAGE).encode("utf-16")
    response = coordinator.generic(
        "POST", "/api/messages/", body, content_type="application/json; charset=utf-16"
    )
    assert response.status_code == 400
    assert "must be UTF-8" in response.json()["detail"]
    assert store.head() is None


def test_a_deep_payload_is_refused_before_the_commit_and_never_reaches_the_readers(store, coordinator):
    commit(store, {"tasks/T-1.json": task_doc("T-1")})
    sync()
    head = store.head()
    response = coordinator.generic(
        "POST", "/api/messages/", _in_payload("[" * 800 + "]" * 800), content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested 802 deep" in response.json()["detail"]
    assert store.head() == head
    sync()
    assert coordinator.get("/api/messages/").status_code == 200
    assert coordinator.get("/api/tasks/T-1/").status_code == 200
    assert not Message.objects.exists()


def test_a_message_at_the_limits_is_accepted(store, coordinator):
    deepest = "[" * 62 + "]" * 62  # the envelope and the payload are two levels: 64 in all
    body = _in_payload(deepest).replace(b'"ack_timeout_sec": 0', b'"ack_timeout_sec": 9223372036854775807')
    response = coordinator.generic("POST", "/api/messages/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    row = Message.objects.get()
    assert row.ack_timeout_sec == 2**63 - 1
    assert row.ack_deadline.year == 9999
    assert coordinator.get("/api/messages/").status_code == 200


def test_an_ack_over_a_quarantined_ack_file_replaces_it(store, coordinator):
    commit(store, {f"messages/{MESSAGE['msg_id']}.json": MESSAGE})
    commit(store, {f"acks/{MESSAGE['msg_id']}.json": b'{"msg_id": "x", "at": NaN}'})
    sync()
    executor = jwt_client(make_user("executor"))
    response = executor.post(f"/api/messages/{MESSAGE['msg_id']}/ack/")
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert read_json(store, f"acks/{MESSAGE['msg_id']}.json")["by"] == "executor"
    assert Message.objects.get().ack_state == "acked"


def test_a_task_at_the_limits_of_the_reader_is_mirrored_and_read_back(store, coordinator):
    text = json.dumps(task_doc("T-1", status="awaiting_approval")).replace(
        '"task_id"',
        '"deep": '
        + "[" * 63
        + "]" * 63
        + ', "wide": '
        + "9" * 100
        + ', "tiny": 5e-324, "pair": "\\ud83d\\ude00", "task_id"',
    )
    commit(store, {"tasks/T-1.json": text.encode()})
    assert sync().quarantined == []
    response = coordinator.get("/api/tasks/T-1/")
    assert response.status_code == 200, response.content
    document = response.json()["document"]
    assert (document["wide"], document["pair"]) == (int("9" * 100), "\U0001f600")
    assert coordinator.get("/api/tasks/").status_code == 200
