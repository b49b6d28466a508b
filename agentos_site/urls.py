"""URL map: admin, API, webhooks, dashboard, OpenAPI, the health probe and the metrics."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentos_site.health import healthz
from agentos_site.metrics import metrics

admin.site.site_header = "AgentOS control plane"
admin.site.site_title = "AgentOS"
admin.site.index_title = "Approval console"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("monitoring.urls")),
    path("", include("webhooks.urls")),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^metrics/?$", metrics, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("ssot.api.urls")),
    path("api/", include("monitoring.api_urls")),
]

# JSON under /api/ (an unknown id in a path, an unknown endpoint), Django's page elsewhere.
handler404 = "core.api.not_found"
# JSON under /api/ and /webhooks/, and a 503 for a database outage (core/api_errors.py).
handler500 = "core.api_errors.server_error"
