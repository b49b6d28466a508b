"""ASGI entry point: Django over HTTP (static files unless a proxy serves them), events over WebSocket."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
django.setup(set_prefix=False)

from agentos_site import serving  # noqa: E402
from agentos_site.asgi_handler import ControlPlaneASGIHandler  # noqa: E402

serving.install()

django_asgi_app = ControlPlaneASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from monitoring.routing import websocket_urlpatterns  # noqa: E402
from monitoring.ws_auth import WebsocketAuthStack  # noqa: E402

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        # The stubs type URLRouter's routes as a stub-only subclass of Django's URLPattern.
        # The Origin check applies to cookie clients only (monitoring/ws_auth.py).
        "websocket": WebsocketAuthStack(URLRouter(websocket_urlpatterns)),  # type: ignore[arg-type]
    }
)

# What is loaded by now (modules, settings, the URL resolver, the middleware, about 120,000 objects)
# lives as long as the process. A full collection of the garbage collector walks all of it, and took
# 65-70 ms here: a pause every request in flight would wait out. Moved to a generation of its own,
# it is never walked again; what requests create is collected as before.
get_resolver().url_patterns  # noqa: B018 (loads the URLconf before the freeze)
gc.freeze()
