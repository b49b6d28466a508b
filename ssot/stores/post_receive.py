"""AgentOS post-receive hook: a signed, GitHub-shaped `push` delivery per updated ref.

It never fails or holds a push for long: any problem prints one note and exits 0; the poll catches up.
`ssot.stores.hook` installs a copy of this file; it imports nothing from the project.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import sys
import threading
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

try:
    import pygit2
except ImportError:  # reported like any other failure: one note, exit 0
    pygit2 = None  # type: ignore[assignment]  # notify's guard turns the missing module into the note

# The settings file ssot.stores.hook writes beside this program (HOOK_CONFIG there).
CONFIG_NAME = "agentos-hook.json"
ZERO = "0" * 40
MAX_COMMITS = 2048
CONNECT_TIMEOUT_SEC = 1.0
TOTAL_TIMEOUT_SEC = 3.0
NOTE = "agentos: control plane not reachable; the poll will catch up"


def person(signature: pygit2.Signature) -> dict[str, str]:
    return {"name": signature.name, "email": signature.email}


def commit_json(commit: pygit2.Commit) -> dict[str, Any]:
    parents = commit.parents
    diff = parents[0].tree.diff_to_tree(commit.tree) if parents else commit.tree.diff_to_tree(swap=True)
    files: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    for delta in diff.deltas:
        status = delta.status_char()
        if status == "D":
            files["D"].append(delta.old_file.path)
        else:
            files["A" if status == "A" else "M"].append(delta.new_file.path)
    author = commit.author
    stamp = datetime.fromtimestamp(author.time, timezone(timedelta(minutes=author.offset)))
    return {
        "id": str(commit.id),
        "tree_id": str(commit.tree_id),
        "distinct": True,
        "message": commit.message,
        "timestamp": stamp.isoformat(),
        "author": person(author),
        "committer": person(commit.committer),
        "added": files["A"],
        "modified": files["M"],
        "removed": files["D"],
    }


def pushed_commits(repo: pygit2.Repository, old: str, new: str, ref: str) -> list[pygit2.Oid]:
    """The commits the push added to `ref`, oldest first."""
    walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    if old != ZERO:
        walker.hide(old)
    else:
        for name in repo.references:
            if name != ref:
                try:
                    walker.hide(repo.references[name].peel(pygit2.Commit).id)
                except (pygit2.GitError, ValueError, KeyError):
                    continue
    return [commit.id for commit in walker]


def pusher_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "git"


def payload(repo: pygit2.Repository, config: dict[str, str], old: str, new: str, ref: str) -> dict[str, Any]:
    created, deleted = old == ZERO, new == ZERO
    ids = [] if deleted else pushed_commits(repo, old, new, ref)
    commits = [commit_json(repo[oid].peel(pygit2.Commit)) for oid in ids] if len(ids) <= MAX_COMMITS else []
    if deleted:
        head_commit = None
    elif commits and commits[-1]["id"] == new:
        head_commit = commits[-1]
    else:
        head_commit = commit_json(repo[new].peel(pygit2.Commit))
    full_name = config["repo_full_name"]
    pusher = pusher_name()
    return {
        "ref": ref,
        "before": old,
        "after": new,
        "created": created,
        "deleted": deleted,
        "forced": not (created or deleted) and old != new and not repo.descendant_of(new, old),
        "base_ref": None,
        "size": len(ids),
        "commits": commits,
        "head_commit": head_commit,
        "repository": {
            "full_name": full_name,
            "name": full_name.rsplit("/", 1)[-1],
            "default_branch": config["branch"],
        },
        "pusher": {"name": pusher},
        "sender": {"login": pusher},
    }


def deliver(url: str, body: bytes, secret: bytes) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError("the hook URL must be http(s)")
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 (http or https, checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "agentos-post-receive",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
        },
    )
    # No proxy: the control plane is usually on loopback, and a pusher's proxy settings must not apply.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=CONNECT_TIMEOUT_SEC) as response:
        response.read()


def notify(updates: list[list[str]], outcome: list[str]) -> None:
    """Deliver one event per updated ref; `outcome` ends with "done" only if every one got through."""
    # A hook must never fail a push: every error is recorded, none is raised.
    try:
        config = json.loads((Path(__file__).resolve().parent / CONFIG_NAME).read_text())
        url = os.environ.get("SSOT_HOOK_URL") or config["url"]
        secret = Path(config["secret_file"]).read_text().split(",")[0].strip().encode()
        if not secret:
            raise ValueError("empty webhook secret")
        repo = pygit2.Repository(os.environ.get("GIT_DIR", "."))
    except Exception:
        outcome.append("failed")
        return
    for old, new, ref in updates:
        try:
            deliver(url, json.dumps(payload(repo, config, old, new, ref)).encode(), secret)
        except Exception:
            outcome.append("failed")
    outcome.append("done")


def main() -> None:
    try:
        updates = [line.split() for line in sys.stdin.read().splitlines() if len(line.split()) == 3]
    except (OSError, ValueError):
        updates = []
    outcome: list[str] = []
    worker = threading.Thread(target=notify, args=(updates, outcome), daemon=True)
    worker.start()
    worker.join(TOTAL_TIMEOUT_SEC)
    if outcome != ["done"]:
        print(NOTE, file=sys.stderr)
    sys.stderr.flush()
    # A worker still waiting on the network must not delay the exit.
    os._exit(0)


if __name__ == "__main__":
    main()
