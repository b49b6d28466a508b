"""The configured store (SPEC section 3): one instance per process, so GitHub caches are shared."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ssot.stores.base import Store


@functools.cache
def get_store() -> Store:
    """The store SSOT_BACKEND names, built from settings."""
    if settings.SSOT_BACKEND == "local":
        from ssot.stores.local import LocalStore

        return LocalStore(settings.SSOT_LOCAL_PATH, branch=settings.SSOT_BRANCH_LOCAL)
    if settings.SSOT_BACKEND == "github":
        if not settings.GITHUB_TOKEN or not settings.GITHUB_SSOT_REPO:
            raise ImproperlyConfigured("SSOT_BACKEND=github needs GITHUB_TOKEN and GITHUB_SSOT_REPO")
        from ssot.stores.github import GitHubStore

        return GitHubStore(
            token=settings.GITHUB_TOKEN,
            repo=settings.GITHUB_SSOT_REPO,
            branch=settings.GITHUB_SSOT_BRANCH,
            api_url=settings.GITHUB_API_URL,
            # A rate limit is waited out only within a request's bound (a longer one: 503 + Retry-After).
            max_rate_wait=settings.SSOT_WRITE_WAIT_SEC,
        )
    raise ImproperlyConfigured(f"SSOT_BACKEND must be 'local' or 'github', not {settings.SSOT_BACKEND!r}")


def reset_store() -> None:
    """Forget the cached store (tests that change the SSOT settings call this)."""
    get_store.cache_clear()


def repository_label() -> str:
    """What SyncState.repository records for the configured store."""
    if settings.SSOT_BACKEND == "github":
        return settings.GITHUB_SSOT_REPO
    return str(settings.SSOT_LOCAL_PATH)


def branch() -> str:
    return settings.GITHUB_SSOT_BRANCH if settings.SSOT_BACKEND == "github" else settings.SSOT_BRANCH_LOCAL


def webhook_repo_name() -> str:
    """The `repository.full_name` push deliveries of the SSOT carry: GitHub's, or the local hook's."""
    if settings.SSOT_BACKEND == "github":
        return settings.GITHUB_SSOT_REPO
    return "local/ssot"
