"""The control plane in real processes, for tests and benchmarks: daphne on a free port, and a qcluster."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_SEC = 30
STOP_TIMEOUT_SEC = 10


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


class ControlPlane:
    """daphne (and optionally a qcluster) in subprocesses with the given environment."""

    def __init__(self, env: Mapping[str, str], *, worker: bool = True, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"DJANGO_SETTINGS_MODULE": "agentos_site.settings", **os.environ, **env}
        self.worker = worker
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        daphne = [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(self.port)]
        self._spawn([*daphne, "agentos_site.asgi:application"], "daphne")
        if self.worker:
            self._spawn([sys.executable, "manage.py", "qcluster"], "qcluster")
        self._wait_http()

    def _spawn(self, command: list[str], name: str) -> None:
        """Start a process in its own session; its output goes to `log_dir/name.log`, or nowhere."""
        output = (self.log_dir / f"{name}.log").open("ab") if self.log_dir else subprocess.DEVNULL
        try:
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=BASE_DIR,
                    env=self.env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        finally:
            if not isinstance(output, int):  # a log file, not DEVNULL
                output.close()

    def _wait_http(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SEC
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError("the control plane exited while starting")
            try:
                with urllib.request.urlopen(f"{self.url}/webhooks/github", timeout=1):  # noqa: S310 (http)
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer (405 to a GET) means daphne serves
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"daphne did not answer on {self.url} within {START_TIMEOUT_SEC} s")

    def stop(self) -> None:
        # The leaders only: a qcluster stops its own workers, and stops slowly if they are killed under it.
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything left in its session
        self.processes = []
