"""The other admin pages: read-only mirrors, escaped raw content, and the escalations' actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages

import amp
from monitoring.models import Notification
from ssot import services
from ssot.models import Ack, AuditEntry, Escalation, Message, QuarantinedFile, SyncState
from testing.api import make_user
from testing.factories import (
    AckFactory,
    AgentFactory,
    AuditEntryFactory,
    MessageFactory,
    QuarantinedFileFactory,
    SyncStateFactory,
    WebhookDeliveryFactory,
)
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

ESCALATIONS = "/admin/ssot/escalation/"


@pytest.fixture
def rows():
    """One row of every read-only model, some with hostile content."""
    return {
        "message": MessageFactory(payload={"summary": "<img src=x onerror=alert(1)>"}),
        "ack": AckFactory(),
        "agent": AgentFactory(name="executor"),
        "audit": AuditEntryFactory(detail="<script>alert('audit')</script>"),
        "quarantined": QuarantinedFileFactory(
            raw=b'{"task_id": "<script>alert(2)</script>", \xff',
            errors=[{"path": "$", "message": "not valid JSON <b>here</b>"}],
        ),
        "delivery": WebhookDeliveryFactory(body=b'{"zen": "<script>alert(3)</script>"}'),
        "sync": SyncStateFactory(),
        "notification": Notification.objects.create(title="Escalation", body="<i>executor</i> is silent"),
    }


PAGES = {
    "message": "/admin/ssot/message/",
    "ack": "/admin/ssot/ack/",
    "agent": "/admin/ssot/agent/",
    "audit": "/admin/ssot/auditentry/",
    "quarantined": "/admin/ssot/quarantinedfile/",
    "delivery": "/admin/webhooks/webhookdelivery/",
    "sync": "/admin/ssot/syncstate/",
    "notification": "/admin/monitoring/notification/",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_staff_read_every_page_and_change_nothing(rows, client, name):
    client.force_login(make_user("operator"))
    row = rows[name]
    assert client.get(PAGES[name]).status_code == 200
    page = client.get(f"{PAGES[name]}{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(f"{PAGES[name]}add/").status_code == 403
    assert client.get(f"{PAGES[name]}{row.pk}/delete/").status_code == 403
    assert client.post(f"{PAGES[name]}{row.pk}/change/", {}).status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("message", "&lt;img src=x onerror=alert(1)&gt;"),
        ("audit", "&lt;script&gt;alert(&#x27;audit&#x27;)&lt;/script&gt;"),
        ("quarantined", "&lt;script&gt;alert(2)&lt;/script&gt;"),
        ("quarantined", "not valid JSON &lt;b&gt;here&lt;/b&gt;"),
        ("delivery", "&lt;script&gt;alert(3)&lt;/script&gt;"),
        ("notification", "&lt;i&gt;executor&lt;/i&gt; is silent"),
    ],
)
def test_raw_content_is_shown_escaped(rows, client, name, escaped):
    client.force_login(make_user("staff"))
    html = client.get(f"{PAGES[name]}{rows[name].pk}/change/").content.decode()
    assert escaped in html
    assert "<script>alert" not in html


def test_a_quarantined_file_with_invalid_utf8_is_shown_with_its_errors(rows, client):
    client.force_login(make_user("staff"))
    html = client.get(f"{PAGES['quarantined']}{rows['quarantined'].pk}/change/").content.decode()
    assert "\ufffd" in html
    assert "<code>$</code>" in html


def test_the_index_lists_the_console_for_staff_without_permissions(rows, client):
    client.force_login(make_user("staff"))
    html = client.get("/admin/").content.decode()
    for model in (
        "Tasks",
        "Messages",
        "Escalations",
        "Audit entries",
        "Quarantined files",
        "Webhook deliveries",
    ):
        assert model in html


# -- escalations -----------------------------------------------------------------------------------


@pytest.fixture
def escalations(store):
    found = []
    for task_id in ("T-1", "T-2"):
        envelope = amp.build_escalation(
            task_id=task_id,
            escalation_type="ack_timeout",
            severity="warning",
            triggered_by="ack_monitor",
            description=f"nobody acknowledged {task_id}",
        )
        services.escalation_raise(envelope=envelope)
        found.append(Escalation.objects.get(msg_id=envelope["msg_id"]))
    return found


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_escalation_page_shows_its_payload(escalations, client):
    client.force_login(make_user("staff"))
    html = client.get(f"{ESCALATIONS}{escalations[0].pk}/change/").content.decode()
    assert "nobody acknowledged T-1" in html
    assert "&quot;triggered_by&quot;: &quot;ack_monitor&quot;" in html


def test_escalations_are_acknowledged_one_message_each(escalations, client):
    client.force_login(make_user("approver"))
    first, second = escalations
    services.escalation_acknowledge(escalation_id=first.pk, actor="someone")
    response = client.post(
        ESCALATIONS,
        {"action": "acknowledge_escalations", ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
        follow=True,
    )
    assert texts(response) == [
        f"{first.msg_id}: not acknowledged. Escalation {first.msg_id} is acknowledged.",
        f"{second.msg_id}: acknowledged.",
    ]
    second.refresh_from_db()
    assert (second.status, second.acknowledged_by) == ("acknowledged", "approver-user")


def test_escalations_are_resolved_with_a_reason_through_a_form(escalations, client, store):
    client.force_login(make_user("approver"))
    target = escalations[0]
    form = client.post(ESCALATIONS, {"action": "resolve_escalations", ACTION_CHECKBOX_NAME: [target.pk]})
    assert form.status_code == 200
    assert 'name="reason"' in form.content.decode()
    response = client.post(
        ESCALATIONS,
        {
            "action": "resolve_escalations",
            ACTION_CHECKBOX_NAME: [target.pk],
            "apply": "yes",
            "reason": "restarted",
        },
        follow=True,
    )
    assert texts(response) == [f"{target.msg_id}: resolved."]
    target.refresh_from_db()
    assert (target.status, target.resolution) == ("resolved", "restarted")
    line = AuditEntry.objects.get(msg_id=target.msg_id, action="escalation_resolved")
    assert "restarted" in store.read(store.entry(store.head(), line.ssot_path).sha).decode()


def test_resolving_without_a_reason_changes_nothing(escalations, client):
    client.force_login(make_user("approver"))
    target = escalations[0]
    response = client.post(
        ESCALATIONS,
        {"action": "resolve_escalations", ACTION_CHECKBOX_NAME: [target.pk], "apply": "yes", "reason": ""},
    )
    assert response.status_code == 200
    assert texts(response) == ["A reason is required to resolve escalations; nothing was changed."]
    assert Escalation.objects.get(pk=target.pk).status == "open"


@pytest.mark.parametrize("action", ["acknowledge_escalations", "resolve_escalations"])
def test_staff_without_the_permission_neither_see_nor_use_escalation_actions(escalations, client, action):
    client.force_login(make_user("staff"))
    assert client.get(ESCALATIONS).context["action_form"] is None
    target = escalations[0]
    response = client.post(
        ESCALATIONS, {"action": action, ACTION_CHECKBOX_NAME: [target.pk], "apply": "yes", "reason": "x"}
    )
    assert response.status_code == 403
    assert Escalation.objects.get(pk=target.pk).status == "open"


def test_no_mirrored_model_can_be_added_by_a_superuser_either(client, db):
    client.force_login(make_user("operator", is_superuser=True))
    for model in (Message, Ack, AuditEntry, QuarantinedFile, WebhookDelivery, SyncState, Escalation):
        path = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"
        assert client.get(path).status_code == 403, path
