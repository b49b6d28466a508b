"""GET /healthz: is the database, the channel layer and the SSOT reachable, and is the sync failing?

No auth, no data. Liveness: 503 while a part is down; a failing sync alone keeps the 200 (restarting
the process would not mend it) and says `"ssot_sync": "failing"`, `"status": "degraded"`.
Readiness (`?ready=1`): 503 while anything at all is failing, the sync included.
"""

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
    if layer is None:  # no CHANNEL_LAYERS configured
        return False
    async_to_sync(layer.send)("healthz.probe", {"type": "healthz.probe"})
    async_to_sync(layer.receive)("healthz.probe")
    return True


def _ssot() -> bool:
    from ssot.stores.factory import get_store

    get_store().head()
    return True


def _ssot_sync() -> str:
    from ssot.sync import sync_failing

    return "failing" if sync_failing() is not None else "ok"


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
    try:
        checks["ssot_sync"] = _ssot_sync()
    except Exception as exc:  # the database is down: that check says so already
        log.warning("healthz: the sync's state cannot be read: %s", type(exc).__name__)
        checks["ssot_sync"] = "unknown"
    live = all(checks[name] == "ok" for name in ("database", "channel_layer", "ssot"))
    ready = live and checks["ssot_sync"] == "ok"
    status = "ok" if ready else "degraded" if live else "down"
    healthy = ready if request.GET.get("ready") not in (None, "", "0", "false") else live
    return JsonResponse({"status": status, "checks": checks}, status=200 if healthy else 503)
