"""Real servers for the end-to-end tests and the benchmarks: daphne (and a django-q2 worker) in subprocesses.

They share the test process's database (SQLite file or PostgreSQL), SSOT and secrets through the
environment, exactly as `make run` would configure them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection

from testing.server import database_url, free_port

BASE_DIR = Path(settings.BASE_DIR)
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
START_SEC = 60
# Loopback only: a proxy from the environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def server_env(
    *, ssot_path: Path, redis_url: str | None, prefix: str, hook_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a server process that shares this process's database, SSOT and secrets."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        JWT_SECRET=settings.SIMPLE_JWT["SIGNING_KEY"],
        GITHUB_WEBHOOK_SECRET=",".join(settings.GITHUB_WEBHOOK_SECRETS),
        SSOT_BACKEND="local",
        SSOT_LOCAL_PATH=str(ssot_path),
        CHANNEL_LAYER_PREFIX=prefix,
        ALLOWED_HOSTS="localhost,127.0.0.1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    if hook_url:
        env["SSOT_HOOK_URL"] = hook_url
    return env


class Process:
    """A child process whose output goes to a log file, stopped for sure at the end."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = Path(tempfile.mkstemp(prefix=f"agentos-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the leader (a qcluster stops its own workers), then end anything left in its session."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def kill(self) -> None:
        """Die at once, as a crashed server does: no graceful close of its sockets."""
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)


class Daphne(Process):
    """`daphne agentos_site.asgi:application` on a loopback port."""

    def __init__(self, env: dict[str, str], *, port: int | None = None, name: str = "daphne") -> None:
        self.port = port or free_port()
        super().__init__(
            name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "agentos_site.asgi:application",
            ],
            env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events/"

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        super().start()

    def wait_ready(self) -> None:
        """Return once the server answers HTTP (any status: a 503 only says a dependency is down)."""
        deadline = time.monotonic() + START_SEC
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.output()}")
            try:
                with _OPENER.open(f"{self.url}/healthz", timeout=5):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_SEC}s:\n{self.output()}")


def start_all(servers: list[Daphne]) -> None:
    """Start servers side by side (each takes seconds to import Django)."""
    for server in servers:
        server.spawn()
    for server in servers:
        server.wait_ready()


class Worker(Process):
    """`manage.py qcluster`: processes queued webhook deliveries."""

    def __init__(self, env: dict[str, str], *, name: str = "qcluster") -> None:
        super().__init__(name, [sys.executable, "manage.py", "qcluster"], env)


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST on loopback; returns (status, body) for any HTTP answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
