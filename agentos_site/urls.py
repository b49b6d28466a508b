"""URL map: admin, API, webhooks, dashboard, OpenAPI and the health probe."""

from django.contrib import admin
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentos_site.health import healthz

admin.site.site_header = "AgentOS control plane"
admin.site.site_title = "AgentOS"
admin.site.index_title = "Approval console"

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
