"""Plain git as an agent uses it, for tests and benchmarks: clones of a bare SSOT repository that commit
and push with the git command line, in an environment free of anyone's personal git configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BRANCH = "main"
PUSH_ATTEMPTS = 10


def git_env(*, author: str = "executor", **extra: str) -> dict[str, str]:
    """The environment of a pusher named `author` with no personal git configuration."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.pop("SSOT_HOOK_URL", None)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="init.defaultBranch",
        GIT_CONFIG_VALUE_0=BRANCH,
        GIT_AUTHOR_NAME=author,
        GIT_AUTHOR_EMAIL=f"{author}@agents.test",
        GIT_COMMITTER_NAME=author,
        GIT_COMMITTER_EMAIL=f"{author}@agents.test",
        GIT_TERMINAL_PROMPT="0",
    )
    env.update(extra)
    return env


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run git in `cwd`; its output, stripped. A failure raises with git's message, unless `check` is off."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env or git_env(), capture_output=True, text=True, timeout=60
    )
    if check and result.returncode:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def push(work: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`git push origin HEAD:main` from a clone, as an agent pushes; the caller reads the outcome."""
    return subprocess.run(
        ["git", "push", "origin", f"HEAD:refs/heads/{BRANCH}"],
        cwd=work,
        env=env or git_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def clone(remote: Path | str, into: Path) -> Path:
    """A working clone of `remote` at `into`, on the branch `main` (created if the repository is empty)."""
    git(into.parent, "clone", "--quiet", str(remote), into.name)
    git(into, "checkout", "--quiet", "-B", BRANCH)
    return into


def git_commit(
    work: Path,
    message: str,
    writes: dict[str, str | bytes] | None = None,
    deletes: tuple[str, ...] = (),
    *,
    author: str = "executor",
) -> str:
    """Write, delete and commit files in a clone as `author`; returns the new commit's SHA."""
    for path, content in (writes or {}).items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    if deletes:
        git(work, "rm", "--quiet", *deletes)
    env = git_env(author=author)
    git(work, "add", "--all", env=env)
    git(work, "commit", "--quiet", "--no-verify", "-m", message, env=env)
    return git(work, "rev-parse", "HEAD")


def git_push(remote: Path | str, files: dict[str, bytes], *, author: str = "coordinator") -> None:
    """Commit `files` in a fresh clone of `remote` as `author` and push them, as an agent does; when the
    branch moved meanwhile (the control plane wrote too), redo the commit on its new head."""
    base = Path(tempfile.mkdtemp(prefix="agentos-push-"))
    try:
        work = clone(remote, base / "work")
        for _ in range(PUSH_ATTEMPTS):
            git_commit(work, f"{author}: test push", dict(files), author=author)
            if push(work).returncode == 0:
                return
            git(work, "fetch", "--quiet", "origin", BRANCH)
            git(work, "reset", "--quiet", "--hard", "FETCH_HEAD")
        raise AssertionError(f"the branch kept moving: no push in {PUSH_ATTEMPTS} attempts")
    finally:
        shutil.rmtree(base, ignore_errors=True)
