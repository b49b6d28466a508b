"""Fixtures of the SSOT tests: the store contract runs against every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ssot.stores.base import Store
from ssot.stores.local import LocalStore
from testing.github_fixture import make_github_store


@pytest.fixture(params=["local", "github"])
def contract_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend: a bare repository, or the GitHub store against its emulator."""
    if request.param == "local":
        store: Store = LocalStore.create(tmp_path / "ssot.git")
    else:
        store = make_github_store(tmp_path)
    yield store
    store.close()
