"""GitHub stores wired to a GitHub emulator on loopback, for the store contract and the GitHub tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ssot.stores.github import GitHubStore
from testing.github_emulator import GitHubEmulator


def _client(emulator: GitHubEmulator) -> dict[str, Any]:
    return {
        "token": emulator.token,
        "repo": f"{emulator.owner}/{emulator.name}",
        "api_url": emulator.base_url,
    }


def github_store(emulator: GitHubEmulator, **options: Any) -> GitHubStore:
    """A store (one client) of the emulator's repository; `options` go to GitHubStore."""
    return GitHubStore(**_client(emulator), **options)


class EmulatedGitHubStore(GitHubStore):
    """A GitHub store that owns its emulator: `close()` stops both."""

    def __init__(self, emulator: GitHubEmulator, **options: Any) -> None:
        super().__init__(**_client(emulator), **options)
        self.emulator = emulator

    def close(self) -> None:
        super().close()
        self.emulator.stop()


def make_github_store(tmp_path: Path, **options: Any) -> EmulatedGitHubStore:
    """A GitHub store on a fresh, empty repository served by its own emulator."""
    emulator = GitHubEmulator(tmp_path / "github.git")
    emulator.start()
    return EmulatedGitHubStore(emulator, **options)


@contextmanager
def github_emulator(tmp_path: Path) -> Iterator[GitHubEmulator]:
    """A started emulator on a fresh repository under `tmp_path`, stopped on exit."""
    with GitHubEmulator(tmp_path / "github.git") as emulator:
        yield emulator
