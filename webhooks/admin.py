"""Webhook deliveries in the admin: read-only, headers and body shown verbatim (escaped and bounded)."""

from __future__ import annotations

from django.contrib import admin

from ssot.admin import DateFilter, MirroredAdmin, pretty_bytes, pretty_json
from webhooks.models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(MirroredAdmin):
    list_display = ["received_at", "source", "event", "action", "state", "attempts", "guid"]
    # A date filter, not a date hierarchy (docs/design.md, "Lists that only grow"): a month of deliveries
    # from a busy repository is tens of thousands of rows.
    list_filter = ["source", "state", "event", ("received_at", DateFilter)]
    search_fields = ["guid", "event", "error"]
    fields = [
        "source",
        "guid",
        "event",
        "action",
        "state",
        "attempts",
        "next_attempt_at",
        "received_at",
        "processed_at",
        "error",
        "headers_json",
        "body_text",
    ]
    readonly_fields = ["received_at", "headers_json", "body_text"]

    @admin.display(description="Headers")
    def headers_json(self, delivery: WebhookDelivery) -> str:
        return pretty_json(delivery.headers)

    @admin.display(description="Body")
    def body_text(self, delivery: WebhookDelivery) -> str:
        return pretty_bytes(delivery.body)
