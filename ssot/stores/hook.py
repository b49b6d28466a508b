"""The local SSOT's `post-receive` hook: each push becomes a signed, GitHub-shaped `push` delivery."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ssot.stores import post_receive

HOOK_NAME = "post-receive"
HOOK_CONFIG = post_receive.CONFIG_NAME

# The program git runs after each push, copied with the interpreter given at install time (it needs
# pygit2). A module of its own, so that ruff and the tests read it; it imports nothing from the project.
PROGRAM = Path(post_receive.__file__)


def install_post_receive_hook(
    repo_path: str | Path,
    *,
    python: str,
    hook_url: str,
    secret_file: str | Path,
    repo_full_name: str,
    branch: str,
) -> Path:
    """Write `hooks/post-receive` and its settings (never the secret itself) into the bare repository."""
    hooks = Path(repo_path) / "hooks"
    if not (Path(repo_path) / "objects").is_dir():
        raise FileNotFoundError(f"{repo_path} is not a bare git repository")
    if not os.path.isabs(python) or any(char.isspace() for char in python):
        raise ValueError(f"the hook interpreter must be an absolute path without spaces, not {python!r}")
    if not hook_url.startswith(("http://", "https://")):
        raise ValueError(f"the hook URL must be http(s), not {hook_url!r}")
    hooks.mkdir(exist_ok=True)
    config = {
        "url": hook_url,
        "secret_file": str(Path(secret_file).resolve()),
        "repo_full_name": repo_full_name,
        "branch": branch,
    }
    _write_atomically(hooks / HOOK_CONFIG, json.dumps(config, indent=2) + "\n", mode=0o644)
    hook = hooks / HOOK_NAME
    _write_atomically(hook, f"#!{python}\n{PROGRAM.read_text()}", mode=0o755)
    return hook


def _write_atomically(path: Path, text: str, *, mode: int) -> None:
    """Replace `path` in one rename, so a push never runs a half-written hook."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
