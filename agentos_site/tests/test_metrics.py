"""GET /metrics: the Prometheus text format, what it says about the mirror, the webhooks, the notifications,
the escalations and the agents, the write path's counters, and the METRICS_TOKEN that guards it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from core.errors import Conflict
from monitoring.models import Notification
from ssot import services
from ssot.documents import dump_json
from ssot.models import Agent, Escalation
from ssot.sync import sync
from testing.content import commit, task_doc
from testing.factories import (
    AgentFactory,
    EscalationFactory,
    NotificationFactory,
    QuarantinedFileFactory,
    WebhookDeliveryFactory,
)
from testing.outage import database_down
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("deciders")]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def synced(store):
    commit(store, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval")})
    sync()
    return store


# -- what it says ------------------------------------------------------------------------------------


def test_the_mirror_is_current_and_its_age_and_sync_are_shown(client, synced):
    samples = scrape(client)
    assert value(samples, "agentos_database_up") == 1
    assert value(samples, "agentos_ssot_up") == 1
    assert value(samples, "agentos_ssot_mirror_current") == 1
    assert 0 <= value(samples, "agentos_ssot_mirror_age_seconds") < 60
    assert value(samples, "agentos_ssot_sync_duration_seconds") >= 0
    assert value(samples, "agentos_ssot_sync_consecutive_errors") == 0


def test_a_push_not_yet_mirrored_shows_the_mirror_behind(client, synced):
    commit(synced, {"tasks/T-2.json": task_doc("T-2")})
    assert value(scrape(client), "agentos_ssot_mirror_current") == 0
    sync()
    assert value(scrape(client), "agentos_ssot_mirror_current") == 1


def test_sync_failures_are_shown(client, synced):
    from ssot.models import SyncState

    failed_at = timezone.now()
    SyncState.objects.update(consecutive_errors=3, last_error="tasks/x.json: boom", last_error_at=failed_at)
    samples = scrape(client)
    assert value(samples, "agentos_ssot_sync_consecutive_errors") == 3
    assert value(samples, "agentos_ssot_sync_last_error_timestamp_seconds") == pytest.approx(
        failed_at.timestamp()
    )


def test_quarantined_files_are_counted_by_kind(client, synced):
    QuarantinedFileFactory.create_batch(2)
    QuarantinedFileFactory(path="messages/bad.json", kind="message")
    samples = scrape(client)
    assert value(samples, "agentos_ssot_quarantined_files", kind="task") == 2
    assert value(samples, "agentos_ssot_quarantined_files", kind="message") == 1
    assert value(samples, "agentos_ssot_quarantined_files", kind="audit") == 0


def test_webhook_deliveries_by_state_and_their_processing_latency(client, synced):
    now = timezone.now()
    for seconds in (0.1, 0.2, 0.3, 4.0):
        delivery = WebhookDeliveryFactory.create(state=WebhookDelivery.State.DONE)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            received_at=now - timedelta(seconds=seconds), processed_at=now
        )
    WebhookDeliveryFactory(state=WebhookDelivery.State.FAILED)
    WebhookDeliveryFactory(source="xcode", state=WebhookDelivery.State.PENDING)
    samples = scrape(client)
    assert value(samples, "agentos_webhook_deliveries", source="github", state="done") == 4
    assert value(samples, "agentos_webhook_deliveries", source="github", state="failed") == 1
    assert value(samples, "agentos_webhook_deliveries", source="xcode", state="pending") == 1
    assert value(samples, "agentos_webhook_deliveries", source="xcode", state="done") == 0
    assert value(samples, "agentos_webhook_processing_latency_seconds", quantile="0.5") == pytest.approx(0.3)
    assert value(samples, "agentos_webhook_processing_latency_seconds", quantile="1.0") == pytest.approx(4.0)


def test_the_notification_backlog_and_its_age(client, synced):
    NotificationFactory.create_batch(2)
    NotificationFactory(state=Notification.State.SENT)
    Notification.objects.filter(state=Notification.State.PENDING).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    samples = scrape(client)
    assert value(samples, "agentos_notifications", state="pending") == 2
    assert value(samples, "agentos_notifications", state="sent") == 1
    assert value(samples, "agentos_notifications", state="failed") == 0
    assert 600 <= value(samples, "agentos_notification_backlog_age_seconds") < 660


def test_open_escalations_by_status_and_severity_and_agents_by_status(client, synced):
    EscalationFactory.create_batch(2)
    EscalationFactory(severity="warning", status=Escalation.Status.ACKNOWLEDGED)
    EscalationFactory(status=Escalation.Status.RESOLVED)
    AgentFactory(name="executor", status=Agent.Status.TIMEOUT)
    AgentFactory(name="reviewer", status=Agent.Status.OK)
    samples = scrape(client)
    assert value(samples, "agentos_escalations_open", status="open", severity="critical") == 2
    assert value(samples, "agentos_escalations_open", status="acknowledged", severity="warning") == 1
    assert value(samples, "agentos_escalations_open", status="acknowledged", severity="critical") == 0
    assert value(samples, "agentos_agents", status="timeout") == 1
    assert value(samples, "agentos_agents", status="ok") == 1
    assert value(samples, "agentos_agents", status="monitor") == 0


# -- the write path's counters (this process) -----------------------------------------------------------


def test_each_commit_of_the_write_path_is_counted(client, synced):
    before = value(scrape(client), "agentos_ssot_commits_total")
    services.task_approve(task_id="T-1", actor="alice")
    assert value(scrape(client), "agentos_ssot_commits_total") == before + 1


def _race(store, monkeypatch, *, every_time: bool) -> None:
    """A real push lands between the draft and its commit (every time, or only the first)."""
    real_commit = store.commit
    pushes: list[str] = []

    def push_first(**kwargs):
        if every_time or not pushes:
            document = task_doc("T-1", status="awaiting_approval", v=len(pushes))
            pushes.append(
                real_commit(
                    parent=store.head(),
                    writes={"tasks/T-1.json": dump_json(document)},
                    message="coordinator edits",
                    author="coordinator",
                )
            )
        return real_commit(**kwargs)

    monkeypatch.setattr(store, "commit", push_first)


def test_a_conflict_with_a_concurrent_push_is_counted(client, synced, monkeypatch):
    before = scrape(client)
    _race(synced, monkeypatch, every_time=False)
    services.task_approve(task_id="T-1", actor="alice")
    after = scrape(client)
    assert (
        value(after, "agentos_ssot_write_conflicts_total")
        == value(before, "agentos_ssot_write_conflicts_total") + 1
    )
    assert value(after, "agentos_ssot_writes_refused_total") == value(
        before, "agentos_ssot_writes_refused_total"
    )


def test_a_change_given_up_after_every_retry_is_counted(client, synced, monkeypatch, settings):
    settings.SSOT_WRITE_RETRIES = 2
    before = value(scrape(client), "agentos_ssot_writes_refused_total")
    _race(synced, monkeypatch, every_time=True)
    with pytest.raises(Conflict):
        services.task_approve(task_id="T-1", actor="alice")
    assert value(scrape(client), "agentos_ssot_writes_refused_total") == before + 1


# -- availability and the token -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_githubs_write_budget_left_is_shown_for_the_github_store(client, github_ssot, settings):
    settings.GITHUB_WRITES_PER_MIN, settings.GITHUB_WRITES_PER_HOUR = 80, 500
    commit(github_ssot, {"tasks/T-1.json": task_doc("T-1", status="awaiting_approval")})
    sync()
    before = scrape(client)
    assert value(before, "agentos_ssot_write_budget_remaining", window="minute") == 80
    assert value(before, "agentos_ssot_write_budget_remaining", window="hour") == 500
    services.task_override(task_id="T-1", actor="alice", reason="parked", status="parked")
    after = scrape(client)
    assert value(after, "agentos_ssot_write_budget_remaining", window="minute") == 80 - 3  # tree, commit, ref
    assert value(after, "agentos_ssot_write_budget_remaining", window="hour") == 500 - 3


def test_the_local_store_has_no_write_budget_to_show(client, synced):
    assert not [key for key in scrape(client) if key[0] == "agentos_ssot_write_budget_remaining"]


def test_a_scrape_during_a_database_outage_says_so_instead_of_failing(client, synced, tmp_path):
    with database_down(tmp_path / "unreachable"):
        samples = scrape(client)
    assert value(samples, "agentos_database_up") == 0
    assert ("agentos_agents", (("status", "ok"),)) not in samples
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in samples)


def test_without_a_token_configured_metrics_are_open(client, synced, settings):
    settings.METRICS_TOKEN = ""
    assert value(scrape(client), "agentos_database_up") == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic c2VjcmV0LW1ldHJpY3MtdG9rZW4=", "secret-metrics-token", "Bearer "],
)
def test_with_a_token_configured_anything_else_is_a_401(client, synced, settings, authorization):
    settings.METRICS_TOKEN = "secret-metrics-token"
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json() == {"detail": "A valid metrics token is required.", "code": "not_authenticated"}
    assert b"agentos_" not in response.content


def test_with_a_token_configured_the_bearer_gets_the_metrics(client, synced, settings):
    settings.METRICS_TOKEN = "secret-metrics-token"
    samples = scrape(client, Authorization="Bearer secret-metrics-token")
    assert value(samples, "agentos_database_up") == 1


def test_openmetrics_is_served_to_whoever_asks_for_it(client, synced):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_registering_the_collector_reads_nothing(django_assert_num_queries):
    from prometheus_client import CollectorRegistry

    from agentos_site.metrics import ControlPlaneCollector

    with django_assert_num_queries(0):
        CollectorRegistry(auto_describe=True).register(ControlPlaneCollector())
