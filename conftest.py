"""Fixtures shared by every app's tests: a real local SSOT per test, users by role, API clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ssot.stores.factory import reset_store


@pytest.fixture
def ssot_path(tmp_path: Path, settings) -> Iterator[Path]:
    """Point the settings at a fresh bare repository under tmp_path (created empty)."""
    from ssot.stores.local import LocalStore

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
