"""System checks of the monitor's settings: the links in notifications must open, over https in production."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=False)
def public_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """PUBLIC_URL is an absolute http(s) URL without query or fragment; https when ENVIRONMENT=production."""
    url = settings.PUBLIC_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        return [
            checks.Error(
                "PUBLIC_URL must be an absolute http:// or https:// URL (scheme and host, no query).",
                hint="e.g. PUBLIC_URL=https://agentos.example.com",
                id="monitoring.E001",
            )
        ]
    if getattr(settings, "PRODUCTION", False) and parts.scheme != "https":
        return [
            checks.Error(
                "PUBLIC_URL must be https:// when ENVIRONMENT=production: notification links carry the "
                "admin to a login page.",
                hint="Set PUBLIC_URL to the https address your proxy or tunnel serves.",
                id="monitoring.E002",
            )
        ]
    return []
