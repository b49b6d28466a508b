"""Webhook routes, with and without the trailing slash (SPEC section 8)."""

from django.urls import re_path

from webhooks.views import GitHubWebhookView, XcodeWebhookView

urlpatterns = [
    re_path(r"^webhooks/github/?$", GitHubWebhookView.as_view(), name="webhook-github"),
    re_path(r"^webhooks/xcode/?$", XcodeWebhookView.as_view(), name="webhook-xcode"),
    re_path(r"^webhooks/xcode/(?P<token>[^/]+)/?$", XcodeWebhookView.as_view(), name="webhook-xcode-token"),
]
