"""Debian's chromium for the browser tests (Playwright drives it): where it is, and how to install it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_COMMAND = "sudo apt-get install -y chromium"
# No sandbox: the tests run as root in CI, where Chromium refuses its sandbox.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_missing(path: Path | None = None) -> str | None:
    """One line saying how to install chromium when it is not at `path` (default CHROMIUM), else None."""
    path = path or CHROMIUM
    if os.access(path, os.X_OK):
        return None
    return (
        f"the browser tests need Debian's chromium at {path}: run `{INSTALL_COMMAND}` "
        "(make test does it when run as root)"
    )


def launch_options(path: Path | None = None) -> dict[str, Any]:
    """Keyword arguments of Playwright's `chromium.launch` for the installed chromium."""
    return {"executable_path": str(path or CHROMIUM), "args": LAUNCH_ARGS}
