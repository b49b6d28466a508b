"""WebSocket routes: the live events (SPEC section 9), with and without the trailing slash."""

from django.urls import re_path

from monitoring.consumers import EventsConsumer

# Channels routes an ASGI application through Django's re_path, as its docs do; Django's stubs expect a view.
websocket_urlpatterns = [
    re_path(r"^ws/events/?$", EventsConsumer.as_asgi()),  # type: ignore[arg-type]
]
