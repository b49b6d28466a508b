"""GET /api/escalations/ and acknowledge / resolve (ssot.approve_task), written to the SSOT's audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

import amp
from ssot import services
from ssot.models import AuditEntry, Escalation
from ssot.stores.factory import reset_store
from testing.api import ROLES, jwt_client, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]


def _raise(
    task_id: str, *, severity: str = "critical", escalation_type: str = "heartbeat_timeout"
) -> Escalation:
    envelope = amp.build_escalation(
        task_id=task_id,
        escalation_type=escalation_type,
        severity=severity,
        triggered_by="heartbeat_monitor",
        description=f"trouble with {task_id}",
    )
    services.escalation_raise(envelope=envelope)
    return Escalation.objects.get(msg_id=envelope["msg_id"])


@pytest.fixture
def escalations(store):
    return {
        "critical": _raise("T-1"),
        "warning": _raise("T-2", severity="warning", escalation_type="ack_timeout"),
    }


@pytest.mark.parametrize("role", sorted(ROLES))
def test_reading_escalations_needs_a_staff_or_agent_account(escalations, role):
    response = jwt_client(make_user(role)).get("/api/escalations")
    assert response.status_code == (403 if role == "outsider" else 200)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"critical", "warning"}),
        ("severity=warning", {"warning"}),
        ("escalation_type=heartbeat_timeout", {"critical"}),
        ("task_id=T-2", {"warning"}),
        ("status=open", {"critical", "warning"}),
        ("status=resolved", set()),
    ],
)
def test_escalations_are_filtered(escalations, query, expected):
    body = jwt_client(make_user("staff")).get(f"/api/escalations/?{query}").json()
    assert {e["msg_id"] for e in body["results"]} == {escalations[name].msg_id for name in expected}


def test_an_invalid_status_filter_is_a_400(escalations):
    response = jwt_client(make_user("staff")).get("/api/escalations/?status=burning")
    assert response.status_code == 400


@pytest.mark.parametrize("role", sorted(ROLES))
def test_acknowledging_needs_the_approve_permission(escalations, role):
    escalation = escalations["critical"]
    response = jwt_client(make_user(role)).post(f"/api/escalations/{escalation.pk}/acknowledge/")
    if role in ("approver", "operator"):
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["acknowledged_by"]) == ("acknowledged", f"{role}-user")
    else:
        assert response.status_code == 403
        assert Escalation.objects.get(pk=escalation.pk).status == "open"


def test_an_escalation_is_found_by_its_msg_id_too(escalations):
    escalation = escalations["warning"]
    response = jwt_client(make_user("approver")).post(f"/api/escalations/{escalation.msg_id}/acknowledge")
    assert response.status_code == 200
    assert AuditEntry.objects.filter(msg_id=escalation.msg_id, action="escalation_acknowledged").exists()


def test_acknowledging_twice_is_a_409(escalations):
    client = jwt_client(make_user("approver"))
    path = f"/api/escalations/{escalations['critical'].pk}/acknowledge/"
    client.post(path)
    response = client.post(path)
    assert response.status_code == 409
    assert response.json()["code"] == "wrong_state"


def test_resolving_writes_the_reason_to_the_audit_log(escalations, store):
    escalation = escalations["critical"]
    response = jwt_client(make_user("operator")).post(
        f"/api/escalations/{escalation.pk}/resolve/", {"reason": "executor restarted"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["resolved_by"], body["resolution"]) == (
        "resolved",
        "operator-user",
        "executor restarted",
    )
    line = AuditEntry.objects.get(msg_id=escalation.msg_id, action="escalation_resolved")
    assert line.in_ssot
    assert "executor restarted" in store.read(store.entry(store.head(), line.ssot_path).sha).decode()


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}])
def test_resolving_without_a_reason_is_a_422(escalations, body):
    response = jwt_client(make_user("approver")).post(
        f"/api/escalations/{escalations['critical'].pk}/resolve/", body, format="json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "reason_required"


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"{oops", 400), (b'{"reason": [1]}', 400), (b'{"reason": "' + b"x" * 5000 + b'"}', 422)],
)
def test_bad_resolve_bodies_are_refused(escalations, raw, status):
    client = jwt_client(make_user("approver"))
    response = client.generic(
        "POST",
        f"/api/escalations/{escalations['critical'].pk}/resolve/",
        raw,
        content_type="application/json",
    )
    assert response.status_code == status
    assert Escalation.objects.get(pk=escalations["critical"].pk).status == "open"


def test_resolving_a_resolved_escalation_is_a_409(escalations):
    client = jwt_client(make_user("approver"))
    path = f"/api/escalations/{escalations['critical'].pk}/resolve/"
    client.post(path, {"reason": "done"}, format="json")
    assert client.post(path, {"reason": "again"}, format="json").status_code == 409


@pytest.mark.parametrize(
    "escalation_id",
    ["999999", "99999999999999999999999", "escalation-T-404-1", "..", "..%2Fx", "a%00b", "-1", "%C2%B2"],
)
def test_an_unknown_escalation_is_a_404(escalations, escalation_id):
    response = jwt_client(make_user("approver")).post(f"/api/escalations/{escalation_id}/acknowledge/")
    assert response.status_code == 404


def test_anonymous_handling_is_a_401(escalations):
    response = jwt_client(None).post(f"/api/escalations/{escalations['critical'].pk}/acknowledge/")
    assert response.status_code == 401


def test_handling_while_the_ssot_is_unreachable_is_a_503(escalations, settings, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings.SSOT_LOCAL_PATH = blocker
    reset_store()
    response = jwt_client(make_user("approver")).post(
        f"/api/escalations/{escalations['critical'].pk}/acknowledge/"
    )
    assert response.status_code == 503
    assert Escalation.objects.get(pk=escalations["critical"].pk).status == "open"
