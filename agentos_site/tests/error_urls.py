"""The project's URLconf plus views that fail, for the tests of the 500 handler."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from agentos_site.urls import handler404, handler500
from agentos_site.urls import urlpatterns as project_urlpatterns


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("an unexpected failure with /var/secret/path in its message")


urlpatterns = [
    path("api/fails/", fails),
    path("webhooks/fails", fails),
    path("fails/", fails),
    *project_urlpatterns,
]

__all__ = ["handler404", "handler500", "urlpatterns"]
