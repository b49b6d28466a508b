"""A GitHub REST emulator on loopback, backed by a real bare git repository, for tests and benchmarks.

It answers the endpoints the GitHub store uses (Git Data API: refs, trees, blobs, commits; the commits
list; the contents API only to create a file) with the shapes GitHub's OpenAPI description requires
(validated against a trimmed copy, testing/openapi/), GitHub's status codes and rate-limit headers. Like
GitHub it truncates tree answers at 100,000 entries or 7 MB and refuses blobs over 100 MB. Tests read
`requests`, `statuses`, `answers` and `content_requests` to assert API-call and write budgets, and inject
truncated trees (lower limits), latency per call, read lag, refused ref updates (a protected branch),
rate limits and server errors.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pygit2

DOCS_URL = "https://docs.github.com/rest"
RATE_LIMIT_DOCS = f"{DOCS_URL}/overview/rate-limits-for-the-rest-api"
RATE_LIMIT = 5000
SHA_RE = re.compile(r"[0-9a-f]{40}")
TREE_MAX_ENTRIES = 100_000  # GitHub's limits of one tree answer
TREE_MAX_BYTES = 7 * 1024 * 1024
BLOB_MAX_BYTES = 100 * 1024 * 1024  # the blobs API serves nothing larger
BLOB_MODES = {"100644": pygit2.enums.FileMode.BLOB, "100755": pygit2.enums.FileMode.BLOB_EXECUTABLE}
# What `_lookup` finds: a commit, a tree or a blob.
_Found = TypeVar("_Found", pygit2.Commit, pygit2.Tree, pygit2.Blob)

# (method, route template, handler method); `{ref}`, `{path}` and `{branch}` may span several segments.
ROUTES = [
    ("GET", "/repos/{owner}/{repo}", "get_repo"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}", "get_branch"),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", "get_ref"),
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}", "get_ref"),
    ("POST", "/repos/{owner}/{repo}/git/refs", "create_ref"),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", "update_ref"),
    ("GET", "/repos/{owner}/{repo}/git/trees/{sha}", "get_tree"),
    ("POST", "/repos/{owner}/{repo}/git/trees", "create_tree"),
    ("GET", "/repos/{owner}/{repo}/git/blobs/{sha}", "get_blob"),
    ("POST", "/repos/{owner}/{repo}/git/blobs", "create_blob"),
    ("GET", "/repos/{owner}/{repo}/git/commits/{sha}", "get_commit"),
    ("GET", "/repos/{owner}/{repo}/commits", "list_commits"),
    ("POST", "/repos/{owner}/{repo}/git/commits", "create_commit"),
    ("GET", "/repos/{owner}/{repo}/contents/{path}", "get_contents"),
    ("PUT", "/repos/{owner}/{repo}/contents/{path}", "put_contents"),
]


def _route_pattern(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name in ("ref", "path", "branch"):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>.+)")
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern) + "$")


COMPILED_ROUTES = [
    (method, template, _route_pattern(template), handler) for method, template, handler in ROUTES
]


def _route(method: str, path: str) -> tuple[str, dict[str, str], str] | None:
    """The matching route's template, path parameters and handler name."""
    for route_method, template, pattern, handler in COMPILED_ROUTES:
        match = pattern.match(path) if route_method == method else None
        if match:
            return template, {key: unquote(value) for key, value in match.groupdict().items()}, handler
    return None


class ApiError(Exception):
    """An error answer: the status and GitHub's `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# The contents API serves a file's content in its default media type up to 1 MB ("Get repository
# content", its notes): a larger one only in the raw or object media types.
CONTENTS_MAX_BYTES = 1024 * 1024


class TooLarge(ApiError):
    """GitHub's answer for a blob over 100 MB (or, from the contents API, a file over 1 MB)."""

    BLOB = (
        "This API returns blobs up to 100 MB in size. The requested blob is too large to fetch via the API, "
        "but you can use the Git Database API to fetch it another way."
    )

    def __init__(self, message: str = BLOB) -> None:
        super().__init__(403, message)


