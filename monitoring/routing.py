"""WebSocket routes: the live events (SPEC section 9), with and without the trailing slash."""

from django.urls import re_path

from monitoring.consumers import EventsConsumer

websocket_urlpatterns = [
    re_path(r"^ws/events/?$", EventsConsumer.as_asgi()),
]
