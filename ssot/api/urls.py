"""The API routes of tasks, messages, audit, sync, tokens and API keys; with or without a trailing slash."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from ssot.api import views
from ssot.api.keys import ApiKeyViewSet
from ssot.api.longpoll import task_decision

router = SimpleRouter()
# DRF's constructor only knows "/" or nothing; a regex makes the slash optional.
router.trailing_slash = "/?"
router.register("tasks", views.TaskViewSet, basename="task")
router.register("messages", views.MessageViewSet, basename="message")
router.register("audit", views.AuditViewSet, basename="audit")
router.register("keys", ApiKeyViewSet, basename="apikey")

urlpatterns = [
    re_path(r"^token/?$", views.TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^token/refresh/?$", views.TokenRefreshView.as_view(), name="token_refresh"),
    re_path(rf"^tasks/(?P<task_id>{views.ID_REGEX})/decision/?$", task_decision, name="task-decision"),
    re_path(r"^sync/?$", views.SyncView.as_view(), name="sync"),
    re_path(r"^amp/schema\.json$", views.AmpSchemaView.as_view(), name="amp-schema"),
    re_path(r"^policy/?$", views.PolicyView.as_view(), name="policy"),
    re_path(r"^policy/schema\.json$", views.PolicySchemaView.as_view(), name="policy-schema"),
    *router.urls,
]
