"""Fixtures shared by every app's tests: a real local SSOT per test, users by role, API clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from ssot.stores.base import Store
from ssot.stores.factory import reset_store
from ssot.stores.local import LocalStore
from testing import browser
from testing.github_fixture import github_emulator, make_github_store
from testing.monitor import configure

# Property-based tests run the same examples on every run (CI determinism), a bounded number of them,
# with no example database written to the checkout. HYPOTHESIS_PROFILE=explore searches further
# (HYPOTHESIS_EXAMPLES of them, 1,000 unless set).
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # The SSOT, database and API fixtures are set up once per test, not per example: each example
    # works on fresh ids of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "explore",
    parent=hypothesis_settings.get_profile("ci"),
    derandomize=False,
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "1000")),
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every transactional test restores the migrated rows (groups, permissions) after its flush.

    A plain `transaction=True` test flushes the database when it ends, taking the groups the migrations
    created with it; mixing the two kinds then breaks whichever test comes next. One policy for all.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            kwargs = {**marker.kwargs, "serialized_rollback": True}
            item.add_marker(pytest.mark.django_db(*marker.args, **kwargs), append=False)


@pytest.fixture(autouse=True)
def _fresh_local_cache(settings) -> None:
    """Rate-limit counters in a local-memory cache do not outlive a test (user ids repeat on SQLite).

    A Redis cache is never cleared here: it may be shared; its keys carry the run's own prefix.
    """
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture(autouse=True)
def _login_failures_per_test(settings) -> Iterator[None]:
    """django-axes counts failed logins per address, and every test client is 127.0.0.1: each test counts
    in a cache of its own, so that one test's wrong passwords never lock out the next test's logins.
    The lockout tests put the configured cache back (`real_login_failures`)."""
    from axes.handlers.proxy import AxesProxyHandler
    from django.core.cache import caches

    settings.CACHES = {
        **settings.CACHES,
        "login_failures": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "axes"},
    }
    settings.AXES_CACHE = "login_failures"
    caches["login_failures"].clear()
    AxesProxyHandler.get_implementation(force=True)
    yield
    AxesProxyHandler.implementation = None


@pytest.fixture
def real_login_failures(settings) -> None:
    """django-axes on the configured cache (Redis when REDIS_URL is set), as in production."""
    from axes.handlers.proxy import AxesProxyHandler

    settings.AXES_CACHE = "default"
    AxesProxyHandler.get_implementation(force=True)


@pytest.fixture(autouse=True)
def _generous_github_budget(settings) -> None:
    """GitHub's write budget out of the way (its pacing would space a test's commits 2.25 s apart, and
    stop them under a frozen clock); the tests of the budget set their own numbers."""
    settings.GITHUB_WRITES_PER_MIN = 1_000_000
    settings.GITHUB_WRITES_PER_HOUR = 10_000_000


@pytest.fixture
def api_settings(settings):
    """Fast password hashing, and a rate limit no test reaches (user ids repeat from test to test).

    Not for users who log in to a server in another process: it checks passwords with its own hashers.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.API_USER_RATE = "1000000/min"
    return settings


@pytest.fixture
def monitor_settings(settings, store):
    """The monitor's short, round numbers (testing/monitor.py) over a fresh local SSOT, no notify targets."""
    configure(settings)
    return settings


@pytest.fixture
def chromium() -> dict:
    """Playwright's launch options for Debian's chromium; without it the test fails saying what to run."""
    problem = browser.chromium_missing()
    if problem:
        pytest.fail(problem, pytrace=False)
    return browser.launch_options()


@pytest.fixture
def ssot_path(tmp_path: Path, settings) -> Iterator[Path]:
    """Point the settings at a fresh bare repository under tmp_path (created empty)."""
    path = tmp_path / "ssot.git"
    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = path
    reset_store()
    LocalStore.create(path)
    yield path
    reset_store()


@pytest.fixture
def store(ssot_path: Path):
    """The configured (local) store over the per-test repository."""
    from ssot.stores.factory import get_store

    return get_store()


@pytest.fixture(params=["local", "github"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, settings):
    """The configured store over a fresh SSOT: a local bare repository, or GitHub through its emulator."""
    from ssot.stores.factory import get_store

    if request.param == "local":
        request.getfixturevalue("ssot_path")
        yield get_store()
        return

    with github_emulator(tmp_path) as emulator:
        settings.SSOT_BACKEND = "github"
        settings.GITHUB_TOKEN = emulator.token
        settings.GITHUB_SSOT_REPO = f"{emulator.owner}/{emulator.name}"
        settings.GITHUB_API_URL = emulator.base_url
        reset_store()
        store = get_store()
        store.emulator = emulator  # type: ignore[attr-defined]  # for the fixtures that need its repository
        yield store
        reset_store()


@pytest.fixture
def github_ssot(tmp_path: Path, settings):
    """The configured store: GitHub through its emulator only (`.emulator` on it), for GitHub's limits."""
    from ssot.stores.factory import get_store

    with github_emulator(tmp_path) as emulator:
        settings.SSOT_BACKEND = "github"
        settings.GITHUB_TOKEN = emulator.token
        settings.GITHUB_SSOT_REPO = f"{emulator.owner}/{emulator.name}"
        settings.GITHUB_API_URL = emulator.base_url
        reset_store()
        store = get_store()
        store.emulator = emulator  # type: ignore[attr-defined]
        yield store
        reset_store()


@pytest.fixture
def git_dir(any_store) -> Path:
    """The bare repository behind `any_store`, for tests that inspect commits with git itself."""
    emulator = getattr(any_store, "emulator", None)
    return Path(emulator.git.path) if emulator else Path(any_store.path)


@pytest.fixture(params=["local", "github"])
def contract_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend, without settings: a bare repository, or the GitHub store against
    its emulator (the store contract runs against both)."""
    if request.param == "local":
        store: Store = LocalStore.create(tmp_path / "ssot.git")
    else:
        store = make_github_store(tmp_path)
    yield store
    store.close()


@pytest.fixture
def deciders() -> list:
    """alice and bob, staff members of `approvers`: the names the decision tests decide as (the approval
    policy of SPEC section 5 is about accounts, so an unknown name may not approve)."""
    from testing.api import make_user

    return [make_user("approver", username=name) for name in ("alice", "bob")]
