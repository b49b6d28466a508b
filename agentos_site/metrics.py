"""GET /metrics: the control plane in the Prometheus text format (SPEC section 15), with prometheus-client.

What the database knows (the sync's state, quarantined files, webhook deliveries, notifications,
escalations, agents) is read when Prometheus scrapes, by `ControlPlaneCollector`: the same answer from
every daphne process, nothing to keep in step. The write path's commits and conflicts are counted in
the process that made them (ssot/metrics.py), as are prometheus-client's own process and Python
metrics. django-prometheus was considered: its request and model metrics count per process too, and it
would add a middleware to every request for figures this product does not need.

`METRICS_TOKEN`, when set, is required as a bearer token (compared in constant time); else a 401.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

import ssot.metrics  # noqa: F401 (registers the write path's counters)
from monitoring.models import Notification
from ssot import budget
from ssot.models import Agent, Escalation, QuarantinedFile, SsotFile, SyncState
from ssot.stores.factory import branch, get_store, repository_label
from webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)

# Webhook processing latency is read from the latest deliveries processed within this window.
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_SAMPLE = 1000
QUANTILES = (0.5, 0.9, 0.99, 1.0)


def _gauge(name: str, documentation: str, value: float | None = None, labels: list[str] | None = None) -> Any:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    if value is not None:
        family.add_metric([], value)
    return family


def _counts(name: str, documentation: str, label: str, rows: dict[str, int], every: list[str]) -> Metric:
    """One sample per value of `label`: each of `every` (zero when absent), then any other value found."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in [*every, *sorted(set(rows) - set(every))]:
        family.add_metric([value], rows.get(value, 0))
    return family


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ControlPlaneCollector(Collector):
    """Figures read from the database (and the SSOT head) at each scrape."""

    def describe(self) -> list[Metric]:
        # Without a describe, the registry would collect (query the database) as it registers us, at import.
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._from_database())
        except DatabaseError as exc:
            # Our outage is itself a figure: the scrape still answers, with the process's own metrics.
            log.warning("metrics: the database is unavailable: %s", type(exc).__name__)
            yield _gauge("agentos_database_up", "Whether the database answered this scrape.", 0)
            return
        yield _gauge("agentos_database_up", "Whether the database answered this scrape.", 1)
        yield from families

    def _from_database(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._sync(now)
        quarantined = dict(
            QuarantinedFile.objects.values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
        )
        yield _counts(
            "agentos_ssot_quarantined_files",
            "SSOT files quarantined (not mirrored) by the sync, by kind.",
            "kind",
            quarantined,
            list(SsotFile.Kind.values),
        )
        yield from self._webhooks(now)
        yield from self._notifications(now)
        yield from self._escalations()
        agents = dict(Agent.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        yield _counts(
            "agentos_agents", "Monitored agents by status.", "status", agents, list(Agent.Status.values)
        )

    def _sync(self, now: Any) -> Iterator[Metric]:
        state = SyncState.objects.filter(
            backend=settings.SSOT_BACKEND, repository=repository_label(), branch=branch()
        ).first()
        mirrored = state.head if state else ""
        yield from self._write_budget()
        try:
            head = get_store().head() or ""
        except Exception as exc:
            log.warning("metrics: the SSOT head could not be read: %s", type(exc).__name__)
            yield _gauge("agentos_ssot_up", "Whether the SSOT head could be read at this scrape.", 0)
        else:
            yield _gauge("agentos_ssot_up", "Whether the SSOT head could be read at this scrape.", 1)
            yield _gauge(
                "agentos_ssot_mirror_current",
                "1 when the mirrored head is the SSOT head read at this scrape, 0 while the mirror lags.",
                int(head == mirrored),
            )
        if state is None:
            return
        if state.last_success_at:
            yield _gauge(
                "agentos_ssot_mirror_age_seconds",
                "Seconds since a sync last brought the mirror to the SSOT head (the mirrored head's age).",
                (now - state.last_success_at).total_seconds(),
            )
        seconds = (state.last_report or {}).get("seconds")
        if isinstance(seconds, int | float):
            yield _gauge("agentos_ssot_sync_duration_seconds", "How long the last sync took.", seconds)
        yield _gauge(
            "agentos_ssot_sync_consecutive_errors",
            "Syncs that failed in a row (0 while the sync succeeds).",
            state.consecutive_errors,
        )
        if state.last_error_at:
            yield _gauge(
                "agentos_ssot_sync_last_error_timestamp_seconds",
                "When a sync last failed (Unix time).",
                state.last_error_at.timestamp(),
            )

    def _write_budget(self) -> Iterator[Metric]:
        """GitHub's write budget left (ssot.budget), shared by every process; the local store has none."""
        try:
            store = get_store()
        except Exception as exc:
            log.warning("metrics: the SSOT store could not be opened: %s", type(exc).__name__)
            return
        if store.backend != "github":
            return
        minute, hour = budget.remaining(store)
        family = GaugeMetricFamily(
            "agentos_ssot_write_budget_remaining",
            "Content-creating GitHub requests that would fit now in the last minute's and hour's window "
            "(GITHUB_WRITES_PER_MIN, GITHUB_WRITES_PER_HOUR).",
            labels=["window"],
        )
        family.add_metric(["minute"], minute)
        family.add_metric(["hour"], hour)
        yield family

    def _webhooks(self, now: Any) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "agentos_webhook_deliveries",
            "Webhook deliveries kept, by source and state.",
            labels=["source", "state"],
        )
        rows = WebhookDelivery.objects.values_list("source", "state").annotate(n=Count("id"))
        found = {(source, state): n for source, state, n in rows.values_list("source", "state", "n")}
        for source in sorted({source for source, _ in found} | {"github", "xcode"}):
            for state in WebhookDelivery.State.values:
                family.add_metric([source, state], found.get((source, state), 0))
        yield family
        processed = list(
            WebhookDelivery.objects.filter(processed_at__gte=now - LATENCY_WINDOW)
            .order_by("-processed_at")
            .values_list("received_at", "processed_at")[:LATENCY_SAMPLE]
        )
        latency = GaugeMetricFamily(
            "agentos_webhook_processing_latency_seconds",
            "From a delivery's arrival to the end of its processing: quantiles over the latest "
            f"{LATENCY_SAMPLE} processed in the last {int(LATENCY_WINDOW.total_seconds() // 60)} minutes.",
            labels=["quantile"],
        )
        ordered = sorted(
            max(0.0, (done - received).total_seconds()) for received, done in processed if done is not None
        )
        if ordered:
            for q in QUANTILES:
                latency.add_metric([str(q)], _quantile(ordered, q))
        yield latency

    def _notifications(self, now: Any) -> Iterator[Metric]:
        states = dict(
            Notification.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n")
        )
        yield _counts(
            "agentos_notifications",
            "Notifications kept, by state (pending: the backlog still to send).",
            "state",
            states,
            list(Notification.State.values),
        )
        oldest = (
            Notification.objects.filter(state=Notification.State.PENDING)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        yield _gauge(
            "agentos_notification_backlog_age_seconds",
            "Age of the oldest notification not sent yet (0 with none pending).",
            (now - oldest).total_seconds() if oldest else 0,
        )

    def _escalations(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "agentos_escalations_open",
            "Escalations not resolved yet, by status (open, acknowledged) and severity.",
            labels=["status", "severity"],
        )
        rows = (
            Escalation.objects.exclude(status=Escalation.Status.RESOLVED)
            .values_list("status", "severity")
            .annotate(n=Count("id"))
            .values_list("status", "severity", "n")
        )
        found = {(status, severity): n for status, severity, n in rows}
        for status in (Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED):
            for severity in sorted({severity for _, severity in found} | {"critical", "warning"}):
                family.add_metric([status, severity], found.get((status, severity), 0))
        yield family


REGISTRY.register(ControlPlaneCollector())


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format (or OpenMetrics, if asked for); a bearer `METRICS_TOKEN` when one is set."""
    if not _authorized(request):
        response = JsonResponse(
            {"detail": "A valid metrics token is required.", "code": "not_authenticated"}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(REGISTRY), content_type=content_type)
