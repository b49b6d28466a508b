"""GET /healthz: is the database, the channel layer and the SSOT reachable? No auth, no data."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


def _database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True


def _channel_layer() -> bool:
    layer = get_channel_layer()
    async_to_sync(layer.send)("healthz.probe", {"type": "healthz.probe"})
    async_to_sync(layer.receive)("healthz.probe")
    return True


def _ssot() -> bool:
    from ssot.stores.factory import get_store

    get_store().head()
    return True


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {}
    for name, probe in (("database", _database), ("channel_layer", _channel_layer), ("ssot", _ssot)):
        try:
            checks[name] = "ok" if probe() else "down"
        except Exception as exc:
            log.warning("healthz: %s is down: %s", name, type(exc).__name__)
            checks[name] = "down"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", "checks": checks}, status=200 if healthy else 503
    )