def node_id(kind: str, key: object) -> str:
    """A GraphQL node id in GitHub's style (opaque to clients; stable for one object)."""
    return base64.b64encode(f"0:{kind}{key}".encode()).decode().rstrip("=")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signature(person: Any, default: pygit2.Signature) -> pygit2.Signature:
    """A git signature from a request's `author`/`committer` object (GitHub fills in what is missing)."""
    if not isinstance(person, dict):
        return default
    seconds = default.time
    if person.get("date"):
        try:
            seconds = int(datetime.fromisoformat(person["date"].replace("Z", "+00:00")).timestamp())
        except (TypeError, ValueError) as exc:
            raise ApiError(422, f"Invalid date: {person['date']!r}") from exc
    try:
        return pygit2.Signature(
            person.get("name") or default.name, person.get("email") or default.email, seconds
        )
    except (TypeError, ValueError) as exc:
        raise ApiError(422, f"Invalid request.\n\n{exc}") from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: GitHubEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._connections.add(self.connection)

    def finish(self) -> None:
        self.server.emulator._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read counters, not logs."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.server.emulator._answer(method, self.path, self.headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 304:
            self.wfile.write(data)


class GitHubEmulator:
    """A real HTTP server on 127.0.0.1 speaking GitHub's REST API for one repository."""

    def __init__(
        self,
        repo_path: Path,
        *,
        owner: str = "agentos",
        name: str = "ssot",
        token: str = "test-token",  # noqa: S107 - the emulator's own test credential
    ) -> None:
        self.owner = owner
        self.name = name
        self.token = token
        self.default_branch = "main"
        path = Path(repo_path)
        if path.exists():
            self.git = pygit2.Repository(str(path))
        else:
            self.git = pygit2.init_repository(str(path), bare=True, initial_head=self.default_branch)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.before_ref_update: Callable[[], None] | None = None
        # (Accept, X-GitHub-Api-Version) of every request: the store must ask for GitHub's media type.
        self.request_headers: Counter[tuple[str, str]] = Counter()
        self._refusals: dict[str, tuple[int, str]] = {}
        # Seconds added to every answer (GitHub's own latency, for benchmarks), and when each
        # content-creating request (POST, PATCH, PUT) arrived (time.monotonic()).
        self.latency = 0.0
        # Every answer ("METHOD template", status, payload) while a list: tests validate their shapes.
        self.answers: list[tuple[str, int, Any]] | None = None
        # Read lag (GitHub's replicas just after a write): branch reads answer the head before the last
        # update while `_lagging` > 0.
        self._lagging = 0
        self.blob_limit = BLOB_MAX_BYTES  # blobs over this are refused as GitHub does (403 too_large)
        self._previous: dict[str, pygit2.Oid | str] = {}
        self.content_requests: list[float] = []
        self._lock = threading.RLock()
        self._faults: deque[tuple[int, dict[str, Any], dict[str, str]]] = deque()
        # GitHub's limits of one tree answer (recursive or not): 100,000 entries or 7 MB.
        self._truncate_over: int | None = None
        self._truncate_folders_over: int | None = None
        self._window_reset = int(time.time()) + 3600
        self._used = 0
        self._server: _Server | None = None
        self._connections: set[socket.socket] = set()

    # Lifecycle

    def start(self) -> str:
        """Serve in a daemon thread; return the base URL (the store's `api_url`)."""
        self._server = _Server(self)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the emulator is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # Test controls

    def total_requests(self) -> int:
        """Every request received since the last reset, whatever its answer."""
        with self._lock:
            return sum(self.requests.values())

    def reset_counts(self) -> None:
        """Forget the request and status counts."""
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self.content_requests.clear()

    def truncate_trees_over(self, n: int | None) -> None:
        """Answer recursive trees of more than n entries with their first n and `truncated: true`."""
        with self._lock:
            self._truncate_over = n

    def lag_reads(self, count: int) -> None:
        """Answer the next `count` branch reads with the head before the branch's last update."""
        with self._lock:
            self._lagging = count

    def truncate_folders_over(self, n: int | None) -> None:
        """Answer non-recursive trees (one folder's own listing) of more than n entries truncated too."""
        with self._lock:
            self._truncate_folders_over = n

    def rate_limit_next(
        self, count: int, *, kind: str = "secondary", retry_after: int | None = 1, status: int | None = None
    ) -> None:
        """Rate-limit the next `count` requests.

        secondary: 429 (or `status`) with `retry-after: retry_after` (None: no header, as GitHub sometimes
        answers, which means "wait at least a minute"); primary: 403 (or `status`) with
        `x-ratelimit-remaining: 0` and `x-ratelimit-reset` retry_after seconds from now (negative: past).
        """
        if kind == "secondary":
            payload = {
                "message": "You have exceeded a secondary rate limit. "
                "Please wait a few minutes before you try again.",
                "documentation_url": f"{RATE_LIMIT_DOCS}#about-secondary-rate-limits",
            }
            extra = {} if retry_after is None else {"retry-after": str(retry_after)}
            fault = (status or 429, payload, extra)
        elif kind == "primary":
            payload = {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": RATE_LIMIT_DOCS,
            }
            reset = int(time.time() + (retry_after or 0))
            fault = (status or 403, payload, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
        else:
            raise ValueError(f"kind must be 'secondary' or 'primary', not {kind!r}")
        with self._lock:
            self._faults.extend([fault] * count)

    def refuse_ref_updates(self, branch: str, status: int | None = 422, message: str | None = None) -> None:
        """Refuse every update of `branch` as GitHub does a protected branch (or, with another message, a
        ruleset, a permission); None status lifts it."""
        with self._lock:
            if status is None:
                self._refusals.pop(branch, None)
            else:
                text = message or f"Protected branch update failed for refs/heads/{branch}."
                self._refusals[branch] = (status, text)

    def fail_next(self, count: int, status: int = 502) -> None:
        """Answer the next `count` requests with a server error."""
        with self._lock:
            self._faults.extend([(status, {"message": "Server Error"}, {})] * count)

    def head(self, branch: str = "main") -> str | None:
        """The commit the branch points at, read from the repository (no HTTP)."""
        with self._lock:
            ref = self.git.references.get(f"refs/heads/{branch}")
            return None if ref is None else str(ref.target)

    def push(
        self,
        writes: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        *,
        message: str = "push",
        branch: str = "main",
    ) -> str:
        """Commit straight into the repository, as a `git push` by another client would; return the SHA."""
        with self._lock:
            ref = self.git.references.get(f"refs/heads/{branch}")
            index = pygit2.Index()
            parents = []
            if ref is not None:
                index.read_tree(self.git[ref.target].peel(pygit2.Tree))
                parents = [ref.target]
            blobs = {data: self.git.create_blob(data) for data in set(writes.values())}  # each blob once
            for path, data in sorted(writes.items()):  # libgit2 appends sorted entries fastest
                index.add(pygit2.IndexEntry(path, blobs[data], pygit2.enums.FileMode.BLOB))
            for path in deletes:
                index.remove(path)
            author = self._user()
            oid = self.git.create_commit(None, author, author, message, index.write_tree(self.git), parents)
            if ref is not None:
                self._previous[branch] = ref.target
            self.git.references.create(f"refs/heads/{branch}", oid, force=True)
            return str(oid)

    # HTTP plumbing

    def _answer(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """Count one request and answer it: (status, JSON payload or None, headers)."""
        url = urlsplit(raw_path)
        route = _route(method, url.path)
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if method != "GET":
                self.content_requests.append(time.monotonic())
            self.requests[f"{method} {route[0] if route else url.path}"] += 1
            self.request_headers[
                (headers.get("Accept") or "", headers.get("X-GitHub-Api-Version") or "")
            ] += 1
            fault = self._faults.popleft() if self._faults else None
        if fault is None:
            status, payload, extra = self._respond(method, route, url.query, headers, body)
        else:
            status, payload, extra = fault[0], fault[1], {**self._rate_headers(count=True), **fault[2]}
        with self._lock:
            self.statuses[status] += 1
            if self.answers is not None and route is not None:
                self.answers.append((f"{method} {route[0]}", status, payload))
        return status, payload, extra

    def _respond(
        self,
        method: str,
        route: tuple[str, dict[str, str], str] | None,
        query: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        try:
            status, payload = self._dispatch(route, query, headers, body)
        except ApiError as exc:
            status = exc.status
            payload = {"message": exc.message, "documentation_url": DOCS_URL, "status": str(exc.status)}
            if isinstance(exc, TooLarge):
                payload["errors"] = [{"resource": "Blob", "field": "data", "code": "too_large"}]
        except Exception as exc:  # an emulator bug: answer it, so the client fails loudly instead of hanging
            status, payload = 500, {"message": f"emulator error: {exc!r}"}
        extra: dict[str, str] = {}
        if method == "GET" and status == 200:
            etag = 'W/"' + hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:40] + '"'
            extra["ETag"] = etag
            if etag in [tag.strip() for tag in (headers.get("If-None-Match") or "").split(",")]:
                # GitHub does not charge conditional requests answered 304 against the rate limit.
                return 304, None, {**extra, **self._rate_headers(count=False)}
        return status, payload, {**extra, **self._rate_headers(count=True)}

    def _dispatch(
        self, route: tuple[str, dict[str, str], str] | None, query: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        authorization = headers.get("Authorization") or ""
        if authorization not in (f"token {self.token}", f"Bearer {self.token}"):
            raise ApiError(401, "Bad credentials")
        if route is None:
            raise ApiError(404, "Not Found")
        template, params, handler = route
        if (params["owner"].lower(), params["repo"].lower()) != (self.owner.lower(), self.name.lower()):
            raise ApiError(404, "Not Found")
        try:
            payload = json.loads(body) if body else {}
        except ValueError as exc:
            raise ApiError(400, "Problems parsing JSON") from exc
        if not isinstance(payload, dict):
            raise ApiError(400, "Problems parsing JSON")
        if handler == "update_ref" and self.before_ref_update is not None:
            # Outside the lock, so the hook may move the branch (through push() or over HTTP).
            self.before_ref_update()
        with self._lock:
            if "/git/" in template and not list(self.git.references):
                raise ApiError(409, "Git Repository is empty.")
            return getattr(self, f"_{handler}")(params, parse_qs(query, keep_blank_values=True), payload)

    def _rate_headers(self, *, count: bool) -> dict[str, str]:
        with self._lock:
            now = int(time.time())
            if now >= self._window_reset:
                self._window_reset, self._used = now + 3600, 0
            self._used += 1 if count else 0
            return {
                "x-ratelimit-limit": str(RATE_LIMIT),
                "x-ratelimit-remaining": str(max(RATE_LIMIT - self._used, 0)),
                "x-ratelimit-reset": str(self._window_reset),
                "x-ratelimit-used": str(self._used),
                "x-ratelimit-resource": "core",
            }

    # JSON shapes

    @property
    def _api(self) -> str:
        return f"{self.base_url}/repos/{self.owner}/{self.name}"

    def _user(self) -> pygit2.Signature:
        return pygit2.Signature(self.owner, f"{self.owner}@users.noreply.github.com", int(time.time()), 0)

    def _ref_json(self, name: str, target: pygit2.Oid | str) -> dict[str, Any]:
        return {
            "ref": name,
            "node_id": node_id("Ref", f"{self.name}:{name}"),
            "url": f"{self._api}/git/{name}",
            "object": {"sha": str(target), "type": "commit", "url": f"{self._api}/git/commits/{target}"},
        }

    def _commit_json(self, commit: pygit2.Commit) -> dict[str, Any]:
        def person(signature: pygit2.Signature) -> dict[str, str]:
            return {"name": signature.name, "email": signature.email, "date": _iso(signature.time)}

        html = f"https://github.com/{self.owner}/{self.name}/commit"
        return {
            "sha": str(commit.id),
            "node_id": node_id("Commit", commit.id),
            "url": f"{self._api}/git/commits/{commit.id}",
            "html_url": f"{html}/{commit.id}",
            "author": person(commit.author),
            "committer": person(commit.committer),
            "message": commit.message,
            "tree": {"sha": str(commit.tree_id), "url": f"{self._api}/git/trees/{commit.tree_id}"},
            "parents": [
                {"sha": str(p), "url": f"{self._api}/git/commits/{p}", "html_url": f"{html}/{p}"}
                for p in commit.parent_ids
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }

    def _tree_entries(self, tree: pygit2.Tree, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for obj in tree:
            entry: dict[str, Any] = {
                "path": f"{prefix}{obj.name}",
                "mode": f"{obj.filemode:06o}",
                "type": obj.type_str,
                "sha": str(obj.id),
            }
            if isinstance(obj, pygit2.Blob):
                entry["size"] = obj.size
                entry["url"] = f"{self._api}/git/blobs/{obj.id}"
            elif obj.type_str == "tree":
                entry["url"] = f"{self._api}/git/trees/{obj.id}"
            entries.append(entry)
            if recursive and isinstance(obj, pygit2.Tree):
                entries.extend(self._tree_entries(obj, f"{prefix}{obj.name}/", True))
        return entries

    def _tree_json(self, tree: pygit2.Tree, *, recursive: bool) -> dict[str, Any]:
        entries = self._tree_entries(tree, "", recursive)
        limit = self._truncate_over if recursive else self._truncate_folders_over
        keep = min(len(entries), TREE_MAX_ENTRIES, limit if limit is not None else TREE_MAX_ENTRIES)
        size = 0
        for index, entry in enumerate(entries[:keep]):  # and no more than 7 MB of them
            size += len(json.dumps(entry)) + 1
            if size > TREE_MAX_BYTES:
                keep = index
                break
        return {
            "sha": str(tree.id),
            "url": f"{self._api}/git/trees/{tree.id}",
            "tree": entries[:keep],
            "truncated": keep < len(entries),
        }

    def _lookup(self, sha: Any, kind: type[_Found]) -> _Found | None:
        """The object of this kind named by a full SHA, or None."""
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            return None
        obj = self.git.get(sha)
        return obj if isinstance(obj, kind) else None

    # Endpoints: each takes the path parameters, the query and the JSON body; returns (status, payload).

    def _get_repo(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {
            "id": 1,
            "name": self.name,
            "full_name": f"{self.owner}/{self.name}",
            "owner": {"login": self.owner, "id": 1, "type": "Organization"},
            "private": True,
            "html_url": f"https://github.com/{self.owner}/{self.name}",
            "url": self._api,
            "default_branch": self.default_branch,
        }

    def _get_branch(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        """GET a branch: its head commit in the REST commit shape (which carries the tree SHA)."""
        name = params["branch"]
        ref = self.git.references.get(f"refs/heads/{name}")
        if ref is None:
            raise ApiError(404, "Branch not found")
        target = ref.target
        if self._lagging and name in self._previous:
            self._lagging -= 1
            target = self._previous[name]
        commit = self.git[target].peel(pygit2.Commit)
        html = f"https://github.com/{self.owner}/{self.name}"
        git_commit = {
            key: value
            for key, value in self._commit_json(commit).items()
            if key in ("author", "committer", "message", "tree", "url", "verification")
        }
        return 200, {
            "name": name,
            "commit": {
                "sha": str(commit.id),
                "node_id": node_id("Commit", commit.id),
                "commit": {**git_commit, "comment_count": 0},
                "url": f"{self._api}/commits/{commit.id}",
                "html_url": f"{html}/commit/{commit.id}",
                "comments_url": f"{self._api}/commits/{commit.id}/comments",
                "author": None,
                "committer": None,
                "parents": [
                    {"sha": str(p), "url": f"{self._api}/commits/{p}", "html_url": f"{html}/commit/{p}"}
                    for p in commit.parent_ids
                ],
            },
            "_links": {"self": f"{self._api}/branches/{name}", "html": f"{html}/tree/{name}"},
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
            "protection_url": f"{self._api}/branches/{name}/protection",
        }

    def _get_ref(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        name = f"refs/{params['ref']}"
        ref = self.git.references.get(name)
        if ref is None:
            raise ApiError(404, "Not Found")
        return 200, self._ref_json(name, ref.target)

    def _create_ref(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        name, sha = body.get("ref"), body.get("sha")
        if not isinstance(name, str) or not name.startswith("refs/") or name.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if self._lookup(sha, pygit2.Commit) is None:
            raise ApiError(422, "Object does not exist")
        if self.git.references.get(name) is not None:
            raise ApiError(422, "Reference already exists")
        ref = self.git.references.create(name, sha)
        return 201, self._ref_json(name, ref.target)

    def _update_ref(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        name = f"refs/{params['ref']}"
        refused = self._refusals.get(name.removeprefix("refs/heads/"))
        if refused is not None:
            raise ApiError(*refused)
        ref = self.git.references.get(name)
        if ref is None:
            raise ApiError(422, "Reference does not exist")
        new = self._lookup(body.get("sha"), pygit2.Commit)
        if new is None:
            raise ApiError(422, "Object does not exist")
        fast_forward = new.id == ref.target or self.git.descendant_of(new.id, ref.target)
        if not body.get("force", False) and not fast_forward:
            raise ApiError(422, "Update is not a fast forward")
        self._previous[name.removeprefix("refs/heads/")] = ref.target
        ref.set_target(new.id)
        return 200, self._ref_json(name, new.id)

    def _get_tree(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        # GitHub accepts any tree-ish here: a tree or commit SHA, or a branch or tag name.
        name = params["sha"]
        obj = self.git.get(name) if SHA_RE.fullmatch(name) else None
        if obj is None:
            refs = self.git.references
            ref = refs.get(f"refs/heads/{name}") or refs.get(f"refs/tags/{name}")
            obj = None if ref is None else self.git.get(ref.target)
        if not isinstance(obj, pygit2.Tree | pygit2.Commit | pygit2.Tag):
            raise ApiError(404, "Not Found")
        return 200, self._tree_json(obj.peel(pygit2.Tree), recursive="recursive" in query)

    def _create_tree(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        items = body.get("tree")
        if not isinstance(items, list):
            raise ApiError(422, 'Invalid request.\n\n"tree" wasn\'t supplied.')
        index = pygit2.Index()
        if "base_tree" in body:
            base = self._lookup(body["base_tree"], pygit2.Tree)
            if base is None:
                raise ApiError(422, "base_tree is not a valid tree oid")
            index.read_tree(base)
        # Sorted (stably) because libgit2 appends sorted entries fastest.
        for item in sorted(items, key=lambda item: str(item.get("path")) if isinstance(item, dict) else ""):
            self._apply_tree_item(index, item)
        try:
            tree = self.git[index.write_tree(self.git)].peel(pygit2.Tree)
        except pygit2.GitError as exc:
            raise ApiError(422, "GitRPC::BadObjectState") from exc
        return 201, self._tree_json(tree, recursive=False)

    def _apply_tree_item(self, index: pygit2.Index, item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
            raise ApiError(422, "Invalid tree info")
        path = item["path"]
        if "sha" in item and item["sha"] is None:
            if path not in index:
                raise ApiError(422, "GitRPC::BadObjectState")
            index.remove(path)
            return
        if item.get("type") != "blob" or item.get("mode") not in BLOB_MODES:
            raise ApiError(422, "Invalid tree info: the emulator supports blob entries only")
        if "content" in item and "sha" in item:
            raise ApiError(422, "Invalid tree info: use either sha or content, not both")
        if isinstance(item.get("content"), str):
            oid = self.git.create_blob(item["content"].encode())
        elif self._lookup(item.get("sha"), pygit2.Blob) is not None:
            oid = pygit2.Oid(hex=item["sha"])
        else:
            raise ApiError(422, f"tree.sha {item.get('sha')} is not a valid blob")
        index.add(pygit2.IndexEntry(path, oid, BLOB_MODES[item["mode"]]))

    def _get_blob(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        blob = self._lookup(params["sha"], pygit2.Blob)
        if blob is None:
            raise ApiError(404, "Not Found")
        if blob.size > self.blob_limit:
            raise TooLarge()
        encoded = base64.b64encode(blob.data).decode()
        # GitHub wraps the base64 content at 60 characters.
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
        return 200, {
            "sha": str(blob.id),
            "node_id": node_id("Blob", blob.id),
            "size": blob.size,
            "url": f"{self._api}/git/blobs/{blob.id}",
            "content": wrapped + "\n" if wrapped else "",
            "encoding": "base64",
        }

    def _create_blob(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str) or encoding not in ("utf-8", "base64"):
            raise ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.')
        oid = self.git.create_blob(base64.b64decode(content) if encoding == "base64" else content.encode())
        return 201, {"sha": str(oid), "url": f"{self._api}/git/blobs/{oid}"}  # GitHub's answer: no more

    def _list_commits(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, Any]:
        """GET /commits?sha=&path=&per_page=&page=: the REST commit shape, newest first, only the commits
        that changed `path` (GitHub's default history simplification, as `git log -- path`)."""
        start = (query.get("sha") or [self.default_branch])[0]
        path = (query.get("path") or [""])[0].strip("/")
        try:
            per_page = max(1, min(int((query.get("per_page") or ["30"])[0]), 100))
            page = max(1, int((query.get("page") or ["1"])[0]))
        except ValueError as exc:
            raise ApiError(422, "Validation Failed") from exc
        ref = self.git.references.get(f"refs/heads/{start}")
        target = ref.target if ref is not None else (start if SHA_RE.fullmatch(start) else None)
        if target is None or self.git.get(target) is None:
            raise ApiError(404, "No commit found for SHA: " + start)

        def blob(tree: pygit2.Tree) -> str | None:
            try:
                return str(tree[path].id)
            except KeyError:
                return None

        html = f"https://github.com/{self.owner}/{self.name}/commit"
        found = []
        for commit in self.git.walk(target, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
            if path:
                mine = blob(commit.tree)
                parents = commit.parents
                if not ((not parents and mine is not None) or any(blob(p.tree) != mine for p in parents)):
                    continue
            found.append(commit)
            if len(found) >= per_page * page:
                break
        answer = []
        for commit in found[per_page * (page - 1) :]:
            git_commit = {
                key: value
                for key, value in self._commit_json(commit).items()
                if key in ("author", "committer", "message", "tree", "url", "verification")
            }
            answer.append(
                {
                    "sha": str(commit.id),
                    "node_id": f"C_{commit.id}",
                    "commit": {**git_commit, "comment_count": 0},
                    "url": f"{self._api}/commits/{commit.id}",
                    "html_url": f"{html}/{commit.id}",
                    "comments_url": f"{self._api}/commits/{commit.id}/comments",
                    "author": None,
                    "committer": None,
                    "parents": [
                        {"sha": str(p), "url": f"{self._api}/commits/{p}", "html_url": f"{html}/{p}"}
                        for p in commit.parent_ids
                    ],
                }
            )
        return 200, answer

    def _get_commit(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        commit = self._lookup(params["sha"], pygit2.Commit)
        if commit is None:
            raise ApiError(404, "Not Found")
        return 200, self._commit_json(commit)

    def _create_commit(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body.get("message"), str):
            raise ApiError(422, 'Invalid request.\n\n"message" wasn\'t supplied.')
        tree = self._lookup(body.get("tree"), pygit2.Tree)
        if tree is None:
            raise ApiError(422, "Tree SHA does not exist")
        parents = body.get("parents", [])
        if not isinstance(parents, list) or any(self._lookup(p, pygit2.Commit) is None for p in parents):
            raise ApiError(422, "Parent SHA does not exist or is not a commit object")
        user = self._user()
        author = _signature(body.get("author"), user)
        committer = _signature(body.get("committer"), author if body.get("author") else user)
        oid = self.git.create_commit(None, author, committer, body["message"], tree.id, parents)
        return 201, self._commit_json(self.git[oid].peel(pygit2.Commit))

    def _get_contents(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, Any]:
        """GET /contents/{path}?ref=: what is at `path` in the commit `ref` names (a branch or a commit SHA;
        the default branch without it), in GitHub's default media type: a file as `content-file` (base64,
        wrapped as the blob API wraps it), a directory as the array of its entries, a submodule as
        `content-submodule`. A file over 1 MB is refused 403 `too_large`, as GitHub refuses it without
        the raw or object media type; a missing path answers 404 "Not Found", a missing ref 404 "No
        commit found for the ref ..."."""
        ref = (query.get("ref") or [self.default_branch])[0]
        branch = self.git.references.get(f"refs/heads/{ref}")
        commit = self.git[branch.target].peel(pygit2.Commit) if branch is not None else None
        commit = commit or self._lookup(ref, pygit2.Commit)
        if commit is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        path = params["path"].strip("/")
        try:
            entry = commit.tree[path]
        except KeyError:
            raise ApiError(404, "Not Found") from None
        if entry.filemode == pygit2.enums.FileMode.TREE:
            tree = self.git[entry.id].peel(pygit2.Tree)
            listed = [self._content_item(ref, f"{path}/{item.name}", item) for item in tree]
            # GitHub's note: a directory's listing says "file" for a submodule (backwards compatibility).
            return 200, [{**item, "type": "file"} if item["type"] == "submodule" else item for item in listed]
        item = self._content_item(ref, path, entry)
        if entry.filemode == pygit2.enums.FileMode.COMMIT:
            return 200, {**item, "submodule_git_url": "https://github.com/example/other.git"}
        blob = self.git[entry.id].peel(pygit2.Blob)
        if blob.size > CONTENTS_MAX_BYTES:
            raise TooLarge(
                "This API returns blobs up to 1 MB in size. The requested blob is too large to fetch via "
                "the API, but you can use the Git Data API to request blobs up to 100 MB in size."
            )
        encoded = base64.b64encode(blob.data).decode()
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
        return 200, {**item, "content": wrapped + "\n" if wrapped else "", "encoding": "base64"}

    def _content_item(self, ref: str, path: str, entry: pygit2.Object) -> dict[str, Any]:
        """The fields every answer of the contents API has for one entry."""
        kind = {pygit2.enums.FileMode.TREE: "dir", pygit2.enums.FileMode.COMMIT: "submodule"}.get(
            entry.filemode, "file"
        )
        url = f"{self._api}/contents/{quote(path)}?ref={quote(ref)}"
        git_url = None
        html_url = None
        if kind != "submodule":  # GitHub's are null for a submodule not hosted on github.com
            git_url = f"{self._api}/git/{'trees' if kind == 'dir' else 'blobs'}/{entry.id}"
            html_url = f"https://github.com/{self.owner}/{self.name}/{'tree' if kind == 'dir' else 'blob'}"
            html_url += f"/{ref}/{path}"
        download = f"https://raw.githubusercontent.com/{self.owner}/{self.name}/{ref}/{path}"
        return {
            "type": kind,
            "size": self.git[entry.id].peel(pygit2.Blob).size if kind == "file" else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": str(entry.id),
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": download if kind == "file" else None,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    def _put_contents(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        path, branch = params["path"], body.get("branch") or self.default_branch
        if not isinstance(body.get("message"), str) or not isinstance(body.get("content"), str):
            raise ApiError(422, 'Invalid request.\n\n"message" and "content" are required.')
        ref = self.git.references.get(f"refs/heads/{branch}")
        if ref is None and list(self.git.references):
            raise ApiError(404, f"Branch {branch} not found")
        index = pygit2.Index()
        if ref is not None:
            index.read_tree(self.git[ref.target].peel(pygit2.Tree))
        existing = index[path].id if path in index else None
        if existing is not None and body.get("sha") != str(existing):
            if "sha" not in body:
                raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            raise ApiError(409, f"{path} does not match {body['sha']}")
        data = base64.b64decode(body["content"])
        blob = self.git.create_blob(data)
        index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
        user = self._user()
        author = _signature(body.get("author"), user)
        committer = _signature(body.get("committer"), user)
        parents = [] if ref is None else [ref.target]
        oid = self.git.create_commit(
            None, author, committer, body["message"], index.write_tree(self.git), parents
        )
        self.git.references.create(f"refs/heads/{branch}", oid, force=True)
        name = path.rsplit("/", 1)[-1]
        content_url = f"{self._api}/contents/{path}?ref={branch}"
        html_url = f"https://github.com/{self.owner}/{self.name}/blob/{branch}/{path}"
        blob_url = f"{self._api}/git/blobs/{blob}"
        return 200 if existing is not None else 201, {
            "content": {
                "name": name,
                "path": path,
                "sha": str(blob),
                "size": len(data),
                "url": content_url,
                "html_url": html_url,
                "git_url": blob_url,
                "download_url": f"https://raw.githubusercontent.com/{self.owner}/{self.name}/{branch}/{path}",
                "type": "file",
                "_links": {"self": content_url, "git": blob_url, "html": html_url},
            },
            "commit": self._commit_json(self.git[oid].peel(pygit2.Commit)),
        }
