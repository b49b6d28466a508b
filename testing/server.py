"""The control plane in real processes, for tests and benchmarks: daphne on a free loopback port, a
django-q2 worker, or both (`ControlPlane`), sharing this process's database, SSOT and secrets through
the environment (`server_env`) exactly as `make run` configures them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
START_SEC = 60
# Loopback only: a proxy from the environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database a connection uses (the test database, in tests)."""
    if settings_dict["ENGINE"] in ("django.db.backends.sqlite3", "agentos_site.sqlite"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = f":{quote(settings_dict['PASSWORD'])}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


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
    """A child process whose output goes to a log file (`log_dir/name.log`, kept; else a temporary one,
    removed by `close`), stopped for sure at the end."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], *, log_dir: Path | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self._own_log = log_dir is None
        if log_dir is None:
            self.log = Path(tempfile.mkstemp(prefix=f"agentos-{name}-", suffix=".log")[1])
        else:
            self.log = log_dir / f"{name}.log"
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
        if self._own_log:
            self.log.unlink(missing_ok=True)


class Daphne(Process):
    """`daphne agentos_site.asgi:application` (or another `app`) on a loopback port, quiet as the Procfile
    runs it."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        name: str = "daphne",
        log_dir: Path | None = None,
        app: str = "agentos_site.asgi:application",
    ) -> None:
        self.port = port or free_port()
        command = [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(self.port)]
        super().__init__(name, [*command, app], env, log_dir=log_dir)

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
    """`manage.py qcluster`: processes queued webhook deliveries and runs the schedules."""

    def __init__(self, env: dict[str, str], *, name: str = "qcluster", log_dir: Path | None = None) -> None:
        super().__init__(name, [sys.executable, "manage.py", "qcluster"], env, log_dir=log_dir)


class ControlPlane:
    """daphne and (unless `worker` is False) a qcluster on `env` over this process's environment:
    `with ControlPlane(env) as plane:` serves at `plane.url` until the block ends."""

    def __init__(self, env: Mapping[str, str], *, worker: bool = True, log_dir: Path | None = None) -> None:
        full = {"DJANGO_SETTINGS_MODULE": "agentos_site.settings", **os.environ, **env}
        self.daphne = Daphne(full, log_dir=log_dir)
        self.worker = Worker(full, log_dir=log_dir) if worker else None
        self.port = self.daphne.port
        self.url = self.daphne.url

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.daphne.spawn()
            if self.worker:
                self.worker.start()
            self.daphne.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.daphne.close()
        if self.worker:
            self.worker.close()


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST on loopback; returns (status, body) for any HTTP answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def hook_to(ssot_path: Path, port: int, secret_dir: Path) -> str:
    """Point the local SSOT's post-receive hook at a server on `port` (signing with the first webhook
    secret), as `make run`'s bootstrap does; the hook's URL. A pusher's own SSOT_HOOK_URL comes first in
    the hook: set it to this URL too."""
    from ssot.stores.factory import webhook_repo_name
    from ssot.stores.hook import install_post_receive_hook

    hook_url = f"http://127.0.0.1:{port}/webhooks/github"
    secret_file = secret_dir / "hook_secret"
    secret_file.write_text(settings.GITHUB_WEBHOOK_SECRETS[0] + "\n")
    install_post_receive_hook(
        ssot_path,
        python=sys.executable,
        hook_url=hook_url,
        secret_file=secret_file,
        repo_full_name=webhook_repo_name(),
        branch="main",
    )
    return hook_url


@contextlib.contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[Daphne]:
    """daphne on `port` and a worker beside it until the block ends; their output is printed at the end
    (pytest shows it when the test failed)."""
    server = Daphne(env, port=port)
    worker = Worker(env)
    try:
        server.spawn()
        worker.start()
        server.wait_ready()
        yield server
    finally:
        print(f"--- daphne\n{server.output()}\n--- qcluster\n{worker.output()}")
        worker.close()
        server.close()
